"""IPython and Jupyter: showing a report in a notebook cell, once.

``summary()`` shows its table at once (so a loop of summaries, or ``r = tt.summary(...)``,
shows every table) and returns the report marked with the cell it was shown in; when that
same report is the cell's value, IPython asks it to display itself and it shows nothing
more. In a later cell it displays normally."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..report.model import ModelReport


def _shell() -> Any:
    ipython = sys.modules.get("IPython")
    get = getattr(ipython, "get_ipython", None)
    return get() if callable(get) else None


def in_ipython() -> bool:
    """True inside IPython or Jupyter."""
    return _shell() is not None


def cell() -> int | None:
    """The number of the cell running now (None outside IPython)."""
    count = getattr(_shell(), "execution_count", None)
    return count if isinstance(count, int) else None


def show(report: ModelReport) -> None:
    """Publish the report's HTML table (and its text, for terminals) to the front end."""
    publish = getattr(getattr(_shell(), "display_pub", None), "publish", None)
    if callable(publish):
        publish(data={"text/plain": report.table(), "text/html": report.to_html()}, metadata={})


class PageFrame:
    """A whole HTML page shown in a notebook: an iframe whose ``srcdoc`` is the page, so its
    scripts and styles stay apart from the notebook's own."""

    def __init__(self, page: str, height: int):
        self.page = page
        self.height = height

    def _repr_html_(self) -> str:
        from html import escape

        return (
            f'<iframe srcdoc="{escape(self.page, quote=True)}" style="width: 100%; height: {int(self.height)}px; '
            'border: 1px solid #ccc" sandbox="allow-scripts"></iframe>'
        )


def page_frame(page: str, height: int) -> PageFrame:
    return PageFrame(page, height)
