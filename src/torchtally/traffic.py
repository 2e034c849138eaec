"""Memory traffic: the bytes each operator reads (its tensor arguments: inputs, weights) and
writes (its results), as torchstat's MemRead/MemWrite count them per layer.

Views move nothing. A broadcast (expanded) tensor is read once: a tensor counts at most the
bytes of its storage. Operators that only overwrite their first argument (``copy_``,
``fill_``, the random fills) do not read it."""

from __future__ import annotations

from typing import Any

import torch
from torch._ops import OpOverload

from .formulas.registry import tensor_args
from .memory import tensor_bytes

_UNDECLARED_VIEWS = frozenset({"_unsafe_view", "_reshape_alias"})
_OVERWRITE_FIRST = frozenset({
    "copy_", "fill_", "zero_", "uniform_", "normal_", "bernoulli_", "random_", "exponential_",
    "geometric_", "cauchy_", "log_normal_",
})


def _is_view(func: OpOverload) -> bool:
    if func.overloadpacket.__name__ in _UNDECLARED_VIEWS:
        return True
    returns = func._schema.returns
    return bool(returns) and all(r.alias_info is not None and not r.alias_info.is_write for r in returns)


def moved_bytes(tensor: torch.Tensor) -> int:
    """Bytes an operator moves to read or write ``tensor``: its elements, at most its storage."""
    if tensor.layout != torch.strided:
        return tensor_bytes(tensor)
    elements = tensor.numel() * tensor.element_size()
    try:
        return min(elements, int(tensor.untyped_storage().nbytes()))
    except (RuntimeError, NotImplementedError):  # nested tensors and other storage-less kinds
        return elements


class Traffic:
    """Reads and writes of operators, with each operator's kind looked up once."""

    def __init__(self) -> None:
        self._kinds: dict[OpOverload, tuple[bool, bool]] = {}  # func -> (is a view, overwrites its first argument)

    def of(self, func: OpOverload, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> tuple[int, int]:
        kind = self._kinds.get(func)
        if kind is None:
            kind = self._kinds[func] = (_is_view(func), func.overloadpacket.__name__ in _OVERWRITE_FIRST)
        view, overwrite_first = kind
        if view:
            return 0, 0
        read_args = args[1:] if overwrite_first else args
        read = sum(moved_bytes(t) for t in tensor_args(read_args))
        if kwargs:
            read += sum(moved_bytes(t) for t in tensor_args(kwargs.values()))
        written = sum(moved_bytes(t) for t in tensor_args(out if isinstance(out, (list, tuple)) else (out,)))
        return read, written
