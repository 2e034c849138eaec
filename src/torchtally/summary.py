"""``summary()``: analyse, print the table once, return the report."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from torch import nn

from .inputs import InputSize
from .report import ModelReport
from .run import analyze


def _in_ipython() -> bool:
    """True inside IPython or Jupyter, where the returned report displays itself."""
    ipython = sys.modules.get("IPython")
    get = getattr(ipython, "get_ipython", None)
    return callable(get) and get() is not None


def summary(
    model: nn.Module,
    input_size: InputSize | None = None,
    *,
    depth: int = 3,
    file: TextIO | None = None,
    **options: Any,
) -> ModelReport:
    """Analyse ``model`` (same arguments as `analyze`), print its table and return the report.

    In IPython and Jupyter nothing is printed: the returned report displays itself as the
    cell's value, so the table never appears twice. ``depth`` folds deeper modules into
    their parent's row.
    """
    report = analyze(model, input_size, **options).with_display_depth(depth)
    if not _in_ipython():
        print(report.table(), file=file if file is not None else sys.stdout)
    return report
