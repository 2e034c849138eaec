"""torchstat's ``stat(model, input_size)``, counted right.

Change ``from torchstat import stat`` to ``from torchtally.compat.torchstat import stat``:
the same call prints torchstat's table (its columns, its pandas layout: a row number, the
columns right-aligned, a ``total`` row, the ``====`` rule, ``Total params``, the ``----``
rule and the ``Total memory / MAdd / Flops / MemR+W`` lines). ``input_size`` is one input's
shape without the batch dimension, of any rank (torchstat accepted only three); the model
runs on a batch of 1, on fake tensors (no arithmetic) unless it needs real values, and
shapes are shown without the batch, as torchstat does.

Columns, and what torchtally puts in them:

| column | torchstat's meaning | here |
|---|---|---|
| module name | leaf module path | module path; ``xN`` when called N times (its costs add up over all calls), ``(unused)`` when never called |
| input shape / output shape | first input / output, batch left out | the first call's first input / output tensor, batch left out (``--``: none) |
| params | parameters of the layer | parameters it holds itself, counted once by tensor identity |
| memory(MB) | output elements x 4 / 2**20 | bytes of its outputs, all calls, real dtypes, / 2**20 |
| MAdd | multiplications + additions (2k-1 per conv output, ...) | FLOPs: 2 x MACs for matmul/convolution/attention plus the vector work of every other operator (the README's formula table) |
| Flops | roughly multiply-accumulates of conv/linear, elements of others | MACs (multiply-accumulates) |
| MemRead(B) / MemWrite(B) | inputs + weights read / output written, x 4 bytes | bytes every operator of the row read (inputs, weights) and wrote (outputs), real dtypes, views free |
| duration[%] | share of the summed layer times | share of the whole measured forward pass (``--`` when not timed) |
| MemR+W(B) | read + written | read + written |

Rows: every leaf module in ``named_modules()`` order, as torchstat (modules never called
included, with their parameters; their work is nothing). Where torchstat loses work, rows
are added: a container that ran operators itself (a residual block's addition, the
functional ``torch.relu`` in a model's ``forward``) or holds parameters itself gets a row of
its own work just before its children, so every column adds up to its total and the
totals are the model's. A module called several times (a shared layer) is one row with
the work of all its calls (torchstat counted the first call only). The ``total`` row adds up
every column (torchstat's MemRead/MemWrite totals repeated the last row). Its
``duration[%]`` is the rows' share of the forward pass; the rest is time spent in
containers' own Python and in modules that have no row.

``query_granularity`` (torchstat's): 1 lists leaf modules; N > 1 folds each top-most module
whose subtree is at most N levels high into one row of the subtree's sums.

Timing: ``timing=True`` (the default) measures real forward passes when the model has real
weights (``tt.TimingOptions(warmup=1, repeats=5)``; pass ``tt.TimingOptions`` for others,
``False`` not to time); a model on the meta device is not timed. Sizes: ``Total memory`` in
MB of 2**20 bytes; ``Total MemR+W`` in binary units (K = 1024 bytes, as torchstat).

Returns the `ModelReport` (torchstat returns None): ``print(report)`` shows torchtally's flat
table with the same quantities as columns. In a notebook the table is printed as the cell's
output, and the returned report, as that cell's value, does not show a second table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from torch import nn

from ..errors import InputError
from ..render.view import Amounts, subtree_amounts
from ..report.model import ModelReport
from ..engine.run import analyze
from ..report.settings import Column
from ..engine.timing import TimingError, TimingOptions
from ._common import dims, emit, full_depth, notes, unused_rows

MB = 2**20
DEFAULT_TIMING = TimingOptions(warmup=1, repeats=5)
HEADERS = (
    "module name", "input shape", "output shape", "params", "memory(MB)", "MAdd", "Flops",
    "MemRead(B)", "MemWrite(B)", "duration[%]", "MemR+W(B)",
)
# Columns pandas holds as floats: their headers take one more space (pandas' layout).
FLOAT_COLUMNS = frozenset({"params", "MemRead(B)", "MemWrite(B)", "MemR+W(B)"})
VIEW_COLUMNS = (
    Column.INPUT_SHAPE, Column.OUTPUT_SHAPE, Column.PARAMS, Column.ACTIVATION_BYTES, Column.FLOPS, Column.MACS,
    Column.MEMORY_READ, Column.MEMORY_WRITE,
)


@dataclass(frozen=True)
class StatRow:
    index: int  # the layer
    amounts: Amounts  # its own work, or its subtree's when folded


def _heights(report: ModelReport) -> list[int]:
    """Levels of each layer's subtree: 1 for a leaf."""
    heights = [1] * len(report.layers)
    for index in range(len(report.layers) - 1, -1, -1):  # children come after their parent
        parent = report.layers[index].parent
        if parent is not None:
            heights[parent] = max(heights[parent], heights[index] + 1)
    return heights


def stat_rows(report: ModelReport, granularity: int = 1) -> list[StatRow]:
    """The rows: top-most subtrees at most ``granularity`` high (folded), and the own work of
    the containers above them that did any, in ``named_modules()`` order."""
    heights = _heights(report)
    subtree = subtree_amounts(report)
    rows: list[StatRow] = []

    def visit(index: int) -> None:
        layer = report.layers[index]
        if heights[index] <= granularity:
            rows.append(StatRow(index, subtree[index]))
            return
        own = Amounts.own(layer)
        if own.params or own.macs or own.flops or own.memory_read or own.memory_write:
            rows.append(StatRow(index, own))
        for child in layer.children:
            visit(child)

    if report.layers:
        visit(0)
    return rows


def _dims(shapes: tuple[tuple[int, ...], ...]) -> str:
    """torchstat's shape text: the first tensor's dimensions after the batch, 3 wide each."""
    if not shapes:
        return "--"
    return " ".join(f"{d:>3d}" for d in shapes[0][1:])


def _round_value(value: float, binary: bool = False) -> str:
    """torchstat's totals: ``3.64G``, ``97.04M`` (two decimals at most, as Python rounds)."""
    divisor = 1024.0 if binary else 1000.0
    for power, unit in ((4, "T"), (3, "G"), (2, "M"), (1, "K")):
        if value >= divisor**power:
            return f"{round(value / divisor**power, 2)}{unit}"
    return str(float(value))


def _table(cells: Sequence[tuple[str, ...]], index: Sequence[str]) -> list[str]:
    """pandas' ``str(DataFrame)``: the index left-aligned, then the columns one space apart,
    each right-aligned to its widest cell plus one, or to its header (plus one for a float
    column, whose header pandas pads like its numbers)."""
    index_width = max(len(label) for label in index)
    widths = [
        max(len(header) + (header in FLOAT_COLUMNS), *(len(row[c]) + 1 for row in cells))
        for c, header in enumerate(HEADERS)
    ]

    def line(label: str, row: Sequence[str]) -> str:
        return " ".join([label.ljust(index_width), *(cell.rjust(width) for cell, width in zip(row, widths))])

    return [line("", HEADERS), *(line(label, row) for label, row in zip(index, cells))]


def stat_cells(report: ModelReport, rows: Sequence[StatRow]) -> tuple[list[tuple[str, ...]], Amounts]:
    """The table's cells (the rows, then the ``total`` row) and the totals."""
    timed = report.timing.timed_mean if report.timing is not None and report.timing.timed_mean > 0 else None
    unused = unused_rows(report)

    def numbers(amounts: Amounts) -> tuple[str, ...]:
        return (
            f"{amounts.params}.0",
            f"{amounts.activation_bytes / MB:.2f}",
            f"{amounts.flops:,}.0",
            f"{amounts.macs:,}.0",
            f"{amounts.memory_read}.0",
            f"{amounts.memory_write}.0",
            f"{amounts.time / timed:.2%}" if timed else "--",
            f"{amounts.memory_read + amounts.memory_write}.0",
        )

    cells = []
    for row in rows:
        layer = report.layers[row.index]
        name = (layer.name or layer.type) + (f" x{layer.calls}" if layer.calls > 1 else "")
        cells.append((
            name + (" (unused)" if row.index in unused else ""),
            _dims(layer.input_shapes[0]) if layer.inputs else "--",
            _dims(layer.output_shapes[0]) if layer.outputs else "--",
            *numbers(row.amounts),
        ))
    total = sum((row.amounts for row in rows), Amounts())
    cells.append((" ", " ", " ", *numbers(total)))  # pandas' blanks in the total row
    return cells, total


def render(report: ModelReport, rows: Sequence[StatRow]) -> str:
    """torchstat's text for these rows."""
    cells, total = stat_cells(report, rows)
    moved = total.memory_read + total.memory_write
    lines = _table(cells, [str(n) for n in range(len(rows))] + ["total"])
    width = len(lines[0])
    lines += [
        "=" * width,
        f"Total params: {total.params:,}",
        "-" * width,
        f"Total memory: {total.activation_bytes / MB:.2f}MB",
        f"Total MAdd: {_round_value(total.flops)}MAdd",
        f"Total Flops: {_round_value(total.macs)}Flops",
        f"Total MemR+W: {_round_value(moved, binary=True)}B",
    ]
    return "\n".join(lines + notes(report))


def stat(
    model: nn.Module,
    input_size: Any,
    query_granularity: int = 1,
    *,
    timing: bool | TimingOptions = True,
) -> ModelReport:
    """Print torchstat's table for ``model`` on one input of ``input_size`` (without the
    batch dimension, any rank) and return the report. See the module docstring."""
    if not isinstance(model, nn.Module):
        raise InputError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    shape = dims(input_size)
    if shape is None:
        raise InputError(f"input_size must be one shape without the batch dimension, such as (3, 224, 224); got {input_size!r}")
    if isinstance(query_granularity, bool) or not isinstance(query_granularity, int) or query_granularity < 1:
        raise InputError(f"query_granularity must be a whole number >= 1 (1: leaf modules); got {query_granularity!r}")
    meta = any(p.is_meta for p in model.parameters()) or any(b.is_meta for b in model.buffers())
    options = None if timing is False or meta else DEFAULT_TIMING if timing is True else timing
    untimed = ""
    try:
        report = analyze(model, (1, *shape), timing=options or False)
    except TimingError as exc:  # the counts stand; only duration[%] is missing
        report = analyze(model, (1, *shape))
        untimed = f"duration[%] not measured: {exc}"
    columns = VIEW_COLUMNS + ((Column.TIME_PERCENT,) if report.timing is not None else ())
    view = report.with_view(full_depth(report), columns=columns, style="flat")
    text = render(report, stat_rows(report, query_granularity))
    return emit(text + ("\n" + untimed if untimed else ""), view)
