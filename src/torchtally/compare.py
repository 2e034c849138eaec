"""``compare()``: several models side by side (total parameters, MACs, FLOPs, parameter
bytes and peak memory), as a `DataTable` with every export."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .errors import InputError
from .report.model import ModelReport
from .report.tables import DataTable, table_from_mapping

COLUMNS = {
    "model": "text", "input": "text", "params": "count", "macs": "ops", "flops": "ops",
    "param_bytes": "bytes", "peak_memory": "bytes",
}


def _input_text(report: ModelReport) -> str:
    return ", ".join("x".join(str(d) for d in spec.shape) + f" {spec.dtype}" for spec in report.inputs)


def compare(reports: Mapping[str, ModelReport] | Iterable[ModelReport]) -> DataTable:
    """One row per report: ``{name: report}`` (or reports, named by their model class)."""
    named = list(reports.items()) if isinstance(reports, Mapping) else [(None, r) for r in reports]
    for position, (name, report) in enumerate(named):
        if not isinstance(report, ModelReport):
            which = repr(name) if name is not None else f"item {position}"
            raise InputError(f"compare() takes ModelReports (from tt.analyze); {which} is a {type(report).__name__}")
    named = [(report.model_type if name is None else str(name), report) for name, report in named]
    rows = [
        (name, _input_text(r), r.total_params, r.total_macs, r.total_flops, r.param_bytes, r.memory.peak)
        for name, r in named
    ]
    return table_from_mapping("model comparison", COLUMNS, rows)
