"""Which formula costs an operator: per-call formulas, then the user's, then the built-in
table, then the generic rules (a ``_foreach_`` operator costs its single-tensor form on each
tensor; views and collectives are free of FLOPs, PyTorch-tagged pointwise operators cost 1
FLOP per element). An operator no rule covers is uncounted."""

from __future__ import annotations

from typing import Any

from torch._ops import OpOverload

from ..errors import FormulaError
from .collectives import is_communication
from .data_movement import is_data_movement
from .foreach import foreach_formula, single_tensor_operator
from .pointwise import is_pointwise, one_per_element
from .registry import BUILTIN, USER, Cost, Formula, FormulaRegistry, zero_cost


def _output_argument_names(func: OpOverload) -> frozenset[str]:
    """Keyword-only arguments an ``.out`` overload writes its results into."""
    return frozenset(
        arg.name
        for arg in func._schema.arguments
        if arg.kwarg_only and arg.alias_info is not None and arg.alias_info.is_write
    )


class CostModel:
    """Costs operator calls; decides how to cost each operator once and remembers it."""

    def __init__(self, per_call: FormulaRegistry | None = None):
        self._registries = [r for r in (per_call, USER, BUILTIN) if r is not None]
        self._decided: dict[OpOverload, tuple[Formula | None, frozenset[str]]] = {}

    def _decide(self, func: OpOverload) -> tuple[Formula | None, frozenset[str]]:
        chosen: Formula | None = None
        for registry in self._registries:
            chosen = registry.lookup(func)
            if chosen is not None:
                break
        if chosen is None:
            single = single_tensor_operator(func)
            if single is not None and self._decide_cached(single)[0] is not None:
                chosen = foreach_formula(single, self.cost)
            elif is_data_movement(func) or is_communication(func):
                chosen = zero_cost
            elif is_pointwise(func):
                chosen = one_per_element
        decision = (chosen, _output_argument_names(func))
        self._decided[func] = decision
        return decision

    def _decide_cached(self, func: OpOverload) -> tuple[Formula | None, frozenset[str]]:
        decision = self._decided.get(func)
        return decision if decision is not None else self._decide(func)

    def cost(self, func: OpOverload, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> Cost | None:
        """The cost of one call, or None when no formula covers it."""
        chosen, output_names = self._decide_cached(func)
        if chosen is None:
            return None
        if chosen is zero_cost:
            return Cost()
        if output_names:
            kwargs = {k: v for k, v in kwargs.items() if k not in output_names}
        name = getattr(chosen, "__qualname__", repr(chosen))
        try:
            cost = chosen(*args, **kwargs, out=out)
        except Exception as exc:
            raise FormulaError(f"the cost formula {name} for {func} raised {type(exc).__name__}: {exc}") from exc
        if cost is not None and not isinstance(cost, Cost):
            raise FormulaError(f"the cost formula {name} for {func} returned {cost!r}; it must return a Cost or None")
        return cost
