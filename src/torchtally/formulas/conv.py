"""Convolution of any rank, grouped, depthwise and transposed.

Each output element of a convolution sums (C_in / groups) x prod(kernel) products, so
MACs = out.numel() x prod(weight.shape[1:]), the weight being (C_out, C_in/groups, *kernel).
A transposed convolution scatters every *input* element through a (C_out/groups, *kernel)
slice, so MACs = input.numel() x prod(weight.shape[1:]), its weight being
(C_in, C_out/groups, *kernel). Bias additions are not MACs."""

from __future__ import annotations

import math
from typing import Any

import torch

from .registry import Cost, aten_ops, first_tensor, formula


def conv_cost(input: torch.Tensor, weight: torch.Tensor, out: Any, transposed: bool) -> Cost:
    per_element = math.prod(weight.shape[1:])
    if transposed:
        macs = input.numel() * per_element
    else:
        result = first_tensor(out)
        assert result is not None
        macs = result.numel() * per_element
    return Cost(macs=macs, flops=2 * macs)


@formula(*aten_ops("convolution", "_convolution", "convolution_overrideable"))
def convolution(
    input: torch.Tensor,
    weight: torch.Tensor,
    bias: Any,
    stride: Any,
    padding: Any,
    dilation: Any,
    transposed: bool,
    *args: Any,
    out: Any,
    **kwargs: Any,
) -> Cost:
    return conv_cost(input, weight, out, bool(transposed))


@formula(
    *aten_ops(
        "conv1d",
        "conv2d",
        "conv3d",
        "cudnn_convolution",
        "mkldnn_convolution",
        "miopen_convolution",
        "miopen_depthwise_convolution",
        "_conv_depthwise2d",
        "conv_depthwise3d",
        "_slow_conv2d_forward",
        "slow_conv3d_forward",
        "slow_conv_dilated2d",
        "slow_conv_dilated3d",
        "_nnpack_spatial_convolution",
        "thnn_conv2d",
        "slow_conv3d",
    )
)
def forward_convolution(input: torch.Tensor, weight: torch.Tensor, *args: Any, out: Any, **kwargs: Any) -> Cost:
    return conv_cost(input, weight, out, transposed=False)


@formula(
    *aten_ops(
        "conv_transpose1d",
        "conv_transpose2d",
        "conv_transpose3d",
        "cudnn_convolution_transpose",
        "miopen_convolution_transpose",
        "slow_conv_transpose2d",
        "slow_conv_transpose3d",
    )
)
def transposed_convolution(input: torch.Tensor, weight: torch.Tensor, *args: Any, out: Any, **kwargs: Any) -> Cost:
    return conv_cost(input, weight, out, transposed=True)
