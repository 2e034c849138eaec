"""The plain-text tree table (torchinfo style) with the totals footer.

A row whose children are shown holds the module's own values (parameters it holds,
operators it ran itself); a row folded by ``depth`` holds its whole subtree. Either way,
every column's rows add up to the footer's total."""

from __future__ import annotations

from ..report import LayerReport, ModelReport
from ..structures import TensorSpec
from .units import binary_bytes, decimal, shape_text, with_commas

HEADERS = ("Layer (type)", "Input Shape", "Output Shape", "Param #", "MACs", "FLOPs")
TRAINING_HEADERS = ("Bwd MACs", "Bwd FLOPs")  # added when the backward pass was analysed
EMPTY = "--"


def _tree_prefix(report: ModelReport, index: int) -> str:
    """``│ ├─`` drawing: one segment per ancestor level, then this row's own branch."""
    parts = []
    child, node = index, report.layers[index]
    while node.parent is not None:
        last = report.layers[node.parent].children[-1] == child
        if child == index:
            parts.append("└─" if last else "├─")
        else:
            parts.append("  " if last else "│ ")
        child, node = node.parent, report.layers[node.parent]
    return "".join(reversed(parts))


def _shapes(calls: tuple[tuple[TensorSpec, ...], ...]) -> str:
    if not calls or not calls[0]:
        return EMPTY
    first = ", ".join(shape_text(spec.shape) for spec in calls[0])
    differs = any(tuple(s.shape for s in call) != tuple(s.shape for s in calls[0]) for call in calls[1:])
    return first + (" ..." if differs else "")


def _label(report: ModelReport, index: int) -> str:
    layer = report.layers[index]
    if layer.parent is None:
        text = layer.type
    else:
        text = f"{layer.name.rsplit('.', 1)[-1]} ({layer.type})"
    if layer.calls > 1:
        text += f" x{layer.calls}"
    if layer.name in report.unused_modules:
        text += " (unused)"
    return _tree_prefix(report, index) + text


def _own_numbers(layer: LayerReport) -> tuple[int, ...]:
    """Params, MACs, FLOPs, backward MACs, backward FLOPs the row holds itself."""
    return (layer.params, layer.self_macs, layer.self_flops, layer.self_backward_macs, layer.self_backward_flops)


def _subtree_totals(report: ModelReport) -> list[tuple[int, ...]]:
    """`_own_numbers` summed over each row's whole subtree."""
    totals = [_own_numbers(layer) for layer in report.layers]
    for index in range(len(report.layers) - 1, -1, -1):  # children come after their parent
        parent = report.layers[index].parent
        if parent is not None:
            totals[parent] = tuple(a + b for a, b in zip(totals[parent], totals[index]))
    return totals


def _count(value: int) -> str:
    return with_commas(value) if value else EMPTY


def _param_cell(layer: LayerReport, params: int) -> str:
    text = with_commas(params) if params else ""
    if layer.shared_from:
        shared = "shared: " + ", ".join(layer.shared_from)
        text = f"{text} + {shared}" if text else shared
    return text or EMPTY


def _rows(report: ModelReport, depth: int) -> list[tuple[str, ...]]:
    subtree = _subtree_totals(report)
    rows: list[tuple[str, ...]] = []
    for index, layer in enumerate(report.layers):
        if layer.depth > depth:
            continue
        folded = layer.depth == depth and not layer.is_leaf
        params, macs, flops, backward_macs, backward_flops = subtree[index] if folded else _own_numbers(layer)
        row: tuple[str, ...] = (_label(report, index), _shapes(layer.inputs), _shapes(layer.outputs), _param_cell(layer, params), _count(macs), _count(flops))
        if report.training:
            row += (_count(backward_macs), _count(backward_flops))
        rows.append(row)
    return rows


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


def _footer(report: ModelReport) -> list[str]:
    lines = [
        f"Total params: {with_commas(report.total_params)} ({binary_bytes(report.param_bytes)})",
        f"Trainable params: {with_commas(report.trainable_params)}",
        f"Non-trainable params: {with_commas(report.non_trainable_params)}",
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
    if report.training:
        for label, value in (
            ("Forward MACs", report.forward_macs),
            ("Forward FLOPs", report.forward_flops),
            ("Backward MACs", report.backward_macs),
            ("Backward FLOPs", report.backward_flops),
        ):
            lines.append(f"{label}: {decimal(value)} ({with_commas(value)})")
        if report.optimizer is not None:
            lines.append(f"Optimizer step FLOPs ({report.optimizer}): {decimal(report.optimizer_flops)} ({with_commas(report.optimizer_flops)})")
    else:
        lines.append(f"Total MACs: {decimal(report.total_macs)} ({with_commas(report.total_macs)})")
        lines.append(f"Total FLOPs: {decimal(report.total_flops)} ({with_commas(report.total_flops)})")
    lines.extend(_memory_lines(report))
    uncounted = report.uncounted_ops
    if uncounted:
        listed = ", ".join(f"{name} x{calls}" for name, calls in sorted(uncounted.items()))
        lines.append(f"Uncounted operators (totals are a lower bound): {listed}")
    inputs = ", ".join(f"{shape_text(spec.shape)} {spec.dtype}" for spec in report.inputs) or "no tensors"
    how = "fake tensors (no real compute)" if report.execution == "fake" else "real tensors"
    where = "meta (kernels chosen as on cpu)" if report.device == "meta" else report.device
    lines.append(f"Run: {how}, {report.mode} mode, on {where}; input {inputs}")
    if report.fallback_reason:
        lines.append(f"Note: ran for real because {report.fallback_reason}")
    return lines


def render_tree(report: ModelReport, depth: int = 3) -> str:
    rows = _rows(report, depth)
    headers = HEADERS + (TRAINING_HEADERS if report.training else ())
    widths = [max(len(headers[c]), *(len(row[c]) for row in rows)) for c in range(len(headers))]

    def line(cells: tuple[str, ...]) -> str:
        # Text columns (name, shapes) align left, numbers right.
        parts = [cell.rjust(w) if c >= 3 else cell.ljust(w) for c, (cell, w) in enumerate(zip(cells, widths))]
        return "  ".join(parts).rstrip()

    width = sum(widths) + 2 * (len(widths) - 1)
    rule = "=" * width
    out = [rule, line(headers), rule, *(line(row) for row in rows), rule, *_footer(report), rule]
    return "\n".join(out)
