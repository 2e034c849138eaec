"""Quantized kernels of ``torch.ao`` (dynamic and static): the same products as their float
counterparts, read from the shapes of the activations since the weights are packed.

A linear layer maps (..., in) to (..., out): MACs = rows x in x out.
A convolution's packed weight is unpacked only to read its shape."""

from __future__ import annotations

import math
from typing import Any

import torch

from .registry import Cost, first_tensor, formula


def _quantized_ops(*names: str) -> list[Any]:
    namespace = torch.ops.quantized
    found = []
    for name in names:
        try:
            found.append(getattr(namespace, name))
        except (AttributeError, RuntimeError):
            continue
    return found


@formula(
    *_quantized_ops(
        "linear_dynamic", "linear_relu_dynamic", "linear_dynamic_fp16", "linear_relu_dynamic_fp16",
        "linear", "linear_relu", "linear_dynamic_fp16_unpacked_weight",
    )
)
def quantized_linear(input: torch.Tensor, *args: Any, out: Any, **kwargs: Any) -> Cost:
    result = first_tensor(out)
    assert result is not None
    macs = result.numel() * input.shape[-1]
    return Cost(macs=macs, flops=2 * macs)


@formula(*_quantized_ops("conv1d", "conv2d", "conv3d", "conv1d_relu", "conv2d_relu", "conv3d_relu"))
def quantized_conv(input: torch.Tensor, packed_weight: Any, *args: Any, out: Any, **kwargs: Any) -> Cost | None:
    try:
        weight = packed_weight.unpack()[0]
    except (AttributeError, RuntimeError):
        return None
    result = first_tensor(out)
    assert result is not None
    transposed = bool(packed_weight.transpose()) if hasattr(packed_weight, "transpose") else False
    per_element = math.prod(weight.shape[1:])
    macs = (input.numel() if transposed else result.numel()) * per_element
    return Cost(macs=macs, flops=2 * macs)
