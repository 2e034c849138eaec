"""What each column shows for a row: its header, its raw value and that value as text."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..report.model import LayerReport, ModelReport
from ..report.settings import Column
from ..report.specs import TensorSpec
from .units import binary_bytes, shape_text, with_commas
from .view import Row

EMPTY = "--"


def _shapes(calls: tuple[tuple[TensorSpec, ...], ...]) -> str:
    """The first call's tensor shapes; `` ...`` when later calls had other shapes."""
    if not calls or not calls[0]:
        return EMPTY
    first = ", ".join(shape_text(spec.shape) for spec in calls[0])
    differs = any(tuple(s.shape for s in call) != tuple(s.shape for s in calls[0]) for call in calls[1:])
    return first + (" ..." if differs else "")


def _count(value: int) -> str:
    return with_commas(value) if value else EMPTY


def _bytes(value: int) -> str:
    return binary_bytes(value) if value else EMPTY


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.2f}%" if part and whole else EMPTY


def _time(seconds: float, timed: bool) -> str:
    """``1.23 ms`` / ``456.7 µs``; own times may come out slightly negative from timer noise."""
    if not timed or seconds == 0:
        return EMPTY
    if abs(seconds) >= 1:
        return f"{seconds:.2f} s"
    if abs(seconds) >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} µs"


def _time_percent(seconds: float, report: ModelReport) -> str:
    total = report.timing.timed_mean if report.timing is not None else 0.0
    return f"{100 * seconds / total:.1f}%" if total > 0 else EMPTY


def _bound(row: Row, layer: LayerReport) -> str:
    """What limits the row's estimated time: the subtree's for a folded row, else its own."""
    bound = layer.bound if row.whole_subtree else layer.self_bound
    return bound or EMPTY


def _kernel(layer: LayerReport) -> str:
    if layer.kernel_size is None:
        return EMPTY
    text = shape_text(layer.kernel_size)
    return f"{text} g={layer.groups}" if layer.groups is not None and layer.groups > 1 else text


def _trainable(row: Row) -> str:
    params, trainable = row.amounts.params, row.amounts.trainable_params
    if params == 0:
        return EMPTY
    return "True" if trainable == params else "False" if trainable == 0 else "Partial"


def _intensity(row: Row) -> str:
    moved = row.amounts.memory_read + row.amounts.memory_write
    return f"{row.amounts.flops / moved:.2f}" if moved and row.amounts.flops else EMPTY


def _params(row: Row, layer: LayerReport, report: ModelReport) -> str:
    text = with_commas(row.amounts.params) if row.amounts.params else ""
    if layer.shared_from and not row.whole_subtree:
        shared = "shared: " + ", ".join(name or report.model_type for name in layer.shared_from)
        text = f"{text} + {shared}" if text else shared
    return text or EMPTY


@dataclass(frozen=True)
class ColumnSpec:
    header: str
    numeric: bool  # right-aligned
    cell: Callable[[Row, LayerReport, ModelReport], str]


COLUMNS: dict[Column, ColumnSpec] = {
    Column.INPUT_SHAPE: ColumnSpec("Input Shape", False, lambda row, layer, report: _shapes(layer.inputs)),
    Column.OUTPUT_SHAPE: ColumnSpec("Output Shape", False, lambda row, layer, report: _shapes(layer.outputs)),
    Column.KERNEL_SIZE: ColumnSpec("Kernel Shape", False, lambda row, layer, report: _kernel(layer)),
    Column.PARAMS: ColumnSpec("Param #", True, _params),
    Column.PARAMS_PERCENT: ColumnSpec(
        "Param %", True, lambda row, layer, report: _percent(row.amounts.params, report.total_params)
    ),
    Column.MACS: ColumnSpec("MACs", True, lambda row, layer, report: _count(row.amounts.macs)),
    Column.MACS_PERCENT: ColumnSpec(
        "MAC %", True, lambda row, layer, report: _percent(row.amounts.macs, report.total_macs)
    ),
    Column.FLOPS: ColumnSpec("FLOPs", True, lambda row, layer, report: _count(row.amounts.flops)),
    Column.BACKWARD_MACS: ColumnSpec("Bwd MACs", True, lambda row, layer, report: _count(row.amounts.backward_macs)),
    Column.BACKWARD_FLOPS: ColumnSpec(
        "Bwd FLOPs", True, lambda row, layer, report: _count(row.amounts.backward_flops)
    ),
    Column.ACTIVATION_BYTES: ColumnSpec(
        "Activations", True, lambda row, layer, report: _bytes(row.amounts.activation_bytes)
    ),
    Column.TRAINABLE: ColumnSpec("Trainable", False, lambda row, layer, report: _trainable(row)),
    Column.CALLS: ColumnSpec("Calls", True, lambda row, layer, report: _count(layer.calls)),
    Column.MEMORY_READ: ColumnSpec("Mem Read", True, lambda row, layer, report: _bytes(row.amounts.memory_read)),
    Column.MEMORY_WRITE: ColumnSpec("Mem Write", True, lambda row, layer, report: _bytes(row.amounts.memory_write)),
    Column.ARITHMETIC_INTENSITY: ColumnSpec("FLOPs/Byte", True, lambda row, layer, report: _intensity(row)),
    Column.TIME: ColumnSpec(
        "Time", True, lambda row, layer, report: _time(row.amounts.time, report.timing is not None)
    ),
    Column.TIME_PERCENT: ColumnSpec("Time %", True, lambda row, layer, report: _time_percent(row.amounts.time, report)),
    Column.ESTIMATED_TIME: ColumnSpec(
        "Est. time", True,
        lambda row, layer, report: _time(row.amounts.estimated_time, report.estimate is not None),
    ),
    Column.BOUND: ColumnSpec("Bound", False, lambda row, layer, report: _bound(row, layer)),
    Column.COMMUNICATION: ColumnSpec("Comm", True, lambda row, layer, report: _bytes(row.amounts.communication_bytes)),
}
