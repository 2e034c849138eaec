"""Pieces the compat printers share: printing once, the notes the originals lack, depths."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..render import notebook
from ..engine.inputs import as_shape
from ..render.footer import truth_lines, uncounted_lines
from ..report.model import ModelReport


def emit(text: str, report: ModelReport) -> ModelReport:
    """Print the original's layout (in a notebook too, as the originals do) and return the
    report; in IPython/Jupyter it is marked as shown in the running cell, so as that cell's
    value it shows no second table (in a later cell it displays as usual)."""
    print(text)
    return replace(report, shown_in_cell=notebook.cell()) if notebook.in_ipython() else report


def notes(report: ModelReport) -> list[str]:
    """What the original layouts have no line for, only when it matters: parameters that
    no operator read (modules never called) or that several modules hold, and operators no
    formula covers (the totals are then a lower bound, never silently short)."""
    lines = truth_lines(report) if report.unused_params or report.shared_params or report.unused_modules else []
    return lines + uncounted_lines(report)


def dims(value: Any) -> tuple[int, ...] | None:
    """``value`` as a shape of sizes >= 0 (Python or numpy integers, as the originals
    accept); None when it is not one."""
    shape = as_shape(value)
    return shape if shape is not None and all(d >= 0 for d in shape) else None


def full_depth(report: ModelReport) -> int:
    """A depth that folds nothing."""
    return max((layer.depth for layer in report.layers), default=0)


def unused_rows(report: ModelReport) -> set[int]:
    """Indices of the layers never called: the unused modules and everything below them."""
    roots = set(report.unused_modules)
    return {
        index
        for index, layer in enumerate(report.layers)
        if any(layer.name == root or layer.name.startswith(root + ".") for root in roots)
    }
