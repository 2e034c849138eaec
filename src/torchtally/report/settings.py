"""How a report is shown: which columns, which rows, which table style.

Every setting is an enum whose values are plain strings, so users may pass either
``Column.MACS`` or ``"macs"``; a wrong name is rejected with the list of good ones."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from typing import TypeVar, Union

from ..errors import InputError


class Column(str, Enum):
    """A column of the table (the layer name is always the first column)."""

    INPUT_SHAPE = "input_shape"
    OUTPUT_SHAPE = "output_shape"
    KERNEL_SIZE = "kernel_size"  # kernel size, with the groups when there are several
    PARAMS = "params"
    PARAMS_PERCENT = "params_percent"
    MACS = "macs"
    MACS_PERCENT = "macs_percent"
    FLOPS = "flops"
    BACKWARD_MACS = "backward_macs"
    BACKWARD_FLOPS = "backward_flops"
    ACTIVATION_BYTES = "activation_bytes"  # bytes of the outputs of leaf modules
    TRAINABLE = "trainable"
    CALLS = "calls"
    MEMORY_READ = "memory_read"  # bytes the operators read: inputs and weights
    MEMORY_WRITE = "memory_write"  # bytes the operators wrote: their outputs
    ARITHMETIC_INTENSITY = "arithmetic_intensity"  # FLOPs per byte read or written
    TIME = "time"  # measured, per forward pass (analyze(..., timing=True))
    TIME_PERCENT = "time_percent"  # share of the timed forward pass
    ESTIMATED_TIME = "estimated_time"  # estimated on a chip, per forward pass (analyze(..., hardware=...))
    BOUND = "bound"  # what limits the estimated time: compute, memory, overhead or network
    COMMUNICATION = "communication"  # data size of the collectives a module ran (a parallel layout's rank)


class RowSetting(str, Enum):
    """Options for which rows are shown and how they are labelled."""

    TYPE_NAMES = "type_names"  # label rows ``Conv2d: 1-1`` (class: depth-index; flat style ``Conv2d-1``), not ``conv1 (Conv2d)``
    ASCII_ONLY = "ascii_only"  # draw the tree with ASCII characters only
    HIDE_EMPTY = "hide_empty"  # hide modules with no parameters, nothing in the shown columns, nothing shown below
    COLLAPSE_REPEATS = "collapse_repeats"  # fold runs of identical sibling blocks into one row


class Style(str, Enum):
    TREE = "tree"  # the module hierarchy (torchinfo style), with the totals footer
    FLAT = "flat"  # one row per layer (torchsummary style), with its size footer


TREE_COLUMNS = (Column.INPUT_SHAPE, Column.OUTPUT_SHAPE, Column.PARAMS, Column.MACS, Column.FLOPS)
FLAT_COLUMNS = (Column.OUTPUT_SHAPE, Column.PARAMS)
TRAINING_COLUMNS = (Column.BACKWARD_MACS, Column.BACKWARD_FLOPS)  # added to the defaults for training reports
TIMING_COLUMNS = (Column.TIME, Column.TIME_PERCENT)  # added to the defaults for timed reports
ESTIMATE_COLUMNS = (Column.ESTIMATED_TIME, Column.BOUND)  # added to the defaults for estimated reports
PARALLEL_COLUMNS = (Column.COMMUNICATION,)  # added to the defaults for reports of a parallel layout's rank

_E = TypeVar("_E", bound=Enum)
ColumnsArg = Union[Iterable[Union[Column, str]], Column, str, None]
RowsArg = Union[Iterable[Union[RowSetting, str]], RowSetting, str, None]


def parse_one(kind: type[_E], value: object, what: str) -> _E:
    """``value`` as a member of ``kind``; a clear InputError listing the good names otherwise."""
    if isinstance(value, kind):
        return value
    if isinstance(value, str):
        for member in kind:
            if member.value == value.strip().lower():
                return member
    good = ", ".join(repr(member.value) for member in kind)
    raise InputError(f"{what} {value!r} is not one of: {good}")


def parse_many(kind: type[_E], values: object, what: str) -> tuple[_E, ...]:
    """A single name, or any iterable of names, as members of ``kind`` (duplicates dropped)."""
    if isinstance(values, (str, Enum)):
        values = (values,)
    if not isinstance(values, Iterable):
        raise InputError(f"{what}s must be a name or a list of names; got {values!r}")
    return tuple(dict.fromkeys(parse_one(kind, value, what) for value in values))


def parse_depth(depth: object) -> int:
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 0:
        raise InputError(f"depth must be a whole number >= 0 (0 shows only the model's row); got {depth!r}")
    return depth


@dataclass(frozen=True)
class ViewOptions:
    """How to show a report; ``columns=None`` means the style's default columns."""

    depth: int = 3
    columns: tuple[Column, ...] | None = None
    rows: frozenset[RowSetting] = frozenset()
    style: Style = Style.TREE

    @classmethod
    def parse(
        cls,
        depth: object = 3,
        columns: ColumnsArg = None,
        rows: RowsArg = None,
        style: Style | str = Style.TREE,
    ) -> ViewOptions:
        return cls(
            depth=parse_depth(depth),
            columns=None if columns is None else parse_many(Column, columns, "column"),
            rows=frozenset(() if rows is None else parse_many(RowSetting, rows, "row setting")),
            style=parse_one(Style, style, "style"),
        )

    def columns_for(self, training: bool, timed: bool, estimated: bool = False, parallel: bool = False) -> tuple[Column, ...]:
        """The columns asked for, else the style's defaults: the tree adds backward and time
        columns to reports that have them; the flat style keeps torchsummary's two."""
        if self.columns is not None:
            return self.columns
        if self.style is Style.FLAT:
            return FLAT_COLUMNS
        return (
            TREE_COLUMNS + (TRAINING_COLUMNS if training else ()) + (TIMING_COLUMNS if timed else ())
            + (ESTIMATE_COLUMNS if estimated else ()) + (PARALLEL_COLUMNS if parallel else ())
        )
