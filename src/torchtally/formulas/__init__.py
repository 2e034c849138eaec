"""Per-operator cost formulas. Importing this package fills the built-in registry."""

from . import attention, backward, collectives, conv, data_movement, linalg, loss, matmul, norm, pointwise, pool, quantized, reduction, rnn  # noqa: F401
from .registry import BUILTIN, USER, Cost, Formula, register_formula, unregister_formula

__all__ = ["BUILTIN", "USER", "Cost", "Formula", "register_formula", "unregister_formula"]
