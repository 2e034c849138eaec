"""``summary()``: analyse, print the table once, return the report."""

from __future__ import annotations

import sys
from dataclasses import replace
from typing import Any, TextIO

from torch import nn

from .render import notebook
from .engine.inputs import InputSize
from .report.model import ModelReport
from .analysis import analyze
from .report.settings import ColumnsArg, RowsArg, Style, ViewOptions


def _print(report: ModelReport, file: TextIO) -> None:
    """Through rich at the terminal's width when rich is installed and ``file`` is a terminal;
    plain text otherwise (files and pipes get the same text every time)."""
    isatty = getattr(file, "isatty", None)
    if callable(isatty) and isatty():
        try:
            from rich.console import Console
        except ImportError:
            pass
        else:
            Console(file=file).print(report.to_rich())
            return
    print(report.table(), file=file)


def summary(
    model: nn.Module,
    input_size: InputSize | None = None,
    *,
    depth: int = 3,
    columns: ColumnsArg = None,
    rows: RowsArg = None,
    style: Style | str = Style.TREE,
    file: TextIO | None = None,
    **options: Any,
) -> ModelReport:
    """Analyse ``model`` (same arguments as `analyze`), print its table and return the report.

    ``depth``, ``columns``, ``rows`` and ``style`` choose what the table shows (see
    `ModelReport.table`); the returned report keeps them for ``print(report)`` and notebooks.
    In IPython and Jupyter the table is shown as the cell's output (HTML in a notebook), and
    the returned report does not show itself again as that cell's value: one table per call.
    """
    view = ViewOptions.parse(depth, columns, rows, style)  # a bad setting fails before a long analysis
    report = analyze(model, input_size, **options)
    report = report.with_view(view.depth, columns=view.columns, rows=view.rows, style=view.style)
    if notebook.in_ipython() and file is None:
        notebook.show(report)
        return replace(report, shown_in_cell=notebook.cell())  # not shown again as the cell's value
    _print(report, file if file is not None else sys.stdout)
    return report
