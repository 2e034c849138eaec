"""torchtally: what a PyTorch model is made of — per-layer shapes, parameters, MACs and
FLOPs, counted at the operator level and counted right."""

from ._version import __version__
from .compare import compare
from .errors import FormulaError, ForwardError, InputError, NeedsRealValues, TorchtallyError
from .formulas import Cost, register_formula, unregister_formula
from .report.model import LayerReport, Memory, MemoryTimeline, ModelReport, OpStats
from .analysis import analyze
from .report.schema import report_schema, table_schema
from .report.settings import Column, RowSetting, Style
from .report.specs import TensorSpec
from .summary import summary
from .report.tables import DataTable
from .engine.timing import TimingOptions
from .report.timing import TimingStats
from .report.estimate import EstimateStats
from .estimate import Hardware, calibrate, estimate_time, hardware, hardware_names
from .engine.parallel import Cluster, Parallel, simulated_cluster
from .report.parallel import CollectiveStats, ParallelLayout
from .generation import analyze_generation
from .report.generation import DecodeStep, GenerationReport
from .report.schema import generation_schema

__all__ = [
    "Cluster",
    "CollectiveStats",
    "Column",
    "Cost",
    "DataTable",
    "DecodeStep",
    "EstimateStats",
    "FormulaError",
    "GenerationReport",
    "ForwardError",
    "Hardware",
    "InputError",
    "LayerReport",
    "Memory",
    "MemoryTimeline",
    "ModelReport",
    "NeedsRealValues",
    "OpStats",
    "Parallel",
    "ParallelLayout",
    "RowSetting",
    "Style",
    "TensorSpec",
    "TimingOptions",
    "TimingStats",
    "TorchtallyError",
    "__version__",
    "analyze",
    "analyze_generation",
    "calibrate",
    "compare",
    "estimate_time",
    "generation_schema",
    "hardware",
    "hardware_names",
    "register_formula",
    "report_schema",
    "simulated_cluster",
    "summary",
    "table_schema",
    "unregister_formula",
]
