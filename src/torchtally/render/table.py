"""A report as a table of text cells (headers, rows, footer sections): the one model that
the plain-text, rich, Markdown and HTML views all draw, so they show the same numbers."""

from __future__ import annotations

from dataclasses import dataclass

from ..report.model import ModelReport
from ..report.settings import RowSetting, Style, ViewOptions
from .columns import COLUMNS
from .footer import flat_footer, tree_footer
from .view import Row, build_rows


@dataclass(frozen=True)
class TableView:
    headers: tuple[str, ...]
    numeric: tuple[bool, ...]  # per column: right-aligned numbers
    rows: tuple[tuple[str, ...], ...]  # the first cell is the label, after the tree drawing
    footer: tuple[tuple[str, ...], ...]  # sections of lines


_CONTROL = {ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"}


class _Labels:
    def __init__(self, report: ModelReport, options: ViewOptions):
        self.report = report
        self.flat = options.style is Style.FLAT
        self.type_names = RowSetting.TYPE_NAMES in options.rows
        self.ellipsis = "..." if RowSetting.ASCII_ONLY in options.rows else "…"
        self.unused = set(report.unused_modules)
        self.flat_number = 0

    def _name(self, index: int) -> str:
        layer = self.report.layers[index]
        if layer.parent is None:
            return layer.type
        return layer.name if self.flat else layer.name.rsplit(".", 1)[-1]

    def label(self, row: Row) -> str:
        layer = self.report.layers[row.index]
        collapsed = len(row.indices) > 1
        if self.type_names and (self.flat or layer.parent is not None):  # the root: its class, as torchinfo
            self.flat_number += 1
            text = f"{layer.type}-{self.flat_number}" if self.flat else f"{layer.type}: {layer.depth}-{row.number}"
        elif layer.parent is None:
            text = layer.type
        elif collapsed:  # `layer1.0 … layer1.3 (BasicBlock) x4`
            text = f"{layer.name} {self.ellipsis} {self.report.layers[row.indices[-1]].name} ({layer.type})"
        else:
            text = f"{self._name(row.index)} ({layer.type})"
        if collapsed:
            text += f" x{len(row.indices)}" + (f", {layer.calls} calls each" if layer.calls > 1 else "")
        elif layer.calls > 1:
            text += f" x{layer.calls}"
        if layer.name in self.unused:
            text += " (unused)"
        return text.translate(_CONTROL)  # a ModuleDict key may hold a newline: one row stays one line


def table_view(report: ModelReport, options: ViewOptions) -> TableView:
    columns = options.columns_for(report.training, report.timing is not None, report.estimate is not None, report.parallel is not None)
    specs = [COLUMNS[column] for column in columns]
    rows = build_rows(report, options)
    labels = _Labels(report, options)
    flat = options.style is Style.FLAT
    cells = tuple(
        (("" if flat else row.prefix) + labels.label(row), *(spec.cell(row, report.layers[row.index], report) for spec in specs))
        for row in rows
    )
    return TableView(
        headers=("Layer (type)", *(spec.header for spec in specs)),
        numeric=(False, *(spec.numeric for spec in specs)),
        rows=cells,
        footer=tuple(tuple(section) for section in (flat_footer(report) if flat else tree_footer(report))),
    )
