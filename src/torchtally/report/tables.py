"""`DataTable`: a small table of plain values (names and numbers) with every export a report
has. Aggregates of one report (`by_operator`, `by_type`) and comparisons of several
(`compare`) are DataTables."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..render.units import binary_bytes, decimal, seconds_text, with_commas

TABLE_SCHEMA = "torchtally.table/1"
# How a column's values read as text (exports keep the raw values): a name, a count with
# thousands separators, a number of operations with a unit (1.81 G), bytes (44.59 MiB), or
# seconds (1.23 ms).
KINDS = ("text", "count", "ops", "bytes", "seconds")


def _text(value: Any, kind: str) -> str:
    if value is None:
        return "--"
    if kind == "count" and isinstance(value, int):
        return with_commas(value)
    if kind == "ops" and isinstance(value, (int, float)):
        return decimal(value)
    if kind == "bytes" and isinstance(value, int):
        return binary_bytes(value)
    if kind == "seconds" and isinstance(value, (int, float)):
        return seconds_text(value)
    return str(value)


def dataframe_from(records: list[dict[str, Any]], columns: tuple[str, ...]) -> Any:
    """A pandas DataFrame of ``records``; a clear ImportError when pandas is missing."""
    try:
        import pandas  # type: ignore[import-untyped,unused-ignore]
    except ImportError as exc:
        raise ImportError("to_dataframe() needs pandas: pip install 'torchtally[pandas]'") from exc
    frame = pandas.DataFrame.from_records(records, columns=list(columns))
    for column in columns:  # whole numbers with gaps (None) stay whole: pandas' nullable Int64
        values = [record[column] for record in records if record[column] is not None]
        if values and len(values) < len(records) and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            frame[column] = frame[column].astype("Int64")
    return frame


def csv_from(records: list[dict[str, Any]], columns: tuple[str, ...]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    return out.getvalue()


@dataclass(frozen=True)
class DataTable:
    """Rows of plain values under named columns. ``str()`` shows it as a text table."""

    title: str
    columns: tuple[str, ...]
    kinds: tuple[str, ...]  # per column, one of KINDS: how it reads as text
    rows: tuple[tuple[Any, ...], ...]

    def __post_init__(self) -> None:
        if len(self.kinds) != len(self.columns) or any(kind not in KINDS for kind in self.kinds):
            raise ValueError(f"kinds must give one of {KINDS} per column")

    def records(self) -> list[dict[str, Any]]:
        """One dict per row, by column name."""
        return [dict(zip(self.columns, row)) for row in self.rows]

    def column(self, name: str) -> list[Any]:
        position = self.columns.index(name)
        return [row[position] for row in self.rows]

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": TABLE_SCHEMA, "title": self.title, "columns": list(self.columns), "kinds": list(self.kinds),
            "rows": self.records(),
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def to_csv(self) -> str:
        return csv_from(self.records(), self.columns)

    def to_dataframe(self) -> Any:
        return dataframe_from(self.records(), self.columns)

    def _cells(self) -> tuple[tuple[str, ...], tuple[bool, ...], tuple[tuple[str, ...], ...]]:
        cells = tuple(tuple(_text(value, kind) for value, kind in zip(row, self.kinds)) for row in self.rows)
        return self.columns, tuple(kind != "text" for kind in self.kinds), cells

    def to_markdown(self) -> str:
        from ..render.markdown import markdown_table

        return markdown_table(*self._cells())

    def to_html(self) -> str:
        from ..render.html import html_table

        return html_table(*self._cells())

    def _repr_html_(self) -> str:
        return self.to_html()

    def __str__(self) -> str:
        from ..render.table import TableView
        from ..render.text import render_text

        headers, numeric, cells = self._cells()
        return render_text(TableView(headers, numeric, cells, footer=()))

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """IPython's terminal display: the text table."""
        printer.text(f"<DataTable {self.title}>" if cycle else str(self))


def table_from_mapping(title: str, columns: Mapping[str, str], rows: list[tuple[Any, ...]]) -> DataTable:
    """A DataTable from ``{column: kind}`` and rows in that column order."""
    return DataTable(title, tuple(columns), tuple(columns.values()), tuple(rows))
