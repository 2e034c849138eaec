"""torchtally: what a PyTorch model is made of — per-layer shapes, parameters, MACs and
FLOPs, counted at the operator level and counted right."""

from ._version import __version__
from .compare import compare
from .errors import FormulaError, ForwardError, InputError, TorchtallyError
from .formulas import Cost, register_formula, unregister_formula
from .report import LayerReport, Memory, ModelReport, OpStats
from .run import analyze
from .schema import report_schema, table_schema
from .settings import Column, RowSetting, Style
from .structures import TensorSpec
from .summary import summary
from .tables import DataTable
from .timing import TimingOptions, TimingStats

__all__ = [
    "Column",
    "Cost",
    "DataTable",
    "FormulaError",
    "ForwardError",
    "InputError",
    "LayerReport",
    "Memory",
    "ModelReport",
    "OpStats",
    "RowSetting",
    "Style",
    "TensorSpec",
    "TimingOptions",
    "TimingStats",
    "TorchtallyError",
    "__version__",
    "analyze",
    "compare",
    "register_formula",
    "report_schema",
    "summary",
    "table_schema",
    "unregister_formula",
]
