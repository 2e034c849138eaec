"""One self-contained HTML page of a report (or of a comparison): the totals, the module tree
as an interactive table, and charts drawn by Apache ECharts (vendored in ``assets/``, see
docs/html-report.md). Every script, style and number is inline: the page fetches nothing
and works from ``file://`` offline.

The page's numbers come from `page_data`, a compact, columnar copy of the report's own
figures (no number is computed here that the report does not hold); the script in
``assets/page.js`` lays them out."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from functools import cache
from html import escape
from importlib import resources
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..report.model import LayerReport, ModelReport

ECHARTS_VERSION = "6.1.0"  # npm: echarts@6.1.0 (dist/echarts.min.js), Apache-2.0


@cache
def asset(name: str) -> str:
    """A file shipped in ``render/assets`` (package data)."""
    return (resources.files(__package__) / "assets" / name).read_text(encoding="utf-8")


def _shape(layer: LayerReport) -> str:
    """The first output's shape of the first call ("" when it returned no tensor)."""
    if not layer.outputs or not layer.outputs[0]:
        return ""
    spec = layer.outputs[0][0]
    more = " …" if len(layer.outputs[0]) > 1 else ""
    return "[" + ", ".join(str(size) for size in spec.shape) + "]" + more


def _unused_rows(report: ModelReport) -> list[int]:
    """Rows inside a top-most unused module (never called, weights never read)."""
    top = set(report.unused_modules)
    flags = [0] * len(report.layers)
    for index, layer in enumerate(report.layers):
        if layer.name in top or (layer.parent is not None and flags[layer.parent]):
            flags[index] = 1
    return flags


def page_data(report: ModelReport) -> dict[str, Any]:
    """What the page shows, as plain JSON-able data: the report's `to_dict` figures, with the
    layers columnar (one list per field) to keep the page small for large models."""
    full = report.to_dict()
    layers = report.layers
    layer_dicts = full["layers"]
    columns: dict[str, list[Any]] = {
        "name": [layer.name for layer in layers],
        "type": [layer.type for layer in layers],
        "parent": [-1 if layer.parent is None else layer.parent for layer in layers],
        "depth": [layer.depth for layer in layers],
        "calls": [layer.calls for layer in layers],
        "output": [_shape(layer) for layer in layers],
        "params": [layer.params for layer in layers],
        "subtree_params": [layer.subtree_params for layer in layers],
        "used_params": [layer.used_params for layer in layers],
        "shared_from": [list(layer.shared_from) for layer in layers],
        "macs": [layer.macs for layer in layers],
        "self_macs": [layer.self_macs for layer in layers],
        "flops": [layer.flops for layer in layers],
        "backward_flops": [layer.backward_flops for layer in layers],
        "output_bytes": [layer.output_bytes for layer in layers],
        "unused": _unused_rows(report),
    }
    if report.timing is not None:
        columns["time"] = [layer.time for layer in layers]
    # Figures other analyses add to the layers (hardware estimates): carried when present.
    for key in ("estimated_time", "bound", "memory_read", "memory_write", "communication_bytes"):
        if layer_dicts and key in layer_dicts[0]:
            values = [item.get(key) for item in layer_dicts]
            if any(values):  # absent, or all None or 0: not a column of this page
                columns[key] = values
    data: dict[str, Any] = {
        "model_type": report.model_type,
        "depth": report.view.depth,  # the tree opens showing rows this deep (fewer for large models)
        "run": {
            "execution": report.execution,
            "mode": report.mode,
            "device": report.device,
            "training": report.training,
            "optimizer": report.optimizer,
            "fallback_reason": report.fallback_reason,
            "inputs": [spec.to_dict() for spec in report.inputs],
        },
        "totals": full["totals"],
        "memory": {key: value for key, value in full["memory"].items() if key != "timeline"},
        "timeline": full["memory"].get("timeline"),
        "timing": full.get("timing"),
        "unused_modules": full["unused_modules"],
        "uncounted_ops": full["uncounted_ops"],
        "layers": columns,
        "by_operator": report.by_operator().to_dict()["rows"],
        "by_type": report.by_type().to_dict()["rows"],
    }
    for key in ("estimate", "parallel"):  # filled by analyses that may not have run
        if full.get(key) is not None:
            data[key] = full[key]
    data["exact"] = _exact(data)
    return data


MAX_SAFE_INTEGER = 2**53 - 1  # above it a JavaScript number (a double) loses low digits


def _big(value: Any) -> bool:
    return type(value) is int and abs(value) > MAX_SAFE_INTEGER


def _exact(data: dict[str, Any]) -> dict[str, Any]:
    """The integers the page shows exactly (totals, memory, table cells) that a JavaScript
    number cannot hold, as decimal strings: ``{"totals": {key: "…"}, "memory": {…},
    "layers": {column: {row: "…"}}}``, holding only such integers. The numbers stay in the
    data too (charts and sorting use them, approximately)."""
    exact: dict[str, Any] = {}
    for group in ("totals", "memory"):
        found = {key: str(value) for key, value in data[group].items() if _big(value)}
        if found:
            exact[group] = found
    columns: dict[str, dict[str, str]] = {}
    for key, values in data["layers"].items():
        found = {str(index): str(value) for index, value in enumerate(values) if _big(value)}
        if found:
            columns[key] = found
    if columns:
        exact["layers"] = columns
    return exact


def _finite(value: Any) -> Any:
    """``value`` with infinite and NaN floats as None (JSON has no such numbers)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        if value and all(type(item) is int for item in value[:50]) and all(type(item) is int for item in value):
            return value  # the long integer columns: nothing to change
        return [_finite(item) for item in value]
    return value


def _json_for_script(data: Any) -> str:
    """JSON safe inside a <script> element (no "</" or "<!--" can end or open anything)."""
    text = json.dumps(_finite(data), separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _page(title: str, kind: str, data: Any) -> str:
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        "<meta name=\"color-scheme\" content=\"light dark\">\n"
        f"<meta name=\"generator\" content=\"torchtally; Apache ECharts {ECHARTS_VERSION}\">\n"
        f"<title>{escape(title)}</title>\n<style>\n{asset('page.css')}\n</style>\n</head>\n"
        f"<body data-kind=\"{kind}\">\n<noscript>This page draws its tables and charts with JavaScript.</noscript>\n"
        "<main id=\"app\"></main>\n"
        f"<script type=\"application/json\" id=\"tt-data\">{_json_for_script(data)}</script>\n"
        "<script>\n/*! Apache ECharts " + ECHARTS_VERSION + " | Apache-2.0 | https://echarts.apache.org */\n"
        f"{asset('echarts.min.js')}\n</script>\n"
        f"<script>\n{asset('page.js')}\n</script>\n</body>\n</html>\n"
    )


def render_page(report: ModelReport, depth: int | None = None) -> str:
    """The whole page of one report; its tree opens at ``depth`` (default: the report's view)."""
    data = page_data(report)
    if depth is not None:
        data["depth"] = depth
    return _page(f"{report.model_type} — torchtally", "report", data)


def render_compare_page(reports: Sequence[tuple[str, ModelReport]]) -> str:
    """One page comparing several reports (each named), with each one's tree and charts."""
    data = {"models": [{"label": label, **page_data(report)} for label, report in reports]}
    title = " vs ".join(label for label, _ in reports) or "comparison"
    return _page(f"{title} — torchtally", "compare", data)
