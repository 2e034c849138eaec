"""Turn what a run recorded (per-module calls and own costs, parameter reads) into a
`ModelReport`: sum costs up the module tree, count parameters by identity, name the
modules that were never called."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from torch import nn

from .frozen import maker
from .memory import RunMemory
from .parallel import original_class
from .params import ParameterIndex, ParamCounts
from .timeline import memory_timeline
from ..report.parallel import ParallelLayout
from ..report.model import LayerReport, Memory, ModelReport, OpStats
from .timing import Measured
from .tracking import ModuleRecord, OpTally
from .tree import ModuleNode


_MISSING = object()
# Spatial dimensions by class-name suffix (MaxPool2d's kernel_size may be a bare int).
_SPATIAL_DIMS = {"1d": 1, "2d": 2, "3d": 3}


def _add_ops(into: dict[str, OpTally], ops: dict[str, OpTally]) -> None:
    for name, tally in ops.items():
        total = into.get(name)
        if total is None:
            total = into[name] = OpTally()
        total.calls += tally.calls
        total.macs += tally.macs
        total.flops += tally.flops
        total.uncounted += tally.uncounted
        total.read += tally.read
        total.written += tally.written
        total.note_dtype(tally.dtype, tally.dtype_flops)


def _unused_modules(nodes: list[ModuleNode], records: list[ModuleRecord], counts: list[ParamCounts]) -> tuple[str, ...]:
    """Top-most modules that were not used: never called, none of their weights read by an
    operator, and the same for everything below them (a ModuleList whose items ran is used
    although a ModuleList is never called itself; so is a holder of packed weights)."""
    ran = [record.calls > 0 or count.used > 0 for record, count in zip(records, counts)]
    for node in reversed(nodes):  # children come after their parent in pre-order
        if ran[node.index] and node.parent is not None:
            ran[node.parent] = True
    return tuple(
        node.name
        for node in nodes
        if not ran[node.index] and node.parent is not None and ran[node.parent]
    )


def _memory(figures: RunMemory, base: tuple[int, int, int], activations: int, training: bool) -> Memory:
    """Absolute figures: the bytes that existed before the run (parameters, buffers, inputs)
    plus what the live set showed."""
    parameters, buffers, inputs = base
    before = parameters + buffers + inputs
    forward_peak = before + figures.forward_peak
    if not training or figures.backward_peak is None or figures.backward_end is None:
        return Memory(parameters, buffers, inputs, figures.outputs, activations, forward_peak, forward_peak, "forward",
                      measured_peak=figures.measured_peak, timeline=memory_timeline(figures, base, 0))
    state = figures.step.state_bytes if figures.step is not None else 0
    backward_peak = before + figures.backward_peak
    # A steady-state step: the optimizer state is alive during forward and backward; its
    # step runs with everything the backward left alive (gradients, outputs).
    candidates = [(forward_peak + state, "forward"), (backward_peak + state, "backward")]
    step_peak = None
    if figures.step is not None:
        step_peak = before + figures.backward_end + figures.step.step_peak
        candidates.append((step_peak, "optimizer step"))
    peak, phase = max(candidates, key=lambda candidate: candidate[0])
    return Memory(
        parameters, buffers, inputs, figures.outputs, activations, forward_peak, peak, phase,
        saved_for_backward=figures.forward_end - figures.outputs_alive,
        backward_peak=backward_peak,
        gradients=figures.gradients,
        optimizer_state=state if figures.step is not None else None,
        optimizer_step_peak=step_peak,
        measured_peak=figures.measured_peak,
        timeline=memory_timeline(figures, base, state),
    )


def _inclusive(nodes: list[ModuleNode], own: list[int]) -> list[int]:
    """Per row, the sum of ``own`` over its subtree."""
    total = list(own)
    for node in reversed(nodes):  # children come after their parent in pre-order
        if node.parent is not None:
            total[node.parent] += total[node.index]
    return total


def _inclusive_ops(nodes: list[ModuleNode], own: list[dict[str, OpTally]]) -> list[dict[str, OpTally]]:
    ops: list[dict[str, OpTally]] = [{} for _ in nodes]
    if not any(own):  # an inference run's backward operators
        return ops
    for node in reversed(nodes):
        _add_ops(ops[node.index], own[node.index])
        if node.parent is not None:
            _add_ops(ops[node.parent], ops[node.index])
    return ops


def _attribute(module: nn.Module, name: str) -> Any:
    """``getattr(module, name, None)``, without the cost of nn.Module.__getattr__ raising
    for the many modules that lack it (a plain module's __getattr__ only looks in its slots)."""
    found = module.__dict__.get(name, _MISSING)
    if found is not _MISSING:
        return found
    cls = type(module)
    if cls.__getattr__ is nn.Module.__getattr__ and not hasattr(cls, name):
        if name not in module._parameters and name not in module._buffers and name not in module._modules:
            return None
    return getattr(module, name, None)


def _kernel_size(module: nn.Module) -> tuple[int, ...] | None:
    """Convolutions' and pooling layers' ``kernel_size`` (an int means a square/cube kernel)."""
    size = _attribute(module, "kernel_size")
    if isinstance(size, int) and not isinstance(size, bool):
        name = type(module).__name__
        dims = 2 if name in ("Unfold", "Fold") else _SPATIAL_DIMS.get(name[-2:], 1)
        return (size,) * dims
    if isinstance(size, (tuple, list)) and all(isinstance(s, int) and not isinstance(s, bool) for s in size):
        return tuple(size)
    return None


def _groups(module: nn.Module) -> int | None:
    groups = _attribute(module, "groups")
    return groups if isinstance(groups, int) and not isinstance(groups, bool) else None


_OP_STATS = maker(OpStats)
_LAYER_REPORT = maker(LayerReport)


def _stats(ops: dict[str, OpTally]) -> dict[str, OpStats]:
    if not ops:
        return {}
    return {name: _OP_STATS(t.calls, t.macs, t.flops, t.uncounted, t.read, t.written, t.dtype) for name, t in ops.items()}


def build_report(
    model_type: str,
    nodes: list[ModuleNode],
    records: list[ModuleRecord],
    index: ParameterIndex,
    figures: RunMemory,
    *,
    routed: list[tuple[int, int]],
    execution: str,
    fallback_reason: str | None,
    mode: str,
    device: str,
    optimizer: str | None,
    parallel: ParallelLayout | None = None,
) -> ModelReport:
    counts = [index.counts(node.index) for node in nodes]
    macs = _inclusive(nodes, [record.macs for record in records])
    flops = _inclusive(nodes, [record.flops for record in records])
    backward_macs = _inclusive(nodes, [record.backward_macs for record in records])
    backward_flops = _inclusive(nodes, [record.backward_flops for record in records])
    subtree_params = _inclusive(nodes, [c.params for c in counts])
    ops = _inclusive_ops(nodes, [record.ops for record in records])
    backward_ops = _inclusive_ops(nodes, [record.backward_ops for record in records])
    memory_read = _inclusive(nodes, [record.memory_read for record in records])
    memory_write = _inclusive(nodes, [record.memory_write for record in records])
    communication = _inclusive(nodes, [record.communication_bytes for record in records])
    output_bytes = [sum(spec.nbytes for call in record.outputs for spec in call) for record in records]

    shared_ids: dict[int, int] = {}
    layers = []
    for node, record, count in zip(nodes, records, counts):
        held = index.held[node.index]
        for name, _owner in held.shared:
            param = node.module._parameters[name]
            if param is not None:
                shared_ids[id(param)] = param.numel()
        owners = dict.fromkeys(nodes[owner].name for _, owner in held.shared)  # "": the root
        layers.append(
            _LAYER_REPORT(
                name=node.name,
                type=original_class(node.module).__name__,
                depth=node.depth,
                parent=node.parent,
                children=tuple(node.children),
                calls=record.calls,
                inputs=tuple(record.inputs),
                outputs=tuple(record.outputs),
                params=count.params,
                trainable_params=count.trainable,
                used_params=count.used,
                param_bytes=count.param_bytes,
                subtree_params=subtree_params[node.index],
                shared_from=tuple(owners),
                buffers=count.buffers,
                buffer_bytes=count.buffer_bytes,
                macs=macs[node.index],
                flops=flops[node.index],
                self_macs=record.macs,
                self_flops=record.flops,
                operators=_stats(ops[node.index]),
                lazy=held.lazy,
                output_bytes=output_bytes[node.index],
                backward_macs=backward_macs[node.index],
                backward_flops=backward_flops[node.index],
                self_backward_macs=record.backward_macs,
                self_backward_flops=record.backward_flops,
                backward_operators=_stats(backward_ops[node.index]),
                memory_read=memory_read[node.index],
                memory_write=memory_write[node.index],
                self_memory_read=record.memory_read,
                self_memory_write=record.memory_write,
                communication_bytes=communication[node.index],
                self_communication_bytes=record.communication_bytes,
                kernel_size=_kernel_size(node.module),
                groups=_groups(node.module),
            )
        )
    training = figures.backward_peak is not None
    base = (sum(layer.param_bytes for layer in layers), sum(layer.buffer_bytes for layer in layers), figures.inputs)
    activations = sum(layer.output_bytes for layer in layers if not layer.children)
    step = figures.step
    return ModelReport(
        model_type=model_type,
        layers=tuple(layers),
        execution=execution,
        fallback_reason=fallback_reason,
        mode=mode,
        device=device,
        shared_params=sum(shared_ids.values()),
        unused_modules=_unused_modules(nodes, records, counts),
        memory=_memory(figures, base, activations, training),
        lazy_modules=tuple(layer.name for layer in layers if layer.lazy),
        training=training,
        optimizer=optimizer,
        routed_params=sum(numel for numel, _ in routed),
        active_params=(
            sum(layer.used_params for layer in layers) - sum(numel - share for numel, share in routed) if routed else None
        ),
        optimizer_macs=step.macs if step is not None else 0,
        optimizer_flops=step.flops if step is not None else 0,
        optimizer_uncounted=dict(step.uncounted) if step is not None else {},
        parallel=parallel,
    )


def with_timing(report: ModelReport, measured: Measured) -> ModelReport:
    """``report`` with the measured times on its layers (same module tree, same order). A
    layer's ``time`` is its ``self_time`` summed over its subtree, like ``macs``; modules the
    timed passes never called have no time."""
    nodes = [layer.parent for layer in report.layers]
    inclusive = list(measured.own)
    for index in range(len(nodes) - 1, -1, -1):  # children come after their parent
        parent = nodes[index]
        if parent is not None:
            inclusive[parent] += inclusive[index]
    layers = tuple(
        replace(layer, time=total, self_time=own) if called else layer
        for layer, total, own, called in zip(report.layers, inclusive, measured.own, measured.called, strict=True)
    )
    return replace(report, layers=layers, timing=measured.stats)
