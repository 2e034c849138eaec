"""Flat exports of a report: one record per layer (CSV, DataFrame), and aggregate tables
by operator and by module type. Every number comes straight from the report's fields, so
these views hold exactly what ``to_dict()`` holds."""

from __future__ import annotations

import json
from typing import Any

from ..report.model import LayerReport, ModelReport
from ..report.tables import DataTable, table_from_mapping

# Columns of the per-layer export, as in `LayerReport.to_dict()` (``parent`` is the parent's
# row index). Lists are JSON text: shapes (per call, the shape of each tensor), shared_from,
# kernel_size.
LAYER_COLUMNS = (
    "name", "type", "depth", "parent", "calls", "input_shapes", "output_shapes", "params", "trainable_params",
    "used_params", "param_bytes", "subtree_params", "shared_from", "buffers", "buffer_bytes", "macs", "flops",
    "self_macs", "self_flops", "backward_macs", "backward_flops", "self_backward_macs", "self_backward_flops",
    "output_bytes", "memory_read", "memory_write", "self_memory_read", "self_memory_write", "kernel_size",
    "groups", "time", "self_time", "arithmetic_intensity", "estimated_time", "self_estimated_time", "bound",
    "self_bound", "communication_bytes", "self_communication_bytes", "lazy", "unused",
)


def _shapes(calls: tuple[tuple[tuple[int, ...], ...], ...]) -> str:
    return json.dumps([[list(shape) for shape in call] for call in calls])


def _record(layer: LayerReport, unused: bool) -> dict[str, Any]:
    record: dict[str, Any] = {name: getattr(layer, name) for name in LAYER_COLUMNS if name != "unused"}
    record["input_shapes"] = _shapes(layer.input_shapes)
    record["output_shapes"] = _shapes(layer.output_shapes)
    record["shared_from"] = json.dumps(list(layer.shared_from))  # "" (the root) is a name too
    record["kernel_size"] = None if layer.kernel_size is None else json.dumps(list(layer.kernel_size))
    record["unused"] = unused
    return record


def layer_records(report: ModelReport) -> list[dict[str, Any]]:
    """One flat record per layer, in the report's order (every module of the model)."""
    # Unused: a module listed as never called, or anything below one (parents come first).
    tops = set(report.unused_modules)
    unused: list[bool] = []
    for layer in report.layers:
        unused.append(layer.name in tops or (layer.parent is not None and unused[layer.parent]))
    return [_record(layer, flag) for layer, flag in zip(report.layers, unused)]


def by_operator(report: ModelReport) -> DataTable:
    """Calls, MACs and FLOPs per aten operator, forward and backward pass apart, costliest first."""
    rows = []
    for phase, operators in (("forward", report.operators), ("backward", report.backward_operators)):
        for name, stats in operators.items():
            rows.append((name, phase, stats.calls, stats.macs, stats.flops, stats.uncounted))
    rows.sort(key=lambda row: (row[1] != "forward", -row[4], row[0]))
    columns = {"operator": "text", "pass": "text", "calls": "count", "macs": "ops", "flops": "ops", "uncounted_calls": "count"}
    return table_from_mapping("operators", columns, rows)


def by_type(report: ModelReport) -> DataTable:
    """Per module class: how many modules, their calls, and the parameters they hold and the
    operators they ran themselves (so each column adds up to the report's total). Backward
    columns only for a training report."""
    totals: dict[str, list[int]] = {}
    for layer in report.layers:
        row = totals.setdefault(layer.type, [0] * 7)
        for position, value in enumerate((
            1, layer.calls, layer.params, layer.self_macs, layer.self_flops,
            layer.self_backward_macs, layer.self_backward_flops,
        )):
            row[position] += value
    ranked = sorted(totals.items(), key=lambda item: (-item[1][4], item[0]))  # most FLOPs first
    kept = 7 if report.training else 5
    rows = [(name, *values[:kept]) for name, values in ranked]
    columns = {
        "type": "text", "modules": "count", "calls": "count", "params": "count", "macs": "ops", "flops": "ops",
        "backward_macs": "ops", "backward_flops": "ops",
    }
    return table_from_mapping("module types", dict(list(columns.items())[: kept + 1]), rows)
