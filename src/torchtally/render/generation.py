"""Views of a GenerationReport: the prefill / decode summary as text, the steps as CSV."""

from __future__ import annotations

from ..report.generation import STEP_FIELDS, DecodeStep, GenerationReport
from ..report.tables import csv_from
from .table import TableView
from .text import render_text
from .units import binary_bytes, decimal, seconds_text

_HEADER = ("", "Tokens", "Context", "MACs", "FLOPs", "Read", "Written", "KV cache", "Peak", "Est. time")


def _time(value: float | None) -> str:
    return "-" if value is None else seconds_text(value)


def _step_row(label: str, step: DecodeStep) -> tuple[str, ...]:
    return (
        label, "1", f"{step.position:,}", decimal(step.macs), decimal(step.flops), binary_bytes(step.memory_read),
        binary_bytes(step.memory_write), binary_bytes(step.kv_cache_bytes), binary_bytes(step.peak_memory),
        _time(step.estimated_time),
    )  # fmt: skip


def _rows(report: GenerationReport) -> list[tuple[str, ...]]:
    prefill = report.prefill
    root = prefill.layers[0] if prefill.layers else None
    rows: list[tuple[str, ...]] = [(
        "Prefill", f"{report.prompt_tokens:,}", "0", decimal(prefill.total_macs), decimal(prefill.total_flops),
        binary_bytes(root.memory_read if root else 0), binary_bytes(root.memory_write if root else 0),
        binary_bytes(report.prefill_kv_cache_bytes), binary_bytes(report.prefill_peak_memory), _time(report.time_to_first_token),
    )]  # fmt: skip
    steps = report.decode_steps
    if steps:
        rows.append(_step_row("Decode, first", steps[0]))
        if len(steps) > 2:
            rows.append(_step_row("Decode, middle", report.step_at(0.5)))
        if len(steps) > 1:
            rows.append(_step_row("Decode, last", steps[-1]))
        rows.append((
            f"Decode, all {len(steps):,}", f"{len(steps):,}", "", decimal(sum(s.macs for s in steps)),
            decimal(sum(s.flops for s in steps)), binary_bytes(sum(s.memory_read for s in steps)),
            binary_bytes(sum(s.memory_write for s in steps)), binary_bytes(report.kv_cache_bytes),
            binary_bytes(max(s.peak_memory for s in steps)), _time(report.decode_time),
        ))  # fmt: skip
    return rows


def _sampled_text(report: GenerationReport) -> str:
    run = report.sampled_steps
    if len(run) == len(report.decode_steps):
        return f"all {len(run)} decode steps run on fake tensors"
    shown = ", ".join(str(i) for i in run[:12]) + (", ..." if len(run) > 12 else "")
    return (
        f"{len(run)} of {len(report.decode_steps)} decode steps run on fake tensors (steps {shown}); "
        "the others lie on the line through the run steps either side, each stretch checked at its midpoint"
    )


def _totals(report: GenerationReport) -> tuple[str, ...]:
    """The lines under the table: cache, peak, times, the largest batch, which steps ran."""
    tokens = report.prompt_tokens + report.new_tokens
    cache = f"KV cache: {binary_bytes(report.kv_cache_bytes)} at the end ({tokens:,} tokens x {report.batch_size})"
    if report.kv_cache_bytes_per_token is not None:
        cache += f", {report.kv_cache_bytes_per_token:,} B per token per sequence"
    lines = [
        cache,
        f"Peak memory: {binary_bytes(report.peak_memory)} (weights {binary_bytes(report.weight_bytes)}, "
        f"the cache, and the largest working set)",
    ]
    rate = report.tokens_per_second
    if report.time_to_first_token is not None and report.decode_step_time is not None:
        lines.append(
            f"Time to first token: {_time(report.time_to_first_token)}; per output token: {_time(report.decode_step_time)} "
            f"(mean); {rate:,.1f} tokens/s over the batch; whole generation {_time(report.total_time)}"
            if rate is not None
            else f"Time to first token: {_time(report.time_to_first_token)}"
        )
    if report.max_batch_size is not None and report.hardware is not None:
        memory = report.hardware.get("memory_bytes")
        room = f" of {binary_bytes(int(memory))}" if memory else ""
        count = report.max_batch_size
        lines.append(f"Largest batch that fits{room}: {count:,} sequence{'' if count == 1 else 's'} at these lengths")
    lines.append(_sampled_text(report))
    return tuple(lines)


def summary_text(report: GenerationReport) -> str:
    lines = [
        f"Generation: {report.model_type}, {report.prompt_tokens:,} prompt + {report.new_tokens:,} new tokens, "
        f"batch {report.batch_size}, {report.cache_type}",
    ]
    if report.hardware is not None:
        lines.append(f"Estimated on {report.hardware.get('name', 'the chip given')} (roofline; see docs/hardware.md)")
    legend = ("Tokens: fed per sequence; Context: tokens already in the cache; the rest: the whole batch.",)
    numeric = (False,) + (True,) * (len(_HEADER) - 1)
    table = TableView(_HEADER, numeric, tuple(_rows(report)), footer=(legend, _totals(report)))
    return "\n".join([*lines, "", render_text(table)])


def steps_csv(report: GenerationReport) -> str:
    """One row per decode step, the columns of `DecodeStep`."""
    return csv_from([step.to_dict() for step in report.decode_steps], STEP_FIELDS)
