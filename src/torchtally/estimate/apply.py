"""`estimate(report, hardware)`: the report with every layer's estimated time on a chip and
the pass's latency, throughput and (for training) backward and optimizer-step times."""

from __future__ import annotations

from dataclasses import replace

from ..errors import InputError
from ..report.estimate import EstimateStats
from ..report.model import ModelReport
from .catalog import hardware as named_hardware
from .hardware import Hardware, peak_dtype
from .roofline import Roofline, add_parts, main_bound, own_operators


def resolve(hardware: Hardware | str) -> Hardware:
    if isinstance(hardware, Hardware):
        return hardware
    if isinstance(hardware, str):
        return named_hardware(hardware)
    raise InputError(f"hardware must be a name such as 'h100-sxm' or a tt.Hardware; got {hardware!r}")


def _pass(report: ModelReport, roofline: Roofline, backward: bool) -> tuple[list[float], list[dict[str, float]]]:
    """Per layer, the own seconds and own seconds per bound of one pass: its own operators'
    and, in the forward, the cost of its own calls (the backward calls no modules)."""
    layers = report.layers
    seconds: list[float] = []
    parts: list[dict[str, float]] = []
    calling = 0.0 if backward else roofline.hardware.module_overhead
    for layer in layers:
        children = [layers[child] for child in layer.children]
        total = layer.calls * calling
        split: dict[str, float] = {"overhead": total} if total else {}
        grouped = not backward and (layer.groups or 1) > 1  # calibration measures forward ones only
        for name, stats in own_operators(layer, children, backward).items():
            found = roofline.op(name, stats, grouped=grouped)
            if found is not None:
                total += found.seconds
                add_parts(split, found.parts)
        seconds.append(total)
        parts.append(split)
    return seconds, parts


def _inclusive(report: ModelReport, own: list[float], parts: list[dict[str, float]]) -> tuple[list[float], list[dict[str, float]]]:
    total = list(own)
    split = [dict(p) for p in parts]
    for index in range(len(report.layers) - 1, -1, -1):  # children come after their parent
        parent = report.layers[index].parent
        if parent is not None:
            total[parent] += total[index]
            add_parts(split[parent], split[index])
    return total, split


def _main_dtype(report: ModelReport) -> str | None:
    """The catalog dtype that did the most matmul-class FLOPs (else the most FLOPs)."""
    weights: dict[str, tuple[int, int]] = {}
    for stats in report.operators.values():
        name = peak_dtype(stats.dtype)
        if name is not None:
            matrix, other = weights.get(name, (0, 0))
            weights[name] = (matrix + (stats.flops if stats.macs else 0), other + stats.flops)
    return max(weights, key=lambda name: weights[name]) if weights else None


def _utilization(flops: int, seconds: float | None, hw: Hardware, dtype: str | None) -> float | None:
    peak = hw.peak_flops.get(dtype) if dtype is not None else None
    if peak is None or not seconds or seconds <= 0 or not flops:
        return None
    return flops / seconds / peak


def _optimizer_seconds(report: ModelReport, roofline: Roofline) -> float | None:
    """One optimizer step: its FLOPs at the vector rate, or its traffic (each parameter and
    state tensor read and written, each gradient read), whichever is longer."""
    if report.optimizer is None:
        return None
    memory = report.memory
    gradients = memory.gradients or 0
    state = memory.optimizer_state or 0
    moved = 2 * gradients + gradients + 2 * state  # parameters (as many bytes as their gradients) r+w, gradients r, state r+w
    compute = report.optimizer_flops / roofline._rate("float32", "vector") if report.optimizer_flops else 0.0
    return max(compute, moved / roofline.hardware.bandwidth)


def estimate_time(report: ModelReport, hardware: Hardware | str) -> ModelReport:
    """``report`` with estimated times on ``hardware`` (a catalog name or a `Hardware`)."""
    if not isinstance(report, ModelReport):
        raise InputError(f"estimate_time() takes a ModelReport (from tt.analyze); got {type(report).__name__}")
    hw = resolve(hardware)
    roofline = Roofline(hw)
    own, own_parts = _pass(report, roofline, backward=False)
    inclusive, parts = _inclusive(report, own, own_parts)
    layers = tuple(
        replace(
            layer,
            estimated_time=inclusive[index],
            self_estimated_time=own[index],
            bound=main_bound(parts[index]),
            self_bound=main_bound(own_parts[index]),
        )
        for index, layer in enumerate(report.layers)
    )
    latency = inclusive[0] if layers else 0.0
    backward = optimizer = step = None
    if report.training:
        backward_own, _ = _pass(report, roofline, backward=True)
        backward = sum(backward_own)
        optimizer = _optimizer_seconds(report, roofline)
        step = latency + backward + (optimizer or 0.0)
    first = report.inputs[0].shape if report.inputs else ()
    batch = max(first[0], 0) if first else 1
    dtype = _main_dtype(report)
    measured = report.timing.latency_median if report.timing is not None else None
    stats = EstimateStats(
        hardware=hw.to_dict(),
        latency=latency,
        throughput=batch / latency if batch and latency > 0 else None,
        batch_size=batch,
        by_bound=parts[0] if layers else {},
        backward=backward,
        optimizer_step=optimizer,
        step=step,
        unestimated=dict(sorted(roofline.unestimated.items())),
        bytes_only=dict(sorted(roofline.bytes_only.items())),
        substituted=dict(sorted(roofline.substituted.items())),
        model_flops_utilization=_utilization(report.total_flops, latency, hw, dtype),
        measured_latency=measured,
        measured_mfu=_utilization(report.total_flops, measured, hw, dtype),
    )
    return replace(report, layers=layers, estimate=stats)
