"""Where the result goes and in which format. stdout carries only the result (so it can be
parsed); everything else goes to stderr."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from ..report.model import ModelReport
from ..report.settings import ViewOptions
from ..report.tables import DataTable
from .errors import CLIError

FORMATS = ("text", "json", "csv", "markdown", "html")
SUFFIXES = {".json": "json", ".csv": "csv", ".md": "markdown", ".markdown": "markdown", ".html": "html", ".htm": "html"}


def choose_format(given: str | None, output: str | None) -> str:
    """--format, else the --output file's suffix (report.json is JSON), else text."""
    if given is not None:
        return given
    if output is not None:
        return SUFFIXES.get(Path(output).suffix.lower(), "text")
    return "text"


def _is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(callable(isatty) and isatty())


def report_text(report: ModelReport, fmt: str, view: ViewOptions) -> str:
    if fmt == "json":
        return report.to_json()
    if fmt == "csv":
        return report.to_csv()
    if fmt == "markdown":
        return report.to_markdown(view.depth, columns=view.columns, rows=view.rows, style=view.style)
    if fmt == "html":  # the whole page, its tree opened at --depth
        return report.to_html_page(view.depth)
    return report.table(view.depth, columns=view.columns, rows=view.rows, style=view.style)


def table_text(table: DataTable, fmt: str) -> str:
    if fmt == "json":
        return table.to_json()
    if fmt == "csv":
        return table.to_csv()
    if fmt == "markdown":
        return table.to_markdown()
    if fmt == "html":
        return table.to_html()
    return str(table)


def write(text: str, output: str | None) -> None:
    if output is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        sys.stdout.flush()
        return
    try:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        Path(output).write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    except OSError as exc:
        raise CLIError(f"--output {output}: cannot write it: {exc.strerror or exc}") from exc


def write_report(report: ModelReport, fmt: str, view: ViewOptions, output: str | None) -> None:
    """The report in ``fmt``; at a terminal, text goes through rich when it is installed (laid
    out to the terminal's width, as tt.summary does)."""
    if fmt == "text" and output is None and _is_terminal(sys.stdout):
        try:
            from rich.console import Console
        except ImportError:
            pass
        else:
            Console(file=sys.stdout).print(
                report.to_rich(view.depth, columns=view.columns, rows=view.rows, style=view.style)
            )
            return
    write(report_text(report, fmt, view), output)
