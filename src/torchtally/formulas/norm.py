"""Normalisation layers, per element of the input:

- statistics, when the kernel computes them: 4 (mean: 1 add; variance: subtract, square, add)
- normalise: 2 (subtract the mean, multiply by the inverse standard deviation)
- affine: 1 for the weight, 1 for the bias, when present.

So batch norm in eval mode with affine parameters is 4 FLOPs per element, in training mode
8; layer and group norm with affine parameters are 8. RMS norm: statistics 2 (square,
add), normalise 1, weight 1. Softmax and log-softmax: 5 per element (max, subtract, exp,
sum, divide or log). Weight normalisation (``_weight_norm_interface``): 3 per weight element."""

from __future__ import annotations

from typing import Any

import torch

from .registry import Cost, aten_ops, formula

STATISTICS = 4
NORMALISE = 2


def _norm_flops(input: torch.Tensor, weight: Any, bias: Any, computes_statistics: bool) -> Cost:
    per_element = NORMALISE + (STATISTICS if computes_statistics else 0)
    per_element += (weight is not None) + (bias is not None)
    return Cost(flops=per_element * input.numel())


@formula(*aten_ops("native_batch_norm", "_native_batch_norm_legit_functional", "cudnn_batch_norm", "miopen_batch_norm"))
def batch_norm(
    input: torch.Tensor, weight: Any, bias: Any, running_mean: Any, running_var: Any, training: bool,
    *args: Any, out: Any, **kwargs: Any,
) -> Cost:
    return _norm_flops(input, weight, bias, computes_statistics=bool(training))


@formula(torch.ops.aten._native_batch_norm_legit.default)
def batch_norm_legit(
    input: torch.Tensor, weight: Any, bias: Any, running_mean: Any, running_var: Any, training: bool,
    *args: Any, out: Any, **kwargs: Any,
) -> Cost:
    return _norm_flops(input, weight, bias, computes_statistics=bool(training))


@formula(torch.ops.aten._native_batch_norm_legit.no_stats)
def batch_norm_legit_no_stats(
    input: torch.Tensor, weight: Any, bias: Any, training: bool, *args: Any, out: Any, **kwargs: Any
) -> Cost:
    return _norm_flops(input, weight, bias, computes_statistics=bool(training))


@formula(*aten_ops("_native_batch_norm_legit_no_training", "_batch_norm_no_update"))
def batch_norm_eval(input: torch.Tensor, weight: Any, bias: Any, *args: Any, out: Any, **kwargs: Any) -> Cost:
    return _norm_flops(input, weight, bias, computes_statistics=False)


@formula(*aten_ops("_batch_norm_with_update", "_batch_norm_with_update_functional"))
def batch_norm_train(input: torch.Tensor, weight: Any, bias: Any, *args: Any, out: Any, **kwargs: Any) -> Cost:
    return _norm_flops(input, weight, bias, computes_statistics=True)


@formula(*aten_ops("native_layer_norm"))
def layer_norm(
    input: torch.Tensor, normalized_shape: Any, weight: Any, bias: Any, *args: Any, out: Any, **kwargs: Any
) -> Cost:
    return _norm_flops(input, weight, bias, computes_statistics=True)


@formula(*aten_ops("native_group_norm"))
def group_norm(input: torch.Tensor, weight: Any, bias: Any, *args: Any, out: Any, **kwargs: Any) -> Cost:
    return _norm_flops(input, weight, bias, computes_statistics=True)


@formula(*aten_ops("_fused_rms_norm"))
def rms_norm(input: torch.Tensor, normalized_shape: Any, weight: Any, *args: Any, out: Any, **kwargs: Any) -> Cost:
    per_element = 2 + 1 + (weight is not None)
    return Cost(flops=per_element * input.numel())


SOFTMAX = 5


@formula(*aten_ops("_softmax", "_log_softmax", "_safe_softmax", "softmax", "log_softmax"))
def softmax(input: torch.Tensor, *args: Any, out: Any, **kwargs: Any) -> Cost:
    return Cost(flops=SOFTMAX * input.numel())


@formula(*aten_ops("_weight_norm_interface"))
def weight_norm(v: torch.Tensor, g: torch.Tensor, *args: Any, out: Any, **kwargs: Any) -> Cost:
    """w = g * v / ||v||: the norm (square, add) and the scaling, 3 per element of v."""
    return Cost(flops=3 * v.numel())
