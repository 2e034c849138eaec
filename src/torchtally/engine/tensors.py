"""Finding the tensors inside arbitrary inputs and outputs (tuples, dicts, dataclasses,
Hugging Face ModelOutput, None, ints...) and describing them without keeping them."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any

import torch

from ..report.specs import TensorSpec

MAX_NESTING = 32


def iter_tensors(value: Any) -> Iterator[torch.Tensor]:
    """Every tensor inside ``value``, depth first, in order; other objects are skipped."""
    seen: set[int] = set()

    def walk(item: Any, depth: int) -> Iterator[torch.Tensor]:
        if isinstance(item, torch.Tensor):
            yield item
            return
        if depth > MAX_NESTING or item is None or isinstance(item, (str, bytes, int, float, bool)):
            return
        if id(item) in seen:
            return
        if isinstance(item, Mapping):
            seen.add(id(item))
            for child in item.values():
                yield from walk(child, depth + 1)
        elif isinstance(item, (list, tuple, set, frozenset)):
            seen.add(id(item))
            for child in item:
                yield from walk(child, depth + 1)
        elif dataclasses.is_dataclass(item) and not isinstance(item, type):
            seen.add(id(item))
            for field in dataclasses.fields(item):
                yield from walk(getattr(item, field.name, None), depth + 1)

    return walk(value, 0)


def tensor_specs(value: Any) -> tuple[TensorSpec, ...]:
    return tuple(TensorSpec.of(t) for t in iter_tensors(value))


def describe_specs(specs: tuple[TensorSpec, ...]) -> list[str]:
    """Human-readable ``[1, 3, 224, 224] float32`` strings, for error messages."""
    return [f"[{', '.join(map(str, s.shape))}] {s.dtype}" for s in specs]
