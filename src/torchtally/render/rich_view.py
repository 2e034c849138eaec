"""Terminal rendering through rich (an optional extra). The table is laid out to the width
rich gives it at display time: when the terminal is narrower than the table, long layer
labels end in an ellipsis, and if that is not enough the rightmost columns are left out
(the table says which); rows never wrap. Rich brings the terminal handling (width,
colours); the layout is the plain table's own, which keeps a 10,000-row table fast."""

from __future__ import annotations

import io
from dataclasses import replace
from typing import Any

from .table import TableView
from .text import GAP, column_widths, table_line

MIN_LABEL = 16  # a label column narrower than this is no longer readable


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def fit(view: TableView, width: int) -> tuple[TableView, list[int], list[str]]:
    """``view`` narrowed to ``width`` characters: its column widths, and the headers of the
    columns left out."""
    widths = column_widths(view)
    dropped: list[str] = []

    def total() -> int:
        return sum(widths) + len(GAP) * (len(widths) - 1)

    while total() > width and len(widths) > 1 and widths[0] - (total() - width) < MIN_LABEL:
        dropped.insert(0, view.headers[len(widths) - 1])
        widths.pop()
    if total() > width:
        widths[0] = max(MIN_LABEL, widths[0] - (total() - width))
    kept = len(widths)
    narrowed = replace(
        view,
        headers=view.headers[:kept],
        numeric=view.numeric[:kept],
        rows=tuple((_shorten(row[0], widths[0]), *row[1:kept]) for row in view.rows),
    )
    return narrowed, widths, dropped


class RichTable:
    """A rich renderable of a table view: ``rich.print(report.to_rich())``."""

    def __init__(self, view: TableView):
        self.view = view

    def __rich_console__(self, console: Any, options: Any) -> Any:
        # Segments, not Text: rich then has nothing to measure or wrap (thousands of rows stay fast).
        from rich.segment import Segment
        from rich.style import Style
        from rich.text import Text

        bold, dim = Style(bold=True), Style(dim=True)
        view, widths, dropped = fit(self.view, options.max_width)
        rule = "─" * (sum(widths) + len(GAP) * (len(widths) - 1))
        yield from (Segment(table_line(view.headers, widths, view.numeric), bold), Segment.line())
        yield from (Segment(rule, dim), Segment.line())
        for row in view.rows:
            line = table_line(row, widths, view.numeric)
            tree = len(row[0]) - len(row[0].lstrip("│├└─ |`-"))  # the tree drawing, dimmed
            yield from (Segment(line[:tree], dim), Segment(line[tree:]), Segment.line())
        yield from (Segment(rule, dim), Segment.line())
        if dropped:
            yield Text(f"(columns left out to fit {options.max_width} characters: {', '.join(dropped)})", style="dim")
        for section in view.footer:
            for line in section:
                yield Text(line)


def render_rich(view: TableView, width: int) -> str:
    """What rich shows in a terminal ``width`` characters wide, as plain text."""
    from rich.console import Console

    out = io.StringIO()
    Console(file=out, width=width, color_system=None, force_terminal=False).print(RichTable(view))
    return out.getvalue()


def rich_renderable(view: TableView) -> RichTable:
    return RichTable(view)
