"""Roofline time of every operator of a report on one chip, summed per layer.

An operator's calls inside one module are estimated together (the report keeps them
aggregated per module and operator name): the larger of FLOPs / (the peak for its dtype x
efficiency) and bytes / (bandwidth x efficiency), plus the per-call cost for each call. The
matmul class (operators with MACs) runs at the chip's matrix peak, everything else at its
vector peak. Some classes have figures of their own, as their rates differ several-fold on
a CPU: elementwise transcendental functions (exp, sigmoid, tanh, GELU, ...), windowed
pooling, the convolutions of a module with groups (depthwise), and convolutions by their
size. A layer's own time is that of the operators it ran itself plus the cost of its own
module calls; its time sums its subtree's, so the rows add up to the pass's latency at
every depth, like MACs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..report.model import LayerReport, OpStats
from .hardware import Hardware, peak_dtype

# When a chip has no peak for a dtype, the nearest one it has (recorded in the estimate).
_SUBSTITUTES = {
    "fp8": ("fp16", "bf16"), "int8": ("fp8", "fp16", "bf16"), "bf16": ("fp16", "fp32"), "fp16": ("bf16", "fp32"),
    "tf32": ("fp32",), "fp64": ("fp32",), "fp32": ("tf32", "bf16", "fp16"),
}
_COLLECTIVE_NAMESPACES = ("_c10d_functional", "c10d", "_dtensor")
# Elementwise operators that evaluate a transcendental function per element (the formula
# table counts each 1 FLOP per element); in-place forms ("exp_") are the same work.
TRANSCENDENTAL = frozenset({
    "exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "sigmoid", "silu", "gelu", "tanh", "erf", "erfc",
    "erfinv", "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh", "softplus",
    "mish", "elu", "selu", "celu", "log_sigmoid_forward",
})
# Windowed pooling (k FLOPs per output of a k-element window in the formula table).
POOLING = frozenset(
    f"{kind}_pool{dims}d{suffix}" for kind in ("max", "avg") for dims in (1, 2, 3) for suffix in ("", "_with_indices")
)


@dataclass(frozen=True)
class OpTime:
    """The estimate of one operator's calls; seconds per bound ("compute", "memory",
    "overhead", "network") add up to ``seconds``."""

    seconds: float
    bound: str
    parts: Mapping[str, float]


def own_operators(layer: LayerReport, children: list[LayerReport], backward: bool) -> dict[str, OpStats]:
    """The operators a layer ran itself: its inclusive ones less its children's."""
    mine = layer.backward_operators if backward else layer.operators
    own: dict[str, OpStats] = {}
    for name, stats in mine.items():
        below = [child.backward_operators if backward else child.operators for child in children]
        rest = [ops[name] for ops in below if name in ops]
        calls = stats.calls - sum(r.calls for r in rest)
        if calls <= 0:
            continue
        own[name] = OpStats(
            calls,
            stats.macs - sum(r.macs for r in rest),
            stats.flops - sum(r.flops for r in rest),
            stats.uncounted - sum(r.uncounted for r in rest),
            stats.read - sum(r.read for r in rest),
            stats.written - sum(r.written for r in rest),
            stats.dtype,
        )
    return own


class Roofline:
    """Estimates operators on ``hardware``, noting what it could not estimate exactly."""

    def __init__(self, hardware: Hardware):
        self.hardware = hardware
        self.unestimated: dict[str, int] = {}
        self.bytes_only: dict[str, int] = {}
        self.substituted: dict[str, str] = {}

    def _rate(self, dtype: str | None, kind: str) -> float:
        """FLOP/s of ``kind`` of work ("matrix", "vector", "transcendental", "pooling", "grouped")."""
        hw = self.hardware
        rates = {"matrix": hw.matrix_rate, "vector": hw.vector_rate, "transcendental": hw.transcendental_rate,
                 "pooling": hw.pooling_rate, "grouped": hw.grouped_conv_rate}[kind]
        wanted = peak_dtype(dtype) or "fp32"  # integer and boolean work: at the fp32 rate
        for candidate in (wanted, *_SUBSTITUTES.get(wanted, ())):
            rate = rates(candidate)
            if rate is not None:
                if candidate != wanted and peak_dtype(dtype) is not None:
                    self.substituted[wanted] = candidate
                return rate
        # The chip lists none of them: its best-known peak (what any of its units can do).
        best = max(hw.peak_flops, key=lambda name: hw.peak_flops[name])
        self.substituted[wanted] = best
        return hw.peak_flops[best] * hw.compute_efficiency

    def op(self, name: str, stats: OpStats, *, grouped: bool = False) -> OpTime | None:
        """None: neither FLOPs nor bytes known (listed as unestimated). ``grouped``: the operator
        ran in a module with groups (a depthwise convolution's own cost, for its convolutions)."""
        hw = self.hardware
        moved = stats.read + stats.written
        if name.endswith("wait_tensor"):  # waits for a collective and returns its tensor: moves nothing itself
            seconds = stats.calls * hw.view_overhead
            return OpTime(seconds, "overhead", {"overhead": seconds})
        if name.split(".")[0] in _COLLECTIVE_NAMESPACES:
            link = hw.interconnect_bandwidth or hw.network_bandwidth
            if link is None or not moved:
                self.unestimated[name] = self.unestimated.get(name, 0) + stats.calls
                return None
            seconds = moved / link + stats.calls * hw.call_overhead
            return OpTime(seconds, "network", {"network": seconds})
        if stats.uncounted:
            if not moved and stats.uncounted == stats.calls:
                self.unestimated[name] = self.unestimated.get(name, 0) + stats.calls
                return None
            self.bytes_only[name] = self.bytes_only.get(name, 0) + stats.uncounted
        if not moved and not stats.flops:  # views and metadata: a call, no work
            seconds = stats.calls * hw.view_overhead
            return OpTime(seconds, "overhead", {"overhead": seconds})
        kind = _kind(name, stats, grouped)
        rate = self._rate(stats.dtype, kind)
        if kind == "matrix" and _base(name) == "convolution":  # its size's share of the peak
            rate *= hw.conv_fraction(stats.flops / max(stats.calls, 1))
        compute = stats.flops / rate if stats.flops else 0.0
        memory = moved / hw.bandwidth
        overhead = stats.calls * (hw.grouped_conv_call if kind == "grouped" else hw.call_overhead)
        limit = "compute" if compute >= memory else "memory"
        work = max(compute, memory)
        bound = "overhead" if overhead > work else limit
        return OpTime(work + overhead, bound, {limit: work, "overhead": overhead})


def _base(name: str) -> str:
    """The operator's name without its namespace and overload ("aten.exp_" -> "exp_")."""
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _kind(name: str, stats: OpStats, grouped: bool) -> str:
    """Which rate an operator's FLOPs run at."""
    base = _base(name)
    if stats.macs:
        return "grouped" if grouped and base == "convolution" else "matrix"
    if base in POOLING:
        return "pooling"
    return "transcendental" if base.rstrip("_") in TRANSCENDENTAL else "vector"


def add_parts(into: dict[str, float], parts: Mapping[str, float]) -> None:
    for bound, seconds in parts.items():
        into[bound] = into.get(bound, 0.0) + seconds


def main_bound(parts: Mapping[str, float]) -> str | None:
    """The bound that took the most time (None when nothing took any)."""
    busy = {bound: seconds for bound, seconds in parts.items() if seconds > 0}
    return max(busy, key=lambda bound: busy[bound]) if busy else None
