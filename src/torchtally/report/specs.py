"""TensorSpec: what the report keeps of a tensor (its shape, dtype and size), never the tensor."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch.utils._mode_utils import no_dispatch


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
