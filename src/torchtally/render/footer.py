"""The lines under a table: totals, memory, how the run was made. The tree style has
torchtally's full footer; the flat style starts with torchsummary's size footer."""

from __future__ import annotations

from ..report.model import ModelReport
from .units import binary_bytes, decimal, seconds_text, shape_text, with_commas

MB = 2**20  # torchsummary's "MB"


def _memory_lines(report: ModelReport) -> list[str]:
    memory = report.memory
    lines = [
        f"Memory: params {binary_bytes(memory.parameters)}, buffers {binary_bytes(memory.buffers)}, "
        f"inputs {binary_bytes(memory.inputs)}, outputs {binary_bytes(memory.outputs)}",
        f"Activations (every leaf module's outputs): {binary_bytes(memory.activations)}",
    ]
    if memory.saved_for_backward is not None:
        lines.append(f"Saved for backward: {binary_bytes(memory.saved_for_backward)}")
    if memory.gradients is not None:
        lines.append(f"Gradients: {binary_bytes(memory.gradients)}")
    if memory.optimizer_state is not None:
        lines.append(f"Optimizer state ({report.optimizer}): {binary_bytes(memory.optimizer_state)}")
    peak = f"Peak memory (estimated from tensor lifetimes): {binary_bytes(memory.peak)}"
    if report.training:
        peak += f", reached in the {memory.peak_phase}" + (" (steady-state step)" if memory.optimizer_state is not None else "")
    lines.append(peak)
    if memory.measured_peak is not None:
        lines.append(f"Measured peak (torch.cuda.max_memory_allocated): {binary_bytes(memory.measured_peak)}")
    return lines


def _param_lines(report: ModelReport) -> list[str]:
    return [
        f"Total params: {with_commas(report.total_params)} ({binary_bytes(report.param_bytes)})",
        f"Trainable params: {with_commas(report.trainable_params)}",
        f"Non-trainable params: {with_commas(report.non_trainable_params)}",
    ]


def truth_lines(report: ModelReport) -> list[str]:
    """What the older tools get wrong: used vs unused weights, sharing, routing, laziness."""
    lines = [
        f"Used params: {with_commas(report.used_params)} (read by an operator during the run)",
        f"Unused params: {with_commas(report.unused_params)}",
    ]
    if report.shared_params:
        lines.append(f"Shared params: {with_commas(report.shared_params)} (held by several modules, counted once)")
    if report.active_params is not None:
        lines.append(
            f"Active params per token: {with_commas(report.active_params)} "
            f"(mixture of experts: {with_commas(report.routed_params)} routed expert params count by the share a token uses)"
        )
    if report.unused_modules:
        lines.append("Modules never called: " + ", ".join(report.unused_modules))
    if report.lazy_modules:
        lines.append("Lazy modules (materialised on a copy for the run): " + ", ".join(report.lazy_modules))
    if report.total_buffers:
        lines.append(f"Buffers: {with_commas(report.total_buffers)} ({binary_bytes(report.buffer_bytes)})")
    return lines


def _compute_lines(report: ModelReport) -> list[str]:
    if not report.training:
        return [
            f"Total MACs: {decimal(report.total_macs)} ({with_commas(report.total_macs)})",
            f"Total FLOPs: {decimal(report.total_flops)} ({with_commas(report.total_flops)})",
        ]
    lines = [
        f"{label}: {decimal(value)} ({with_commas(value)})"
        for label, value in (
            ("Forward MACs", report.forward_macs),
            ("Forward FLOPs", report.forward_flops),
            ("Backward MACs", report.backward_macs),
            ("Backward FLOPs", report.backward_flops),
        )
    ]
    if report.optimizer is not None:
        flops = report.optimizer_flops
        lines.append(f"Optimizer step FLOPs ({report.optimizer}): {decimal(flops)} ({with_commas(flops)})")
    return lines


def _seconds(value: float) -> str:
    return f"{value * 1e3:.3f} ms" if value < 1 else f"{value:.3f} s"


def _timing_lines(report: ModelReport) -> list[str]:
    timing = report.timing
    if timing is None:
        return []
    return [
        f"Latency ({timing.repeats} real forward passes after {timing.warmup} warm-up, batch {timing.batch_size}, "
        f"{timing.clock}): median {_seconds(timing.latency_median)}, p90 {_seconds(timing.latency_p90)}, "
        f"min {_seconds(timing.latency_min)}; throughput {timing.throughput:,.1f} samples/s",
        f"Per-module timers: {_seconds(timing.timed_mean)} per pass on average, "
        f"{100 * timing.overhead:+.1f}% vs plain passes (their measurement overhead)",
    ]


def parallel_lines(report: ModelReport) -> list[str]:
    """The layout of the rank the report describes, its share of the parameters, and the
    bytes its collectives moved (the memory and compute lines above are this rank's)."""
    layout = report.parallel
    if layout is None:
        return []
    mesh = " x ".join(f"{name}={size}" for name, size in zip(layout.mesh_dims, layout.mesh_shape))
    fsdp = ""
    if layout.reshard_after_forward is not None and layout.fsdp > 1:
        fsdp = f"; FSDP {'reshards' if layout.reshard_after_forward else 'keeps'} its blocks' parameters after their forward"
    precision = f"; mixed precision {layout.mixed_precision}" if layout.mixed_precision else ""
    lines = [
        f"Parallel layout (simulated): rank {layout.rank} of {layout.world_size}, mesh {mesh}{fsdp}{precision}; "
        "figures are this rank's, parameter counts the whole model's",
        f"This rank's parameter shards: {with_commas(layout.local_params)} elements"
        + (" (FSDP's padding included)" if layout.fsdp > 1 else ""),
    ]
    for collective in layout.communication:
        lines.append(
            f"Collective {collective.kind}: {collective.calls} calls, {binary_bytes(collective.bytes)} of data, "
            f"{binary_bytes(collective.wire_bytes)} sent by this rank (ring)"
        )
    return lines


def _percent(value: float | None) -> str:
    return "--" if value is None else f"{100 * value:.1f}%"


def estimate_lines(report: ModelReport) -> list[str]:
    """The estimated time on a chip, labelled as an estimate, and what it could not see."""
    found = report.estimate
    if found is None:
        return []
    chip = found.hardware
    split = ", ".join(f"{bound} {seconds_text(seconds)}" for bound, seconds in found.by_bound.items() if seconds > 0)
    speed = f" ({found.throughput:,.1f} samples/s)" if found.throughput is not None else ""
    lines = [
        f"Estimated time on {chip['name']} ({chip['source']} figures, roofline per operator): "
        f"forward {seconds_text(found.latency)}{speed}; {split or 'no work'}; "
        f"model FLOPs utilization {_percent(found.model_flops_utilization)}"
    ]
    if found.step is not None:
        optimizer = "" if found.optimizer_step is None else f", optimizer step {seconds_text(found.optimizer_step)}"
        lines.append(f"Estimated training step: {seconds_text(found.step)} (backward {seconds_text(found.backward or 0.0)}{optimizer})")
    if found.measured_latency is not None:
        lines.append(
            f"Measured forward here: {seconds_text(found.measured_latency)} "
            f"(estimate / measured = {found.latency / found.measured_latency:.2f}; "
            f"MFU against {chip['name']}'s peak {_percent(found.measured_mfu)})"
        )
    if found.unestimated:
        listed = ", ".join(f"{name} x{calls}" for name, calls in found.unestimated.items())
        lines.append(f"Unestimated operators (neither FLOPs nor bytes known; the time is a lower bound): {listed}")
    if found.substituted:
        listed = ", ".join(f"{wanted} as {used}" for wanted, used in found.substituted.items())
        lines.append(f"No peak on {chip['name']} for: {listed}")
    return lines


def uncounted_lines(report: ModelReport) -> list[str]:
    """The operators no formula covered, if any: then every total is a lower bound."""
    uncounted = report.uncounted_ops
    if not uncounted:
        return []
    listed = ", ".join(f"{name} x{calls}" for name, calls in sorted(uncounted.items()))
    return [f"Uncounted operators (totals are a lower bound): {listed}"]


def _run_lines(report: ModelReport) -> list[str]:
    lines = uncounted_lines(report)
    inputs = ", ".join(f"{shape_text(spec.shape)} {spec.dtype}" for spec in report.inputs) or "no tensors"
    how = "fake tensors (no real compute)" if report.execution == "fake" else "real tensors"
    where = "meta (kernels chosen as on cpu)" if report.device == "meta" else report.device
    mode = "mode fixed at export" if report.mode == "fixed" else f"{report.mode} mode"  # torch.export's module
    lines.append(f"Run: {how}, {mode}, on {where}; input {inputs}")
    if report.fallback_reason:
        lines.append(f"Note: ran for real because {report.fallback_reason}")
    return lines


def tree_footer(report: ModelReport) -> list[list[str]]:
    """torchtally's footer, as one section."""
    lines = _param_lines(report) + truth_lines(report) + _compute_lines(report) + _memory_lines(report)
    return [lines + _timing_lines(report) + estimate_lines(report) + parallel_lines(report) + _run_lines(report)]


def _mb(value: int) -> str:
    return f"{value / MB:.2f}"


def size_lines(report: ModelReport) -> list[str]:
    """torchsummary's four size lines, in MB (2**20 bytes) from real dtypes."""
    memory = report.memory
    passes = 2 * memory.activations  # torchsummary's convention: every output and its gradient
    return [
        f"Input size (MB): {_mb(memory.inputs)}",
        f"Forward/backward pass size (MB): {_mb(passes)}",
        f"Params size (MB): {_mb(report.param_bytes)}",
        f"Estimated Total Size (MB): {_mb(memory.inputs + passes + report.param_bytes)}",
    ]


def flat_footer(report: ModelReport) -> list[list[str]]:
    """torchsummary's footer (sizes in MB = 2**20 bytes, from real dtypes; the forward/backward
    pass size is its convention, twice the activations: each output and its gradient), then
    the figures it lacks."""
    peak = [f"Peak memory (estimated from tensor lifetimes): {binary_bytes(report.memory.peak)}"]
    extra = (
        truth_lines(report) + _compute_lines(report) + peak + _timing_lines(report) + estimate_lines(report)
        + parallel_lines(report) + _run_lines(report)
    )
    return [_param_lines(report), size_lines(report), extra]
