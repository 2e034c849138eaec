"""GenerationReport: a language model's generation — the prompt pass (prefill) and every
decode step — as plain values. Views live in `torchtally.render.generation`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .model import ModelReport

GENERATION_SCHEMA = "torchtally.generation/1"

STEP_FIELDS = (
    "index", "position", "macs", "flops", "memory_read", "memory_write", "kv_cache_bytes", "peak_memory",
    "estimated_time", "active_params", "sampled",
)  # fmt: skip


@dataclass(frozen=True)
class DecodeStep:
    """One decode step: one new token per sequence, against a cache of ``position`` tokens."""

    index: int  # 0 .. new_tokens - 1
    position: int  # tokens in the cache before the step (prompt + index); after it, one more
    macs: int
    flops: int
    memory_read: int  # bytes its operators read (weights, the cache, activations)
    memory_write: int
    kv_cache_bytes: int  # the cache after the step
    peak_memory: int  # weights + cache + the step's working set at its largest
    estimated_time: float | None  # seconds on the chip asked for (None without one)
    active_params: int | None  # mixture of experts: parameters one token uses on average
    sampled: bool  # run on fake tensors; False: on the line through the run steps either side

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in STEP_FIELDS}


@dataclass(frozen=True)
class GenerationReport:
    """Prefill of ``prompt_tokens`` and ``new_tokens`` decode steps, for ``batch_size`` sequences.

    Times are estimates on ``hardware`` (None without one): time to first token is the
    prefill's; a decode step's time is its own. ``max_batch_size`` is the largest batch whose
    peak fits the chip's memory at these lengths."""

    model_type: str
    prompt_tokens: int
    new_tokens: int
    batch_size: int
    cache_type: str  # the class of the cache the model kept
    prefill: ModelReport
    decode_steps: tuple[DecodeStep, ...]
    kv_cache_bytes_per_token: int | None  # what one more token adds per sequence (see docs/generation.md)
    weight_bytes: int  # parameters and buffers (this rank's, under a layout)
    peak_memory: int  # of the whole generation: the prefill's or the largest step's
    prefill_kv_cache_bytes: int  # the cache the prompt pass left
    prefill_peak_memory: int  # weights + cache + the prompt pass's working set at its largest
    hardware: Mapping[str, Any] | None = None
    max_batch_size: int | None = None  # None without a chip (or a peak that does not grow with the batch); 0: not one sequence fits

    @property
    def sampled_steps(self) -> tuple[int, ...]:
        """The indices of the steps run on fake tensors (the others are interpolated)."""
        return tuple(step.index for step in self.decode_steps if step.sampled)

    @property
    def kv_cache_bytes(self) -> int:
        """The cache at the end of the generation (after the last step)."""
        return self.decode_steps[-1].kv_cache_bytes if self.decode_steps else 0

    @property
    def time_to_first_token(self) -> float | None:
        return None if self.prefill.estimate is None else self.prefill.estimate.latency

    @property
    def decode_time(self) -> float | None:
        """All decode steps, seconds."""
        times = [step.estimated_time for step in self.decode_steps]
        return None if not times or any(t is None for t in times) else sum(t for t in times if t is not None)

    @property
    def decode_step_time(self) -> float | None:
        """The mean decode step, seconds: the time per output token of each sequence."""
        total = self.decode_time
        return None if total is None else total / len(self.decode_steps)

    @property
    def tokens_per_second(self) -> float | None:
        """Tokens generated per second over the decode, all sequences together."""
        total = self.decode_time
        return None if not total else self.batch_size * len(self.decode_steps) / total

    @property
    def total_time(self) -> float | None:
        """Prefill and every decode step, seconds."""
        first, rest = self.time_to_first_token, self.decode_time
        return None if first is None or rest is None else first + rest

    def step_at(self, fraction: float) -> DecodeStep:
        """The step a fraction of the way through the decode (0: first, 1: last)."""
        return self.decode_steps[round(fraction * (len(self.decode_steps) - 1))]

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": GENERATION_SCHEMA,
            "model_type": self.model_type,
            "prompt_tokens": self.prompt_tokens,
            "new_tokens": self.new_tokens,
            "batch_size": self.batch_size,
            "cache_type": self.cache_type,
            "kv_cache_bytes_per_token": self.kv_cache_bytes_per_token,
            "kv_cache_bytes": self.kv_cache_bytes,
            "weight_bytes": self.weight_bytes,
            "peak_memory": self.peak_memory,
            "prefill_kv_cache_bytes": self.prefill_kv_cache_bytes,
            "prefill_peak_memory": self.prefill_peak_memory,
            "hardware": None if self.hardware is None else dict(self.hardware),
            "time_to_first_token": self.time_to_first_token,
            "decode_step_time": self.decode_step_time,
            "tokens_per_second": self.tokens_per_second,
            "total_time": self.total_time,
            "max_batch_size": self.max_batch_size,
            "sampled_steps": list(self.sampled_steps),
            "prefill": self.prefill.to_dict(),
            "decode_steps": [step.to_dict() for step in self.decode_steps],
        }

    def to_json(self, indent: int | None = 2) -> str:
        import json

        return json.dumps(self.to_dict(), indent=indent)

    def to_csv(self) -> str:
        """One row per decode step."""
        from ..render.generation import steps_csv

        return steps_csv(self)

    def table(self) -> str:
        """The prefill / decode summary as text."""
        from ..render.generation import summary_text

        return summary_text(self)

    def __str__(self) -> str:
        return self.table()

    def __repr__(self) -> str:
        return (
            f"<GenerationReport {self.model_type}: {self.prompt_tokens}+{self.new_tokens} tokens x {self.batch_size}, "
            f"KV cache {self.kv_cache_bytes:,} B at the end>"
        )
