"""The plain-text tree table (torchinfo style) with the totals footer.

A row whose children are shown holds the module's own values (parameters it holds,
operators it ran itself); a row folded by ``depth`` holds its whole subtree. Either way,
every column's rows add up to the footer's total."""

from __future__ import annotations

from ..report import LayerReport, ModelReport
from ..structures import TensorSpec
from .units import binary_bytes, decimal, shape_text, with_commas

HEADERS = ("Layer (type)", "Input Shape", "Output Shape", "Param #", "MACs", "FLOPs")
RIGHT_ALIGNED = {3, 4, 5}
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


def _subtree_totals(report: ModelReport) -> list[tuple[int, int, int]]:
    """(params, MACs, FLOPs) of each row's whole subtree."""
    totals = [(layer.params, layer.self_macs, layer.self_flops) for layer in report.layers]
    for index in range(len(report.layers) - 1, -1, -1):  # children come after their parent
        parent = report.layers[index].parent
        if parent is not None:
            totals[parent] = tuple(a + b for a, b in zip(totals[parent], totals[index]))  # type: ignore[assignment]
    return totals


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
        params, macs, flops = subtree[index] if folded else (layer.params, layer.self_macs, layer.self_flops)
        rows.append(
            (
                _label(report, index),
                _shapes(layer.inputs),
                _shapes(layer.outputs),
                _param_cell(layer, params),
                with_commas(macs) if macs else EMPTY,
                with_commas(flops) if flops else EMPTY,
            )
        )
    return rows


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
    if report.unused_modules:
        lines.append("Modules never called: " + ", ".join(report.unused_modules))
    if report.lazy_modules:
        lines.append("Lazy modules (materialised on a copy for the run): " + ", ".join(report.lazy_modules))
    if report.total_buffers:
        lines.append(f"Buffers: {with_commas(report.total_buffers)} ({binary_bytes(report.buffer_bytes)})")
    lines.append(f"Total MACs: {decimal(report.total_macs)} ({with_commas(report.total_macs)})")
    lines.append(f"Total FLOPs: {decimal(report.total_flops)} ({with_commas(report.total_flops)})")
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
    widths = [max(len(HEADERS[c]), *(len(row[c]) for row in rows)) for c in range(len(HEADERS))]

    def line(cells: tuple[str, ...]) -> str:
        parts = [cell.rjust(w) if c in RIGHT_ALIGNED else cell.ljust(w) for c, (cell, w) in enumerate(zip(cells, widths))]
        return "  ".join(parts).rstrip()

    width = sum(widths) + 2 * (len(widths) - 1)
    rule = "=" * width
    out = [rule, line(HEADERS), rule, *(line(row) for row in rows), rule, *_footer(report), rule]
    return "\n".join(out)
