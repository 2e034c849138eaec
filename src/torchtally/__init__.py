"""torchtally: what a PyTorch model is made of — per-layer shapes, parameters, MACs and
FLOPs, counted at the operator level and counted right."""

from ._version import __version__
from .errors import FormulaError, ForwardError, InputError, TorchtallyError
from .formulas import Cost, register_formula, unregister_formula
from .report import LayerReport, ModelReport, OpStats
from .run import analyze
from .structures import TensorSpec
from .summary import summary

__all__ = [
    "Cost",
    "FormulaError",
    "ForwardError",
    "InputError",
    "LayerReport",
    "ModelReport",
    "OpStats",
    "TensorSpec",
    "TorchtallyError",
    "__version__",
    "analyze",
    "register_formula",
    "summary",
    "unregister_formula",
]
