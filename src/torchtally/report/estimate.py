"""EstimateStats: the estimated time of a run on one chip, as plain numbers (the per-layer
times are on the layers). Estimates are labelled as such everywhere: never a measurement."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

BOUNDS = ("compute", "memory", "overhead", "network")


@dataclass(frozen=True)
class EstimateStats:
    """Roofline estimate of one pass on ``hardware`` (seconds unless said otherwise)."""

    hardware: Mapping[str, Any]  # the chip's figures (Hardware.to_dict())
    latency: float  # the forward pass
    throughput: float | None  # samples per second: batch_size / latency (None without a batch)
    batch_size: int
    by_bound: Mapping[str, float]  # forward seconds of the operators each bound limits
    # Training (None otherwise): the backward pass, one optimizer step, and the whole step.
    backward: float | None = None
    optimizer_step: float | None = None
    step: float | None = None
    # Operators with neither FLOPs nor bytes known (name -> calls): not in any time, not free.
    unestimated: Mapping[str, int] = field(default_factory=dict)
    # Operators without a FLOP formula, timed from their bytes alone (name -> calls): a lower bound.
    bytes_only: Mapping[str, int] = field(default_factory=dict)
    # Dtypes the chip has no peak for, and the peak used instead ("fp8" -> "fp16").
    substituted: Mapping[str, str] = field(default_factory=dict)
    model_flops_utilization: float | None = None  # forward FLOPs / latency / the chip's peak: the estimate's own MFU
    # When the run was also timed (timing=True): the measured median forward pass on the
    # machine at hand, and the fraction of this chip's peak it reached (MFU).
    measured_latency: float | None = None
    measured_mfu: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "hardware": dict(self.hardware),
            "latency": self.latency,
            "throughput": self.throughput,
            "batch_size": self.batch_size,
            "by_bound": dict(self.by_bound),
            "backward": self.backward,
            "optimizer_step": self.optimizer_step,
            "step": self.step,
            "unestimated": dict(self.unestimated),
            "bytes_only": dict(self.bytes_only),
            "substituted": dict(self.substituted),
            "model_flops_utilization": self.model_flops_utilization,
            "measured_latency": self.measured_latency,
            "measured_mfu": self.measured_mfu,
        }
