"""`Hardware`: the figures a roofline estimate needs of one chip, from a datasheet (the
catalog) or measured on the machine at hand (calibration)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from ..errors import InputError

# The dtype names peaks are keyed by, and the torch dtypes (as reports write them) behind each.
DTYPES = ("fp64", "fp32", "tf32", "bf16", "fp16", "fp8", "int8")
_FROM_TORCH = {
    "float64": "fp64", "float32": "fp32", "bfloat16": "bf16", "float16": "fp16",
    "float8_e4m3fn": "fp8", "float8_e5m2": "fp8", "float8_e4m3fnuz": "fp8", "float8_e5m2fnuz": "fp8",
    "int8": "int8", "uint8": "int8", "qint8": "int8", "quint8": "int8",
}


def peak_dtype(torch_dtype: str | None) -> str | None:
    """The catalog's name for a report's dtype (``"bfloat16"`` -> ``"bf16"``); None for dtypes
    with no peak of their own (integers wider than 8 bits, booleans, complex)."""
    if torch_dtype is None:
        return None
    return _FROM_TORCH.get(torch_dtype)


def _positive(value: object, what: str, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise InputError(f"{what} must be a positive number; got {value!r}")


def _rates(values: Mapping[str, float] | None, what: str) -> Mapping[str, float]:
    if values is None:
        return MappingProxyType({})
    if not isinstance(values, Mapping):
        raise InputError(f"{what} must be a mapping of dtype name to FLOP/s, e.g. {{'bf16': 989e12}}; got {values!r}")
    rates: dict[str, float] = {}
    for name, rate in values.items():
        if name not in DTYPES:
            raise InputError(f"{what}: {name!r} is not a dtype name; use one of {', '.join(DTYPES)}")
        _positive(rate, f"{what}[{name!r}]")
        rates[name] = float(rate)
    return MappingProxyType(rates)


def _curve(points: object) -> tuple[tuple[float, float], ...]:
    """(FLOPs per call, fraction of the peak) pairs, checked and sorted by size."""
    what = "conv_efficiency must be pairs (FLOPs per call, fraction of the peak in (0, 1])"
    if isinstance(points, (str, bytes)) or not isinstance(points, Sequence):
        raise InputError(f"{what}; got {points!r}")
    curve = []
    for pair in points:
        if isinstance(pair, (str, bytes)) or not isinstance(pair, Sequence) or len(pair) != 2:
            raise InputError(f"{what}; got {pair!r}")
        size, fraction = pair
        _positive(size, "conv_efficiency size")
        _positive(fraction, "conv_efficiency fraction")
        if fraction > 1:
            raise InputError(f"{what}; got {pair!r}")
        curve.append((float(size), float(fraction)))
    return tuple(sorted(curve))


@dataclass(frozen=True)
class Hardware:
    """One chip's figures (SI units: FLOP/s, bytes/s, bytes, seconds).

    ``peak_flops``: dense matrix (tensor-core) peak per dtype name (``"fp32"``, ``"tf32"``,
    ``"bf16"``, ``"fp16"``, ``"fp8"``, ``"int8"``, ``"fp64"``), used for the matmul,
    convolution and attention class of operators. ``vector_flops``: the peak of every other
    operator (elementwise, reductions), per dtype; a dtype missing there uses ``peak_flops``.
    ``memory_bandwidth``: bytes per second to and from the chip's own memory.
    ``call_overhead``: seconds every operator that does work costs on top of its roofline
    time (launch, dispatch); ``view_overhead`` the same for operators that move nothing.
    ``module_overhead``: seconds each call of a module costs beyond its operators (the Python
    of ``nn.Module.__call__`` and its ``forward``), charged to that module; 0 where that Python
    overlaps the device's work (a GPU's kernels run while the CPU goes on).
    ``transcendental_flops``: the rate of elementwise exp, sigmoid, tanh, GELU and their kin
    per dtype, counted as the formula table does (1 FLOP per element); a dtype missing there
    uses ``vector_flops``. ``pooling_flops``: the same for windowed max and average pooling (k
    FLOPs per output of a k-element window). ``conv_efficiency``: pairs (FLOPs per call, the
    fraction of the matrix peak a convolution of that size reaches), interpolated on the
    logarithm of the size and held beyond the ends; empty: the peak. ``grouped_conv_overhead`` and ``grouped_conv_efficiency``: a grouped
    (depthwise) convolution's fixed cost per call (None: ``call_overhead``) and the fraction of
    the matrix peak it reaches.
    Interconnect figures are the datasheet's: ``interconnect_bandwidth`` between chips of a
    node (NVLink, xGMI), ``pcie_bandwidth``, ``network_bandwidth`` per node.
    The efficiencies scale the peaks and the bandwidth: 0.6 means 60% of the datasheet is
    reached."""

    name: str
    peak_flops: Mapping[str, float]
    memory_bandwidth: float
    memory_bytes: int | None = None
    vector_flops: Mapping[str, float] = field(default_factory=dict)
    call_overhead: float = 0.0
    view_overhead: float = 0.0
    module_overhead: float = 0.0
    transcendental_flops: Mapping[str, float] = field(default_factory=dict)
    pooling_flops: Mapping[str, float] = field(default_factory=dict)
    conv_efficiency: tuple[tuple[float, float], ...] = ()
    grouped_conv_overhead: float | None = None
    grouped_conv_efficiency: float = 1.0
    interconnect_bandwidth: float | None = None
    pcie_bandwidth: float | None = None
    network_bandwidth: float | None = None
    compute_efficiency: float = 1.0
    memory_efficiency: float = 1.0
    source: str = "user"  # "datasheet", "calibrated" or "user"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise InputError(f"Hardware name must be a non-empty string; got {self.name!r}")
        object.__setattr__(self, "peak_flops", _rates(self.peak_flops, "peak_flops"))
        object.__setattr__(self, "vector_flops", _rates(self.vector_flops, "vector_flops"))
        object.__setattr__(self, "transcendental_flops", _rates(self.transcendental_flops, "transcendental_flops"))
        object.__setattr__(self, "pooling_flops", _rates(self.pooling_flops, "pooling_flops"))
        object.__setattr__(self, "conv_efficiency", _curve(self.conv_efficiency))
        if not self.peak_flops:
            raise InputError("peak_flops needs at least one dtype's FLOP/s, e.g. {'fp32': 19.5e12}")
        _positive(self.memory_bandwidth, "memory_bandwidth")
        for name in ("memory_bytes", "interconnect_bandwidth", "pcie_bandwidth", "network_bandwidth"):
            _positive(getattr(self, name), name, allow_none=True)
        for name in ("call_overhead", "view_overhead", "module_overhead", "grouped_conv_overhead"):
            value = getattr(self, name)
            if value is None and name == "grouped_conv_overhead":
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0 or not math.isfinite(value):
                raise InputError(f"{name} must be a number of seconds >= 0; got {value!r}")
        for name in ("compute_efficiency", "memory_efficiency", "grouped_conv_efficiency"):
            value = getattr(self, name)
            _positive(value, name)
            if value > 1:
                raise InputError(f"{name} is the fraction of the peak reached, in (0, 1]; got {value!r}")

    def with_efficiency(self, compute: float | None = None, memory: float | None = None) -> Hardware:
        """The same chip reaching these fractions of its peaks (None keeps the current one)."""
        return replace(
            self,
            compute_efficiency=self.compute_efficiency if compute is None else compute,
            memory_efficiency=self.memory_efficiency if memory is None else memory,
        )

    def matrix_rate(self, dtype: str) -> float | None:
        """Achievable FLOP/s of matmul-class work in ``dtype`` (None: the chip has no such peak)."""
        peak = self.peak_flops.get(dtype)
        return None if peak is None else peak * self.compute_efficiency

    def vector_rate(self, dtype: str) -> float | None:
        """Achievable FLOP/s of other work in ``dtype``."""
        peak = self.vector_flops.get(dtype, self.peak_flops.get(dtype))
        return None if peak is None else peak * self.compute_efficiency

    def transcendental_rate(self, dtype: str) -> float | None:
        """Achievable FLOP/s of elementwise transcendental work (exp, sigmoid, ...) in ``dtype``."""
        peak = self.transcendental_flops.get(dtype)
        return self.vector_rate(dtype) if peak is None else peak * self.compute_efficiency

    def conv_fraction(self, flops_per_call: float) -> float:
        """The fraction of the matrix peak a convolution of this many FLOPs per call reaches."""
        curve = self.conv_efficiency
        if not curve:
            return 1.0
        if flops_per_call <= curve[0][0]:
            return curve[0][1]
        for (low, low_fraction), (high, high_fraction) in zip(curve, curve[1:]):
            if flops_per_call <= high:
                where = math.log(flops_per_call / low) / math.log(high / low) if high > low else 1.0
                return low_fraction + where * (high_fraction - low_fraction)
        return curve[-1][1]

    def pooling_rate(self, dtype: str) -> float | None:
        """Achievable FLOP/s of windowed max and average pooling in ``dtype``."""
        peak = self.pooling_flops.get(dtype)
        return self.vector_rate(dtype) if peak is None else peak * self.compute_efficiency

    def grouped_conv_rate(self, dtype: str) -> float | None:
        """Achievable FLOP/s of a grouped (depthwise) convolution in ``dtype``."""
        rate = self.matrix_rate(dtype)
        return None if rate is None else rate * self.grouped_conv_efficiency

    @property
    def grouped_conv_call(self) -> float:
        """Seconds of a grouped convolution's fixed cost per call."""
        return self.call_overhead if self.grouped_conv_overhead is None else self.grouped_conv_overhead

    @property
    def bandwidth(self) -> float:
        """Achievable bytes per second of memory traffic."""
        return self.memory_bandwidth * self.memory_efficiency

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "peak_flops": dict(self.peak_flops),
            "vector_flops": dict(self.vector_flops),
            "memory_bandwidth": self.memory_bandwidth,
            "memory_bytes": self.memory_bytes,
            "call_overhead": self.call_overhead,
            "view_overhead": self.view_overhead,
            "module_overhead": self.module_overhead,
            "transcendental_flops": dict(self.transcendental_flops),
            "pooling_flops": dict(self.pooling_flops),
            "conv_efficiency": [list(pair) for pair in self.conv_efficiency],
            "grouped_conv_overhead": self.grouped_conv_overhead,
            "grouped_conv_efficiency": self.grouped_conv_efficiency,
            "interconnect_bandwidth": self.interconnect_bandwidth,
            "pcie_bandwidth": self.pcie_bandwidth,
            "network_bandwidth": self.network_bandwidth,
            "compute_efficiency": self.compute_efficiency,
            "memory_efficiency": self.memory_efficiency,
        }
