"""Progress of `torchtally compare` on stderr (stdout stays clean for the table): a rich
progress bar at a terminal when rich is installed, one line per model with --progress
elsewhere, nothing with --no-progress or when nobody is watching."""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import Any


class Progress:
    def __init__(self, total: int, wanted: bool | None):
        """``wanted``: True (--progress), False (--no-progress), None (at a terminal only)."""
        terminal = bool(getattr(sys.stderr, "isatty", lambda: False)())
        self.total = total
        self.lines = False
        self.bar: Any = None
        self.task: Any = None
        self.count = 0
        self.started = 0.0
        if wanted is False or (wanted is None and not terminal):
            return
        if terminal:
            try:
                from rich.progress import BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn, TimeElapsedColumn
            except ImportError:
                pass
            else:
                from rich.console import Console

                self.bar = RichProgress(
                    TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=Console(file=sys.stderr), transient=True,
                )
                return
        self.lines = True

    def __enter__(self) -> Progress:
        if self.bar is not None:
            self.bar.start()
            self.task = self.bar.add_task("analysing", total=self.total)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        if self.bar is not None:
            self.bar.stop()

    def start(self, name: str) -> None:
        self.count += 1
        self.started = time.perf_counter()
        if self.bar is not None:
            self.bar.update(self.task, description=f"analysing {name}")

    def done(self, name: str) -> None:
        if self.bar is not None:
            self.bar.advance(self.task)
        elif self.lines:
            seconds = time.perf_counter() - self.started
            print(f"torchtally: [{self.count}/{self.total}] {name} ({seconds:.1f} s)", file=sys.stderr, flush=True)
