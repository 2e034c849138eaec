"""Memory traffic: the bytes each operator reads (its tensor arguments: inputs, weights) and
writes (its results), as torchstat's MemRead/MemWrite count them per layer.

- Views and metadata operators move nothing (``view``, ``t``, in-place ``unsqueeze_``,
  ``resize_``, the ``prim`` queries).
- A broadcast (expanded) tensor is read once: a tensor counts at most its storage's bytes.
- ``out=`` arguments are written, not read. Operators that only overwrite their first
  argument (``copy_``, ``fill_``, the random fills) do not read it.
- Factories read nothing (``zeros_like`` only looks at its argument's shape); ``empty*``
  write nothing either.
- Gathers (``embedding``, ``index_select``, ``gather``, ``index``, ``take``) read the rows
  they return, not their whole source: a token's embedding row, not the vocabulary.
- In-place operators returning nothing (``_foreach_add_``) write their first argument."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch._ops import OpOverload

from ..formulas.registry import tensor_args
from .memory import tensor_bytes
from ..report.specs import dtype_name

_METADATA_ONLY = frozenset({
    "_unsafe_view", "_reshape_alias", "unsqueeze_", "squeeze_", "transpose_", "t_", "as_strided_", "resize_",
    "resize_as_", "set_", "detach_", "swapdims_", "swapaxes_", "_resize_output_",
})
_OVERWRITE_FIRST = frozenset({
    "copy_", "fill_", "zero_", "uniform_", "normal_", "bernoulli_", "random_", "exponential_",
    "geometric_", "cauchy_", "log_normal_",
})
_FACTORIES = frozenset({
    "empty_like", "zeros_like", "ones_like", "full_like", "rand_like", "randn_like", "randint_like",
    "new_empty", "new_empty_strided", "new_zeros", "new_ones", "new_full",
})
_UNWRITTEN = frozenset({"empty", "empty_like", "empty_strided", "new_empty", "new_empty_strided", "empty_permuted"})
_GATHERS = frozenset({"embedding", "index_select", "gather", "index", "take", "embedding_bag", "_embedding_bag"})


@dataclass(frozen=True)
class _Kind:
    moves_nothing: bool
    reads_nothing: bool
    writes_nothing: bool
    skip_first_read: bool  # overwritten, not read
    gather: bool  # the first argument is read only as much as the result
    mutates: bool  # writes some argument in place
    out_positions: tuple[int, ...]  # schema positions of ``out=`` arguments
    out_names: frozenset[str]


def _kind(func: OpOverload) -> _Kind:
    name = func.overloadpacket.__name__
    schema = func._schema
    returns = schema.returns
    view = bool(returns) and all(r.alias_info is not None and not r.alias_info.is_write for r in returns)
    outs = [(position, arg.name) for position, arg in enumerate(schema.arguments) if arg.is_out]
    return _Kind(
        moves_nothing=view or name in _METADATA_ONLY or func.namespace == "prim",
        reads_nothing=name in _FACTORIES,
        writes_nothing=name in _UNWRITTEN,
        skip_first_read=name in _OVERWRITE_FIRST,
        gather=name in _GATHERS,
        mutates=schema.is_mutable,
        out_positions=tuple(position for position, _ in outs),
        out_names=frozenset(name for _, name in outs),
    )


def moved_bytes(tensor: torch.Tensor) -> int:
    """Bytes an operator moves to read or write ``tensor``: its elements, at most its storage."""
    if tensor.layout != torch.strided:
        return tensor_bytes(tensor)
    elements = tensor.numel() * tensor.element_size()
    try:
        return min(elements, int(tensor.untyped_storage().nbytes()))
    except (RuntimeError, NotImplementedError):  # nested tensors and other storage-less kinds
        return elements


def compute_dtype(args: tuple[Any, ...], out: Any) -> str | None:
    """The dtype an operator computes in, for a peak-FLOP/s lookup: its first tensor
    argument's (an int8 matmul yields int32, but runs at the int8 rate), else its result's."""
    for tensor in tensor_args(args):
        return dtype_name(tensor.dtype)
    for tensor in tensor_args(out if isinstance(out, (list, tuple)) else (out,)):
        return dtype_name(tensor.dtype)
    return None


def _total(values: Any) -> int:
    return sum(moved_bytes(t) for t in tensor_args(values))


class Traffic:
    """Reads and writes of operators, with each operator's kind looked up once."""

    def __init__(self) -> None:
        self._kinds: dict[OpOverload, _Kind] = {}

    def of(self, func: OpOverload, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> tuple[int, int]:
        kind = self._kinds.get(func)
        if kind is None:
            kind = self._kinds[func] = _kind(func)
        if kind.moves_nothing:
            return 0, 0
        results = out if isinstance(out, (list, tuple)) else (out,)
        written = 0 if kind.writes_nothing else _total(results)
        if out is None and kind.mutates and args:  # in place with no result (`_foreach_add_`): the first argument
            written = _total(args[:1])
        if kind.reads_nothing:
            return 0, written
        inputs = [a for position, a in enumerate(args) if position not in kind.out_positions]
        if kind.skip_first_read:
            inputs = inputs[1:]
        read = 0
        if kind.gather and inputs:
            source, inputs = inputs[0], inputs[1:]
            read = min(_total((source,)), _total(results[:1]))
        read += _total(inputs)
        if kwargs:
            read += _total(value for key, value in kwargs.items() if key not in kind.out_names)
        return read, written
