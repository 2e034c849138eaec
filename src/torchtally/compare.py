"""``compare()``: several models side by side (total parameters, MACs, FLOPs, parameter
bytes and peak memory; with estimates, the chip, estimated latency, throughput and what
limits it), as a `DataTable` with every export."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .errors import InputError
from .report.model import ModelReport
from .report.tables import DataTable, table_from_mapping

COLUMNS = {
    "model": "text", "input": "text", "params": "count", "macs": "ops", "flops": "ops",
    "param_bytes": "bytes", "peak_memory": "bytes",
}
ESTIMATE_COLUMNS = {"hardware": "text", "est_latency": "seconds", "est_throughput": "ops", "bound": "text"}


def _input_text(report: ModelReport) -> str:
    return ", ".join("x".join(str(d) for d in spec.shape) + f" {spec.dtype}" for spec in report.inputs)


def _named(item: object) -> tuple[str | None, object]:
    if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
        return item[0], item[1]
    return None, item


def _estimate_cells(report: ModelReport) -> tuple[object, ...]:
    found = report.estimate
    if found is None:
        return (None, None, None, None)
    return (found.hardware["name"], found.latency, found.throughput, report.layers[0].bound if report.layers else None)


def compare(reports: Mapping[str, ModelReport] | Iterable[ModelReport | tuple[str, ModelReport]]) -> DataTable:
    """One row per report: ``{name: report}``, reports (named by their model class) or
    ``(name, report)`` pairs (one model on several chips). Reports with an estimate
    (``analyze(..., hardware=...)``, `estimate_time`) add the chip, the estimated forward
    latency and throughput, and what limits it."""
    named = list(reports.items()) if isinstance(reports, Mapping) else [_named(r) for r in reports]
    for position, (name, report) in enumerate(named):
        if not isinstance(report, ModelReport):
            which = repr(name) if name is not None else f"item {position}"
            raise InputError(f"compare() takes ModelReports (from tt.analyze); {which} is a {type(report).__name__}")
    checked: list[tuple[str, ModelReport]] = []
    for name, report in named:
        assert isinstance(report, ModelReport)
        checked.append((report.model_type if name is None else str(name), report))
    estimated = any(report.estimate is not None for _, report in checked)
    rows = [
        (name, _input_text(r), r.total_params, r.total_macs, r.total_flops, r.param_bytes, r.memory.peak)
        + (_estimate_cells(r) if estimated else ())
        for name, r in checked
    ]
    return table_from_mapping("model comparison", {**COLUMNS, **(ESTIMATE_COLUMNS if estimated else {})}, rows)
