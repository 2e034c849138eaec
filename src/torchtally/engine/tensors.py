"""Finding the tensors inside arbitrary inputs and outputs (tuples, dicts, dataclasses,
Hugging Face ModelOutput, None, ints...) and describing them without keeping them.

Every module call of a run describes its inputs and outputs, so this is on the hot path:
the walk is a plain recursive function filling a list (a generator nested in a closure made
a reference cycle per call, left for the cyclic collector) and specs are shared per
(shape, dtype)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any

import torch

from ..report.specs import TensorSpec

MAX_NESTING = 32
_SCALARS = (str, bytes, int, float, bool)
_SEQUENCES = (list, tuple, set, frozenset)


def _collect(item: Any, depth: int, seen: set[int], found: list[torch.Tensor]) -> None:
    """Append every tensor inside ``item`` to ``found``, depth first, in order; a container
    met twice is walked once."""
    if isinstance(item, torch.Tensor):
        found.append(item)
        return
    if depth > MAX_NESTING or item is None or isinstance(item, _SCALARS):
        return
    if id(item) in seen:
        return
    if isinstance(item, Mapping):
        seen.add(id(item))
        for child in item.values():
            _collect(child, depth + 1, seen, found)
    elif isinstance(item, _SEQUENCES):
        seen.add(id(item))
        for child in item:
            _collect(child, depth + 1, seen, found)
    elif dataclasses.is_dataclass(item) and not isinstance(item, type):
        seen.add(id(item))
        for field in dataclasses.fields(item):
            _collect(getattr(item, field.name, None), depth + 1, seen, found)


def iter_tensors(value: Any) -> Iterator[torch.Tensor]:
    """Every tensor inside ``value``, depth first, in order; other objects are skipped."""
    found: list[torch.Tensor] = []
    _collect(value, 0, set(), found)
    return iter(found)


# (shape, dtype) -> its spec, for plain (not nested) tensors; specs are immutable, so shared.
_SPECS: dict[tuple[torch.Size, torch.dtype], TensorSpec] = {}
_MAX_SPECS = 100_000


def _spec(tensor: torch.Tensor) -> TensorSpec:
    if tensor.is_nested:
        return TensorSpec.of(tensor)
    key = (tensor.shape, tensor.dtype)
    try:
        spec = _SPECS.get(key)
    except TypeError:  # symbolic sizes do not hash
        return TensorSpec.of(tensor)
    if spec is None:
        if len(_SPECS) > _MAX_SPECS:
            _SPECS.clear()
        spec = _SPECS[key] = TensorSpec.of(tensor)
    return spec


def tensor_specs(value: Any) -> tuple[TensorSpec, ...]:
    if isinstance(value, torch.Tensor):  # a module's usual output
        return (_spec(value),)
    found: list[torch.Tensor] = []
    _collect(value, 0, set(), found)
    return tuple(_spec(t) for t in found)


def call_specs(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[TensorSpec, ...]:
    """``tensor_specs((args, kwargs))``: a module call's inputs (mostly one tensor)."""
    if not kwargs and all(isinstance(arg, torch.Tensor) for arg in args):
        return tuple([_spec(arg) for arg in args])
    return tensor_specs((args, kwargs))


def describe_specs(specs: tuple[TensorSpec, ...]) -> list[str]:
    """Human-readable ``[1, 3, 224, 224] float32`` strings, for error messages."""
    return [f"[{', '.join(map(str, s.shape))}] {s.dtype}" for s in specs]
