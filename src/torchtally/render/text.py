"""Plain text: the table at its natural width (text aligned left, numbers right), ruled
with ``=`` and with ``-`` between footer sections. Deterministic: ``str(report)``."""

from __future__ import annotations

from .table import TableView

GAP = "  "  # between columns


def column_widths(view: TableView) -> list[int]:
    return [max([len(view.headers[c]), *(len(row[c]) for row in view.rows)]) for c in range(len(view.headers))]


def table_line(cells: tuple[str, ...], widths: list[int], numeric: tuple[bool, ...]) -> str:
    """One row: text padded on the right, numbers on the left, no trailing spaces."""
    parts = [cell.rjust(w) if numeric[c] else cell.ljust(w) for c, (cell, w) in enumerate(zip(cells, widths))]
    return GAP.join(parts).rstrip()


def render_text(view: TableView) -> str:
    widths = column_widths(view)
    width = sum(widths) + len(GAP) * (len(widths) - 1)
    rows = (table_line(row, widths, view.numeric) for row in view.rows)
    out = ["=" * width, table_line(view.headers, widths, view.numeric), "=" * width, *rows, "=" * width]
    for number, section in enumerate(view.footer):
        if number:
            out.append("-" * width)
        out.extend(section)
    if view.footer:
        out.append("=" * width)
    return "\n".join(out)
