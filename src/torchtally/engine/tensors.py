"""Finding the tensors inside arbitrary inputs and outputs (tuples, dicts, dataclasses,
Hugging Face ModelOutput, None, ints...) and describing them without keeping them."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch.utils._mode_utils import no_dispatch

MAX_NESTING = 32


@dataclasses.dataclass(frozen=True)
class TensorSpec:
    """Shape and dtype of one tensor seen during the run."""

    shape: tuple[int, ...]
    dtype: str
    nbytes: int

    @classmethod
    def of(cls, tensor: torch.Tensor) -> TensorSpec:
        if tensor.is_nested:  # sequences of different lengths: ragged dimensions are shown as -1
            shape = (tensor.size(0), *(-1,) * (tensor.dim() - 1))
            if tensor.layout == torch.jagged:  # one packed values tensor (its size query would crash)
                shape = tuple(size if isinstance(size, int) else -1 for size in tensor.shape)
                return cls(shape, dtype_name(tensor.dtype), tensor.values().numel() * tensor.element_size())
            try:
                with no_dispatch():  # our own look at the sizes is not the model's work
                    elements = int(tensor._nested_tensor_size().prod(-1).sum())
            except (RuntimeError, NotImplementedError):
                elements = 0
            return cls(shape, dtype_name(tensor.dtype), elements * tensor.element_size())
        return cls(tuple(tensor.shape), dtype_name(tensor.dtype), tensor.numel() * tensor.element_size())

    def to_dict(self) -> dict[str, Any]:
        return {"shape": list(self.shape), "dtype": self.dtype, "nbytes": self.nbytes}


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


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
