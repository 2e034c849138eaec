"""GitHub-flavoured Markdown: the table, then the footer as a list."""

from __future__ import annotations

from .table import TableView


_ESCAPES = {ord("\\"): "\\\\", ord("|"): "\\|", ord("<"): "&lt;", ord(">"): "&gt;"}


def _cell(text: str) -> str:
    """Markdown-safe: no HTML, no column breaks; leading spaces (the tree's) kept as
    non-breaking ones, which Markdown does not trim."""
    stripped = text.lstrip(" ")
    return "\u00a0" * (len(text) - len(stripped)) + stripped.translate(_ESCAPES) or " "


def markdown_table(headers: tuple[str, ...], numeric: tuple[bool, ...], rows: tuple[tuple[str, ...], ...]) -> str:
    lines = ["| " + " | ".join(_cell(h) for h in headers) + " |"]
    lines.append("|" + "|".join("---:" if right else ":---" for right in numeric) + "|")
    lines.extend("| " + " | ".join(_cell(c) for c in row) + " |" for row in rows)
    return "\n".join(lines)


def render_markdown(view: TableView) -> str:
    footer = [f"- {line}" for section in view.footer for line in section]
    return markdown_table(view.headers, view.numeric, view.rows) + "\n\n" + "\n".join(footer)
