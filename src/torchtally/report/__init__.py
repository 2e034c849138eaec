"""The data a run produces, and nothing else: frozen dataclasses of plain values
(`ModelReport`, `LayerReport`, `Memory`, `OpStats`, `TensorSpec`, `TimingStats`), tables
(`DataTable`), the view settings enums and the JSON Schemas of the exports.

Nothing here imports `torchtally.engine`: a report can be built, loaded and viewed without
running anything. The convenience methods that draw a report call `torchtally.render` lazily."""

from .model import SCHEMA, LayerReport, Memory, ModelReport, OpStats
from .schema import report_schema, table_schema
from .settings import Column, RowSetting, Style, ViewOptions
from .specs import TensorSpec
from .tables import TABLE_SCHEMA, DataTable
from .timing import TimingStats

__all__ = [
    "SCHEMA",
    "TABLE_SCHEMA",
    "Column",
    "DataTable",
    "LayerReport",
    "Memory",
    "ModelReport",
    "OpStats",
    "RowSetting",
    "Style",
    "TensorSpec",
    "TimingStats",
    "ViewOptions",
    "report_schema",
    "table_schema",
]
