"""One registry of per-operator cost formulas, and the rules for operators it does not list.

A formula is a pure function of the operator's arguments and result (it reads only shapes
and dtypes). It is called as ``formula(*args, **kwargs, out=result)`` with the arguments
the operator received, and returns a `Cost`, or ``None`` when it cannot count this call
(the call is then reported as uncounted, never as zero).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Union, cast

import torch
from torch._ops import OpOverload, OpOverloadPacket

from ..errors import InputError


@dataclass(frozen=True)
class Cost:
    """What one operator call costs: multiply-accumulates and floating-point operations."""

    macs: int = 0
    flops: int = 0

    def __post_init__(self) -> None:
        for name in ("macs", "flops"):
            value = getattr(self, name)
            try:
                whole = operator.index(value)  # ints, numpy ints; not floats
            except TypeError:
                raise InputError(f"Cost.{name} must be a whole number, got {value!r}") from None
            if whole < 0:
                raise InputError(f"Cost.{name} must not be negative, got {whole}")
            object.__setattr__(self, name, whole)


Formula = Callable[..., Union[Cost, None]]
OpLike = Union[OpOverload, OpOverloadPacket, str]
OpKey = Union[OpOverload, OpOverloadPacket]

ZERO = Cost()


def zero_cost(*args: Any, **kwargs: Any) -> Cost:
    """The formula of operators that only move, view or create data."""
    return ZERO


def resolve_op(op: OpLike) -> OpKey:
    """Turn ``torch.ops.ns.name[.overload]`` or the string ``"ns::name[.overload]"`` into a key."""
    if isinstance(op, (OpOverload, OpOverloadPacket)):
        return op
    if isinstance(op, str) and "::" in op:
        namespace, _, rest = op.partition("::")
        name, _, overload = rest.partition(".")
        try:
            packet: OpOverloadPacket = getattr(getattr(torch.ops, namespace), name)
            return cast(OpOverload, getattr(packet, overload)) if overload else packet
        except (AttributeError, RuntimeError) as exc:
            raise InputError(f"no operator named {op!r} is registered with torch") from exc
    raise InputError(
        f"an operator must be given as torch.ops.<ns>.<name>[.<overload>] or as a string "
        f"'ns::name[.overload]'; got {op!r}"
    )


class FormulaRegistry:
    """Formulas keyed by operator; an overload's own entry wins over its packet's."""

    def __init__(self) -> None:
        self._formulas: dict[OpKey, Formula] = {}
        self.version = 0  # changes with every (un)registration: what a cache of costs is valid for

    def register(self, op: OpLike, formula: Formula) -> None:
        self._formulas[resolve_op(op)] = formula
        self.version += 1

    def unregister(self, op: OpLike) -> None:
        self._formulas.pop(resolve_op(op), None)
        self.version += 1

    def lookup(self, func: OpOverload) -> Formula | None:
        found = self._formulas.get(func)
        if found is None:
            found = self._formulas.get(func.overloadpacket)
        return found

    def __contains__(self, op: object) -> bool:
        return op in self._formulas

    def __iter__(self) -> Iterator[OpKey]:
        return iter(self._formulas)


BUILTIN = FormulaRegistry()
USER = FormulaRegistry()


def formula(*ops: OpLike) -> Callable[[Formula], Formula]:
    """Decorator for the built-in table: register one function for several operators."""

    def register(fn: Formula) -> Formula:
        for op in ops:
            BUILTIN.register(op, fn)
        return fn

    return register


def aten_ops(*names: str) -> list[OpOverloadPacket]:
    """The aten packets of these names that exist in the installed torch (others are skipped)."""
    found = []
    for name in names:
        packet = getattr(torch.ops.aten, name, None)
        if packet is not None:
            found.append(packet)
    return found


def default_overloads(*names: str) -> list[OpOverload]:
    """The ``.default`` overloads of these aten operators, for formulas that bind arguments by
    position and must not apply to overloads with another signature (``.quantized``)."""
    found: list[OpOverload] = []
    for packet in aten_ops(*names):
        overload = getattr(packet, "default", None)
        if overload is not None:
            found.append(overload)
    return found


def register_formula(op: OpLike, fn: Formula | None = None) -> Any:
    """Register a cost formula for an operator (your own custom op, or to override ours).

    Use as ``register_formula("mylib::myop", fn)`` or as a decorator::

        @tt.register_formula(torch.ops.mylib.myop)
        def myop_cost(x, w, *, out):
            return tt.Cost(macs=x.shape[0] * w.numel(), flops=2 * x.shape[0] * w.numel())
    """
    if fn is None:

        def decorator(f: Formula) -> Formula:
            register_formula(op, f)
            return f

        return decorator
    if not callable(fn):
        raise InputError(f"the formula given for {op!r} is not callable: {fn!r}")
    USER.register(op, fn)
    return fn


def unregister_formula(op: OpLike) -> None:
    """Remove a formula registered with `register_formula`."""
    USER.unregister(op)


def per_call_registry(formulas: Mapping[OpLike, Formula] | None) -> FormulaRegistry | None:
    """The formulas given to one `analyze` call, checked and keyed like the global ones."""
    if not formulas:
        return None
    registry = FormulaRegistry()
    for op, fn in formulas.items():
        if not callable(fn):
            raise InputError(f"the formula given for {op!r} is not callable: {fn!r}")
        registry.register(op, fn)
    return registry


def tensor_args(values: Iterable[Any]) -> Iterator[torch.Tensor]:
    """The tensors among operator arguments, looking one level into lists (``Tensor[]``)."""
    for value in values:
        if isinstance(value, torch.Tensor):
            yield value
        elif isinstance(value, (list, tuple)):
            for item in value:
                if isinstance(item, torch.Tensor):
                    yield item


def first_tensor(value: Any) -> torch.Tensor | None:
    """The first tensor of an operator's result (results may be tuples)."""
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (list, tuple)):
        for item in value:
            if isinstance(item, torch.Tensor):
                return item
    return None
