"""HTML for notebooks: a table whose first column draws the module tree (monospace, so the
branches line up), then the footer. Every value is escaped."""

from __future__ import annotations

from html import escape

from .table import TableView

_LABEL = "font-family: monospace; white-space: pre; text-align: left"


def html_table(headers: tuple[str, ...], numeric: tuple[bool, ...], rows: tuple[tuple[str, ...], ...], tree: bool = False) -> str:
    def cell(tag: str, text: str, column: int) -> str:
        style = _LABEL if tree and column == 0 else "text-align: right" if numeric[column] else "text-align: left"
        return f'<{tag} style="{style}">{escape(text)}</{tag}>'

    head = "".join(cell("th", header, c) for c, header in enumerate(headers))
    body = "\n".join("<tr>" + "".join(cell("td", text, c) for c, text in enumerate(row)) + "</tr>" for row in rows)
    return f'<table class="torchtally">\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>'


def render_html(view: TableView) -> str:
    footer = "".join(f"<li>{escape(line)}</li>" for section in view.footer for line in section)
    return f"<div>\n{html_table(view.headers, view.numeric, view.rows, tree=True)}\n<ul>{footer}</ul>\n</div>"
