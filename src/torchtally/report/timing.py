"""TimingStats: the measured forward passes of a timed run, as plain numbers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TimingStats:
    """Measured forward passes (seconds). Per-module times are on the layers."""

    device: str
    clock: str  # "cuda events" or "perf_counter"
    warmup: int
    repeats: int
    batch_size: int  # samples per pass (the first input's first dimension; 0 for an empty batch)
    latency_median: float  # plain forward passes, no timers
    latency_p90: float
    latency_min: float
    latency_mean: float
    throughput: float  # samples per second, batch_size / latency_median
    timed_mean: float  # mean forward pass with a timer around every module (the rows' own times add up to it)
    overhead: float  # timed_mean / latency_mean - 1: what the per-module timers cost

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}
