"""Turn what a run recorded (per-module calls and own costs, parameter reads) into a
`ModelReport`: sum costs up the module tree, count parameters by identity, name the
modules that were never called."""

from __future__ import annotations

from .params import ParameterIndex, ParamCounts
from .report import LayerReport, ModelReport, OpStats
from .tracking import ModuleRecord, OpTally
from .tree import ModuleNode


def _add_ops(into: dict[str, OpTally], ops: dict[str, OpTally]) -> None:
    for name, tally in ops.items():
        total = into.get(name)
        if total is None:
            total = into[name] = OpTally()
        total.calls += tally.calls
        total.macs += tally.macs
        total.flops += tally.flops
        total.uncounted += tally.uncounted


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


def build_report(
    model_type: str,
    nodes: list[ModuleNode],
    records: list[ModuleRecord],
    index: ParameterIndex,
    *,
    execution: str,
    fallback_reason: str | None,
    mode: str,
    device: str,
) -> ModelReport:
    counts = [index.counts(node.index) for node in nodes]
    macs = [record.macs for record in records]
    flops = [record.flops for record in records]
    subtree_params = [c.params for c in counts]
    ops: list[dict[str, OpTally]] = [{} for _ in nodes]
    for node in reversed(nodes):
        _add_ops(ops[node.index], records[node.index].ops)
        if node.parent is not None:
            macs[node.parent] += macs[node.index]
            flops[node.parent] += flops[node.index]
            subtree_params[node.parent] += subtree_params[node.index]
            _add_ops(ops[node.parent], ops[node.index])

    shared_ids: dict[int, int] = {}
    layers = []
    for node, record, count in zip(nodes, records, counts):
        held = index.held[node.index]
        for name, _owner in held.shared:
            param = node.module._parameters[name]
            if param is not None:
                shared_ids[id(param)] = param.numel()
        owners = dict.fromkeys(nodes[owner].name or model_type for _, owner in held.shared)
        layers.append(
            LayerReport(
                name=node.name,
                type=type(node.module).__name__,
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
                operators={
                    name: OpStats(t.calls, t.macs, t.flops, t.uncounted) for name, t in ops[node.index].items()
                },
                lazy=held.lazy,
            )
        )
    return ModelReport(
        model_type=model_type,
        layers=tuple(layers),
        execution=execution,
        fallback_reason=fallback_reason,
        mode=mode,
        device=device,
        shared_params=sum(shared_ids.values()),
        unused_modules=_unused_modules(nodes, records, counts),
        lazy_modules=tuple(layer.name for layer in layers if layer.lazy),
    )
