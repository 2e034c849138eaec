"""Operators of the backward pass (what autograd runs for ``loss.backward()``).

Most of a backward pass is already covered elsewhere: a linear layer's gradients are
``mm`` and ``sum``, and many activation gradients (``threshold_backward``, ``gelu_backward``,
``silu_backward``, ``sigmoid_backward``, ``tanh_backward``, ``native_dropout_backward``) are
tagged pointwise by PyTorch and cost 1 FLOP per element. This module covers the rest.

Products. Each gradient of a product is a product of the same size:

- ``convolution_backward``: the input gradient (``output_mask[0]``) and the weight gradient
  (``output_mask[1]``) each cost the forward convolution's MACs; the bias gradient
  (``output_mask[2]``) sums the output gradient: 1 FLOP per output-gradient element.
  FLOPs = 2 x MACs + the bias sum. (``linear_backward``, where it runs, likewise.)
- attention backward of the fused kernels (flash, efficient, cuDNN, CPU flash): the kernel
  keeps only the log-sum-exp of the forward, so it recomputes the scores ``Q K^T`` and then
  computes ``dV = P^T dO``, ``dP = dO V^T``, ``dQ = dS K`` and ``dK = dS^T Q``: per attended
  (query, key) pair and query head, 3 E + 2 Ev MACs (2.5 x the forward's E + Ev when E = Ev).
  The attended pairs, causal masks included, are counted exactly as for the forward
  (attention.py). FLOPs = 2 x MACs (the softmax gradient inside the kernel is not added).
  The math backend saves the probabilities and its backward runs as ``bmm`` and
  ``_softmax_backward_data``: 2 x the forward's products, counted through those operators.
- recurrent kernels (``mkldnn_rnn_layer_backward``, ``_cudnn_rnn_backward``): the data
  gradients and the weight gradients each cost the forward's MACs (the weight gradients only
  when requested); the pointwise part costs 2 x the forward's (each gate operation's
  derivative, times the incoming gradient). ``_thnn_fused_*_cell_backward``: 2 x the forward
  cell's pointwise count.

Normalisation, per element of the input, with x^ = (x - mean) * rstd and g = dy * weight:

- input gradient, statistics of the batch (layer, group, batch norm in training):
  rstd * (g - mean(g) - x^ * mean(g x^)): recompute x^ 2, the sums 3 (sum g: 1,
  sum g x^: 2), the combination 4 -> 9, +1 with a weight (g = dy * weight)
- input gradient with fixed statistics (batch norm in eval mode): 1 (dy times a
  per-channel factor)
- weight gradient sum(dy x^): 2, +2 to recompute x^ when no input gradient is computed
- bias gradient sum(dy): 1
So layer / group / training batch norm with affine parameters cost 13 per element for all
three gradients, eval batch norm 6. RMS norm (x^ = x * rstd): recompute 1, sum g x^ 2,
combination rstd * (g - x^ mean(g x^)) 3 -> 6, +1 with a weight; weight gradient 2 (+1).
Softmax and log-softmax gradients: 4 per element (y * (dy - sum(dy y)); dy - exp(y) sum(dy)).
Weight normalisation: 5 per weight element.

Pooling, resampling, padding, embeddings: the gradient is scattered back into the input:

- max pooling (with indices, adaptive, fractional): 1 per output-gradient element (added
  at its argmax)
- average pooling: window size per output-gradient element (as the forward)
- adaptive average pooling: 1 per input element (as the forward)
- linear / bilinear / trilinear / bicubic resampling: 3 / 7 / 15 / 31 per output-gradient
  element (the forward's weights, scattered instead of gathered); nearest: 1 (an add)
- grid sampling: each requested gradient (input, grid) costs the forward's count per
  output-gradient element (nearest: input gradient 1, grid gradient 0)
- reflection / replication padding, ``unfold``: 1 per incoming-gradient element (an add);
  an accumulating ``put`` (``take``'s backward): 1 per source element
- ``embedding_dense_backward``: 1 per accumulated element (indices x embedding size;
  +1 with ``scale_grad_by_freq``); embedding bags likewise (+1 with per-sample weights;
  max mode: 1 per bag element);
  the per-sample-weights gradient is a dot product per looked-up row: MACs = indices x size
- select / slice / diagonal backward and ``masked_scatter_backward`` only place values: 0

Activations and losses:

- activation gradients not tagged pointwise (hardtanh, ELU, leaky ReLU, hardsigmoid,
  hardswish, softplus, log-sigmoid, mish, hard/soft shrink, RReLU): 1 per result element;
  GLU: 1 per element of the input gradient; PReLU: 1 per element for each of its two
  results (the weight gradient's reduction runs as a separate ``sum``)
- loss gradients: the forward's per-element count, without the reduction's +1 (MSE 2,
  smooth L1 / Huber 4, binary cross-entropy 6, +1 with weights); negative log-likelihood:
  1 per target element, +1 with class weights
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch._ops import OpOverload

from .attention import attention_cost
from .pointwise import involves_floating_point, one_per_element
from .registry import Cost, Formula, aten_ops, default_overloads, formula, zero_cost
from .rnn import POINTWISE_PER_UNIT


def _mask(output_mask: Sequence[bool] | None, count: int) -> list[bool]:
    """An ``output_mask`` argument as a list of ``count`` booleans (None: all wanted)."""
    if output_mask is None:
        return [True] * count
    return [bool(flag) for flag in output_mask]


# --------------------------------------------------------------------------------------
# Convolution and linear
# --------------------------------------------------------------------------------------


def conv_backward_cost(
    grad_output: torch.Tensor, input: torch.Tensor, weight: torch.Tensor, transposed: bool, output_mask: Sequence[bool]
) -> Cost:
    """Input and weight gradients: the forward's MACs each; bias gradient: 1 FLOP per
    output-gradient element."""
    per_element = math.prod(weight.shape[1:])
    forward_macs = (input.numel() if transposed else grad_output.numel()) * per_element
    wants_input, wants_weight, wants_bias = _mask(output_mask, 3)
    macs = forward_macs * (int(wants_input) + int(wants_weight))
    bias_sum = grad_output.numel() if wants_bias else 0
    return Cost(macs=macs, flops=2 * macs + bias_sum)


@formula(*aten_ops("convolution_backward"))
def convolution_backward(
    grad_output: torch.Tensor, input: torch.Tensor, weight: torch.Tensor, bias_sizes: Any, stride: Any, padding: Any,
    dilation: Any, transposed: bool, output_padding: Any, groups: int, output_mask: Sequence[bool],
    *args: Any, out: Any, **kwargs: Any,
) -> Cost:
    return conv_backward_cost(grad_output, input, weight, bool(transposed), output_mask)


@formula(*aten_ops("convolution_backward_overrideable"))
def convolution_backward_overrideable(
    grad_output: torch.Tensor, input: torch.Tensor, weight: torch.Tensor, stride: Any, padding: Any, dilation: Any,
    transposed: bool, output_padding: Any, groups: int, output_mask: Sequence[bool], *args: Any, out: Any, **kwargs: Any,
) -> Cost:
    return conv_backward_cost(grad_output, input, weight, bool(transposed), output_mask)


# Its `grad_input` overload has no output_mask: only the overloads that have one.
_SLOW_CONV2D_BACKWARD: list[OpOverload] = [
    overload
    for packet in aten_ops("_slow_conv2d_backward")
    for overload in (getattr(packet, "output_mask", None), getattr(packet, "output_mask_out", None))
    if overload is not None
]


@formula(*_SLOW_CONV2D_BACKWARD)
def slow_conv2d_backward(
    grad_output: torch.Tensor, input: torch.Tensor, weight: torch.Tensor, kernel_size: Any, stride: Any, padding: Any,
    output_mask: Sequence[bool], *args: Any, out: Any, **kwargs: Any,
) -> Cost:
    return conv_backward_cost(grad_output, input, weight, False, output_mask)


@formula(*aten_ops("linear_backward", "mkldnn_linear_backward"))
def linear_backward(
    input: torch.Tensor, grad_output: torch.Tensor, weight: torch.Tensor, output_mask: Sequence[bool],
    *args: Any, out: Any, **kwargs: Any,
) -> Cost:
    """grad_input = grad_output @ W and grad_weight = grad_output^T @ input: rows x in x out
    MACs each; the bias gradient sums the output gradient."""
    macs_each = grad_output.numel() * weight.shape[-1]
    wants_input, wants_weight, wants_bias = _mask(output_mask, 3)
    macs = macs_each * (int(wants_input) + int(wants_weight))
    return Cost(macs=macs, flops=2 * macs + (grad_output.numel() if wants_bias else 0))


# --------------------------------------------------------------------------------------
# Attention
# --------------------------------------------------------------------------------------

# Per attended pair and query head, the forward costs E + Ev MACs; the backward of a fused
# kernel recomputes Q K^T (E), then dP = dO V^T (Ev), dV = P^T dO (Ev), dQ = dS K (E) and
# dK = dS^T Q (E).


def attention_backward_cost(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, causal: bool, heads_dim_first: bool = True, offset: int = 0
) -> Cost:
    """3 E + 2 Ev MACs per attended pair and query head, from the forward's count of
    ``pairs x (E + Ev)``."""
    forward = attention_cost(query, key, value, causal, heads_dim_first=heads_dim_first, offset=offset)
    head_dim, value_dim = query.shape[-1], value.shape[-1]
    if head_dim + value_dim == 0:
        return Cost()
    per_pair_and_head = forward.macs // (head_dim + value_dim)
    macs = per_pair_and_head * (3 * head_dim + 2 * value_dim)
    return Cost(macs=macs, flops=2 * macs)


@formula(*default_overloads("_scaled_dot_product_flash_attention_for_cpu_backward"))
def sdpa_flash_cpu_backward(
    grad_out: torch.Tensor, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, output: torch.Tensor,
    logsumexp: torch.Tensor, dropout_p: float, is_causal: bool, *args: Any, out: Any, **kwargs: Any,
) -> Cost:
    """An ``attn_mask`` keeps the whole L x S score matrix: dense, as in the forward."""
    return attention_backward_cost(query, key, value, bool(is_causal))


@formula(*default_overloads("_scaled_dot_product_flash_attention_backward"))
def sdpa_flash_backward(
    grad_out: torch.Tensor, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, output: torch.Tensor,
    logsumexp: torch.Tensor, cum_seq_q: Any, cum_seq_k: Any, max_q: int, max_k: int, dropout_p: float, is_causal: bool,
    *args: Any, out: Any, **kwargs: Any,
) -> Cost:
    return attention_backward_cost(query, key, value, bool(is_causal))


@formula(*default_overloads("_scaled_dot_product_efficient_attention_backward"))
def sdpa_efficient_backward(
    grad_out: torch.Tensor, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, attn_bias: Any,
    output: torch.Tensor, logsumexp: torch.Tensor, philox_seed: Any, philox_offset: Any, dropout_p: float,
    grad_input_mask: Any, is_causal: bool = False, *args: Any, out: Any, **kwargs: Any,
) -> Cost:
    """The kernel computes dQ, dK and dV together, whatever ``grad_input_mask`` asks."""
    return attention_backward_cost(query, key, value, bool(is_causal))


@formula(*default_overloads("_scaled_dot_product_cudnn_attention_backward"))
def sdpa_cudnn_backward(
    grad_out: torch.Tensor, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, output: torch.Tensor,
    logsumexp: torch.Tensor, philox_seed: Any, philox_offset: Any, attn_bias: Any, cum_seq_q: Any, cum_seq_k: Any,
    max_q: int, max_k: int, dropout_p: float, is_causal: bool, *args: Any, out: Any, **kwargs: Any,
) -> Cost:
    return attention_backward_cost(query, key, value, bool(is_causal))


@formula(*default_overloads("_scaled_dot_product_fused_attention_overrideable_backward"))
def sdpa_overrideable_backward(
    grad_out: torch.Tensor, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, attn_bias: Any,
    grad_input_mask: Any, output: torch.Tensor, logsumexp: torch.Tensor, cum_seq_q: Any, cum_seq_k: Any, max_q: int,
    max_k: int, dropout_p: float, is_causal: bool, *args: Any, out: Any, **kwargs: Any,
) -> Cost:
    return attention_backward_cost(query, key, value, bool(is_causal))


@formula(*default_overloads("_flash_attention_backward"))
def flash_attention_backward(
    grad_out: torch.Tensor, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, output: torch.Tensor,
    logsumexp: torch.Tensor, cum_seq_q: Any, cum_seq_k: Any, max_q: int, max_k: int, dropout_p: float, is_causal: bool,
    *args: Any, out: Any, window_size_left: Any = None, window_size_right: Any = None, **kwargs: Any,
) -> Cost | None:
    """(B, L, H, E) layout; causal from the bottom-right corner, as the forward."""
    if cum_seq_q is not None or window_size_left not in (None, -1) or window_size_right not in (None, -1):
        return None
    offset = key.shape[1] - query.shape[1]
    return attention_backward_cost(query, key, value, bool(is_causal), heads_dim_first=False, offset=offset)


@formula(*default_overloads("_efficient_attention_backward"))
def efficient_attention_backward(
    grad_out: torch.Tensor, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, bias: Any, output: torch.Tensor,
    cu_seqlens_q: Any, cu_seqlens_k: Any, max_seqlen_q: Any, max_seqlen_k: Any, logsumexp: torch.Tensor,
    dropout_p: float, philox_seed: Any, philox_offset: Any, custom_mask_type: int, bias_requires_grad: bool,
    *args: Any, out: Any, window_size: Any = None, **kwargs: Any,
) -> Cost | None:
    """(B, L, H, E) layout; custom_mask_type 1 / 2: causal from the top-left / bottom-right."""
    if cu_seqlens_q is not None or window_size not in (None, -1, 0):
        return None
    offset = key.shape[1] - query.shape[1] if custom_mask_type == 2 else 0
    return attention_backward_cost(
        query, key, value, custom_mask_type in (1, 2), heads_dim_first=False, offset=offset
    )


# --------------------------------------------------------------------------------------
# Recurrent kernels
# --------------------------------------------------------------------------------------


def _rnn_pointwise(mode: int, has_biases: bool, units: int) -> int:
    """The forward's pointwise FLOPs for ``units`` (steps x sequences x hidden units)."""
    base, biases = POINTWISE_PER_UNIT.get(mode, (0, 0))
    return units * (base + (biases if has_biases else 0))


@formula(*aten_ops("mkldnn_rnn_layer_backward"))
def mkldnn_rnn_layer_backward(
    input: torch.Tensor, weight1: torch.Tensor, weight2: torch.Tensor, weight3: Any, weight4: Any, hx: Any, cx: Any,
    output: Any, hy: Any, cy: Any, grad_output: Any, grad_hy: Any, grad_cy: Any, reverse: bool, mode: int,
    hidden_size: int, num_layers: int, has_biases: bool, *args: Any, out: Any, **kwargs: Any,
) -> Cost:
    """One layer in one direction; it returns the input, hidden and weight gradients, so
    2 x the forward's MACs, and 2 x its pointwise FLOPs."""
    steps = input.numel() // input.shape[-1]
    macs = 2 * steps * (weight1.numel() + weight2.numel())
    pointwise = 2 * _rnn_pointwise(mode, bool(has_biases), steps * hidden_size)
    return Cost(macs=macs, flops=2 * macs + pointwise)


@formula(*aten_ops("_cudnn_rnn_backward"))
def cudnn_rnn_backward(
    input: torch.Tensor, weight: list[torch.Tensor], weight_stride0: int, weight_buf: Any, hx: Any, cx: Any,
    output: Any, grad_output: Any, grad_hy: Any, grad_cy: Any, mode: int, hidden_size: int, proj_size: int,
    num_layers: int, batch_first: bool, dropout: float, train: bool, bidirectional: bool, batch_sizes: Any,
    dropout_state: Any, reserve: Any, output_mask: Sequence[bool], *args: Any, out: Any, **kwargs: Any,
) -> Cost:
    """All layers and directions: the data gradients always run (the forward's MACs), the
    weight gradients (``output_mask[3]``) once more."""
    steps = sum(batch_sizes) if batch_sizes else input.numel() // input.shape[-1]
    forward_macs = steps * sum(w.numel() for w in weight if w.dim() == 2)
    macs = forward_macs * (1 + int(_mask(output_mask, 4)[3]))
    layers_and_directions = num_layers * (2 if bidirectional else 1)
    has_biases = weight_stride0 in (4, 5)
    pointwise = 2 * _rnn_pointwise(mode, has_biases, steps * hidden_size * layers_and_directions)
    return Cost(macs=macs, flops=2 * macs + pointwise)


@formula(*aten_ops("_thnn_fused_lstm_cell_backward_impl"))
def fused_lstm_cell_backward(
    grad_hy: Any, grad_cy: Any, cx: torch.Tensor, cy: torch.Tensor, workspace: Any, has_bias: bool,
    *args: Any, out: Any, **kwargs: Any,
) -> Cost:
    return Cost(flops=2 * _rnn_pointwise(2, bool(has_bias), cx.numel()))


@formula(*aten_ops("_thnn_fused_gru_cell_backward"))
def fused_gru_cell_backward(grad_hy: torch.Tensor, workspace: Any, has_bias: bool, *args: Any, out: Any, **kwargs: Any) -> Cost:
    return Cost(flops=2 * _rnn_pointwise(3, bool(has_bias), grad_hy.numel()))


# --------------------------------------------------------------------------------------
# Normalisation and softmax
# --------------------------------------------------------------------------------------

RECOMPUTE = 2  # x^ = (x - mean) * rstd
INPUT_GRAD_BATCH_STATS = 7  # sum g: 1, sum g x^: 2, combination: 4 (plus the recompute)
WEIGHT_GRAD = 2  # sum dy x^
BIAS_GRAD = 1  # sum dy


def norm_backward_cost(
    input: torch.Tensor, has_weight: bool, output_mask: Sequence[bool], batch_statistics: bool = True
) -> Cost:
    wants_input, wants_weight, wants_bias = _mask(output_mask, 3)
    per_element = 0
    recomputed = False
    if wants_input:
        if batch_statistics:
            per_element += RECOMPUTE + INPUT_GRAD_BATCH_STATS + int(has_weight)
            recomputed = True
        else:
            per_element += 1  # dy * (weight * rstd), a per-channel factor
    if wants_weight:
        per_element += WEIGHT_GRAD + (0 if recomputed else RECOMPUTE)
    if wants_bias:
        per_element += BIAS_GRAD
    return Cost(flops=per_element * input.numel())


@formula(*aten_ops("native_layer_norm_backward"))
def layer_norm_backward(
    grad_out: torch.Tensor, input: torch.Tensor, normalized_shape: Any, mean: Any, rstd: Any, weight: Any, bias: Any,
    output_mask: Sequence[bool], *args: Any, out: Any, **kwargs: Any,
) -> Cost:
    return norm_backward_cost(input, weight is not None, output_mask)


@formula(*aten_ops("native_group_norm_backward"))
def group_norm_backward(
    grad_out: torch.Tensor, input: torch.Tensor, mean: Any, rstd: Any, weight: Any, n: int, c: int, hxw: int, group: int,
    output_mask: Sequence[bool], *args: Any, out: Any, **kwargs: Any,
) -> Cost:
    return norm_backward_cost(input, weight is not None, output_mask)


@formula(*aten_ops("native_batch_norm_backward"))
def batch_norm_backward(
    grad_out: torch.Tensor, input: torch.Tensor, weight: Any, running_mean: Any, running_var: Any, save_mean: Any,
    save_invstd: Any, train: bool, eps: float, output_mask: Sequence[bool], *args: Any, out: Any, **kwargs: Any,
) -> Cost:
    return norm_backward_cost(input, weight is not None, output_mask, batch_statistics=bool(train))


@formula(*aten_ops("batch_norm_backward"))
def batch_norm_backward_with_reserve(
    grad_out: torch.Tensor, input: torch.Tensor, weight: Any, running_mean: Any, running_var: Any, save_mean: Any,
    save_var: Any, update: bool, eps: float, output_mask: Sequence[bool], *args: Any, out: Any, **kwargs: Any,
) -> Cost:
    """The backward of ``_batch_norm_with_update`` (update=True: training statistics) and
    of ``_batch_norm_no_update`` (update=False: running statistics)."""
    return norm_backward_cost(input, weight is not None, output_mask, batch_statistics=bool(update))


@formula(*aten_ops("cudnn_batch_norm_backward", "miopen_batch_norm_backward"))
def cudnn_batch_norm_backward(
    input: torch.Tensor, grad_output: torch.Tensor, weight: Any, *args: Any, out: Any, **kwargs: Any
) -> Cost:
    """Training mode; all three gradients."""
    return norm_backward_cost(input, weight is not None, (True, True, True))


@formula(*aten_ops("_fused_rms_norm_backward"))
def rms_norm_backward(
    grad_out: torch.Tensor, input: torch.Tensor, normalized_shape: Any, rstd: Any, weight: Any,
    output_mask: Sequence[bool], *args: Any, out: Any, **kwargs: Any,
) -> Cost:
    wants_input, wants_weight = _mask(output_mask, 2)
    per_element = 0
    if wants_input:
        per_element += 1 + 5 + int(weight is not None)  # recompute x^ 1; sum g x^ 2; combination 3
    if wants_weight and weight is not None:
        per_element += 2 + (0 if wants_input else 1)
    return Cost(flops=per_element * input.numel())


SOFTMAX_BACKWARD = 4


@formula(*aten_ops("_softmax_backward_data", "_log_softmax_backward_data"))
def softmax_backward(grad_output: torch.Tensor, *args: Any, out: Any, **kwargs: Any) -> Cost:
    return Cost(flops=SOFTMAX_BACKWARD * grad_output.numel())


@formula(*aten_ops("_weight_norm_interface_backward"))
def weight_norm_backward(grad_w: torch.Tensor, saved_v: torch.Tensor, *args: Any, out: Any, **kwargs: Any) -> Cost:
    """grad_g = sum(grad_w v) / ||v||: 2; grad_v = g / ||v|| (grad_w - v grad_g / ||v||): 3."""
    return Cost(flops=5 * saved_v.numel())


# --------------------------------------------------------------------------------------
# Pooling, resampling, padding, embeddings
# --------------------------------------------------------------------------------------


def _incoming(grad_output: torch.Tensor, *args: Any, out: Any, **kwargs: Any) -> Cost:
    """1 FLOP per element of the incoming gradient, each added into the input gradient."""
    return Cost(flops=grad_output.numel() if involves_floating_point((grad_output,), {}, None) else 0)


formula(
    *aten_ops(
        "max_pool2d_with_indices_backward", "max_pool3d_with_indices_backward", "adaptive_max_pool2d_backward",
        "adaptive_max_pool3d_backward", "mkldnn_max_pool2d_backward", "mkldnn_max_pool3d_backward",
        "upsample_nearest1d_backward", "upsample_nearest2d_backward", "upsample_nearest3d_backward",
        "_upsample_nearest_exact1d_backward", "_upsample_nearest_exact2d_backward", "_upsample_nearest_exact3d_backward",
        "fractional_max_pool2d_backward", "fractional_max_pool3d_backward",
        "reflection_pad1d_backward", "reflection_pad2d_backward", "reflection_pad3d_backward",
        "replication_pad1d_backward", "replication_pad2d_backward", "replication_pad3d_backward",
        "unfold_backward",
    )
)(_incoming)


def _window(kernel_size: int | Sequence[int], dims: int) -> int:
    sizes = [kernel_size] if isinstance(kernel_size, int) else [int(size) for size in kernel_size]
    if len(sizes) == 1:
        sizes = sizes * dims
    return math.prod(sizes)


def _average_pool_backward(dims: int) -> Formula:
    def cost(grad_output: torch.Tensor, input: torch.Tensor, kernel_size: Any, *args: Any, out: Any, **kwargs: Any) -> Cost:
        return Cost(flops=grad_output.numel() * _window(kernel_size, dims))

    cost.__name__ = f"avg_pool{dims}d_backward"
    return cost


formula(*aten_ops("avg_pool2d_backward"))(_average_pool_backward(2))
formula(*aten_ops("avg_pool3d_backward"))(_average_pool_backward(3))


@formula(
    *aten_ops(
        "_adaptive_avg_pool2d_backward", "_adaptive_avg_pool3d_backward", "adaptive_avg_pool3d_backward",
        "mkldnn_adaptive_avg_pool2d_backward",
    )
)
def adaptive_avg_pool_backward(grad_output: torch.Tensor, input: torch.Tensor, *args: Any, out: Any, **kwargs: Any) -> Cost:
    return Cost(flops=input.numel())


def _interpolation_backward(points: int) -> Formula:
    def cost(grad_output: torch.Tensor, *args: Any, out: Any, **kwargs: Any) -> Cost:
        return Cost(flops=grad_output.numel() * (2 * points - 1))

    cost.__name__ = f"interpolate_{points}_points_backward"
    return cost


formula(*aten_ops("upsample_linear1d_backward"))(_interpolation_backward(2))
formula(*aten_ops("upsample_bilinear2d_backward"))(_interpolation_backward(4))
formula(*aten_ops("upsample_trilinear3d_backward"))(_interpolation_backward(8))
formula(*aten_ops("upsample_bicubic2d_backward"))(_interpolation_backward(16))


# grid_sampler interpolation_mode: 0 bilinear (trilinear in 3-D), 1 nearest, 2 bicubic.
_GRID_SAMPLE_POINTS = {2: {0: 4, 1: 0, 2: 16}, 3: {0: 8, 1: 0}}


def _grid_sample_backward(dims: int) -> Formula:
    def cost(
        grad_output: torch.Tensor, input: torch.Tensor, grid: torch.Tensor, interpolation_mode: int,
        padding_mode: int = 0, align_corners: bool = False, output_mask: Sequence[bool] | None = None,
        *args: Any, out: Any, **kwargs: Any,
    ) -> Cost | None:
        points = _GRID_SAMPLE_POINTS[dims].get(int(interpolation_mode))
        if points is None:
            return None
        wants_input, wants_grid = _mask(output_mask, 2)
        per_input = 2 * points - 1 if points else 1  # nearest: one add per gradient element
        per_grid = 2 * points - 1 if points else 0  # nearest: the grid gradient is zero
        per_element = (per_input if wants_input else 0) + (per_grid if wants_grid else 0)
        return Cost(flops=grad_output.numel() * per_element)

    cost.__name__ = f"grid_sample_{dims}d_backward"
    return cost


formula(*aten_ops("grid_sampler_2d_backward", "_grid_sampler_2d_cpu_fallback_backward"))(_grid_sample_backward(2))
formula(*aten_ops("grid_sampler_3d_backward"))(_grid_sample_backward(3))


@formula(*aten_ops("embedding_dense_backward"))
def embedding_dense_backward(
    grad_output: torch.Tensor, indices: torch.Tensor, num_weights: int, padding_idx: int, scale_grad_by_freq: bool,
    *args: Any, out: Any, **kwargs: Any,
) -> Cost:
    """Every looked-up row's gradient is added into its weight row: indices x embedding size
    (a padding index's rows are skipped by the kernel: data dependent, counted)."""
    accumulated = grad_output.numel()
    return Cost(flops=accumulated * (2 if scale_grad_by_freq else 1))


def _bag_backward_cost(grad: torch.Tensor, indices: torch.Tensor, mode: int, per_sample_weights: Any) -> Cost:
    if mode == 2:  # max: each bag element came from one row
        return Cost(flops=grad.numel())
    accumulated = indices.numel() * grad.shape[-1]
    return Cost(flops=accumulated * (1 + (per_sample_weights is not None)))


@formula(*aten_ops("_embedding_bag_backward"))
def embedding_bag_backward(
    grad: torch.Tensor, indices: torch.Tensor, offsets: Any, offset2bag: Any, bag_size: Any, maximum_indices: Any,
    num_weights: int, scale_grad_by_freq: bool, mode: int, sparse: bool, per_sample_weights: Any = None,
    *args: Any, out: Any, **kwargs: Any,
) -> Cost:
    return _bag_backward_cost(grad, indices, mode, per_sample_weights)


@formula(*aten_ops("_embedding_bag_dense_backward"))
def embedding_bag_dense_backward(
    grad: torch.Tensor, indices: torch.Tensor, offset2bag: Any, bag_size: Any, maximum_indices: Any, num_weights: int,
    scale_grad_by_freq: bool, mode: int, per_sample_weights: Any = None, *args: Any, out: Any, **kwargs: Any,
) -> Cost:
    return _bag_backward_cost(grad, indices, mode, per_sample_weights)


@formula(*aten_ops("_embedding_bag_per_sample_weights_backward"))
def embedding_bag_per_sample_weights_backward(
    grad: torch.Tensor, weight: torch.Tensor, indices: torch.Tensor, *args: Any, out: Any, **kwargs: Any
) -> Cost:
    """One dot product of a bag's gradient with each looked-up row."""
    macs = indices.numel() * grad.shape[-1]
    return Cost(macs=macs, flops=2 * macs)


@formula(*aten_ops("put", "put_"))
def put(
    input: torch.Tensor, index: torch.Tensor, source: torch.Tensor, accumulate: bool = False, *args: Any, out: Any,
    **kwargs: Any,
) -> Cost:
    """``take``'s backward: accumulating puts add 1 per source element; plain puts copy."""
    if not accumulate or not involves_floating_point((input,), {}, None):
        return Cost()
    return Cost(flops=source.numel())


# Only place values (the rest of the input gradient is zero).
formula(
    *aten_ops("select_backward", "slice_backward", "diagonal_backward", "masked_scatter_backward", "_nested_select_backward")
)(zero_cost)


# --------------------------------------------------------------------------------------
# Activations and losses
# --------------------------------------------------------------------------------------

formula(
    *aten_ops(
        "hardtanh_backward", "elu_backward", "leaky_relu_backward", "hardsigmoid_backward", "hardswish_backward",
        "softplus_backward", "log_sigmoid_backward", "hardshrink_backward", "softshrink_backward",
        "rrelu_with_noise_backward", "mish_backward", "glu_backward",
    )
)(one_per_element)


@formula(*aten_ops("_prelu_kernel_backward"))
def prelu_backward(grad_output: torch.Tensor, input: torch.Tensor, weight: torch.Tensor, *args: Any, out: Any, **kwargs: Any) -> Cost:
    """Two elementwise results the size of the input: dy or weight * dy, and dy * x or 0."""
    return Cost(flops=2 * input.numel())


def _loss_backward(per_element: int) -> Formula:
    def cost(grad_output: torch.Tensor, input: torch.Tensor, *args: Any, out: Any, **kwargs: Any) -> Cost:
        return Cost(flops=input.numel() * per_element)

    cost.__name__ = f"loss_{per_element}_backward"
    return cost


formula(*aten_ops("mse_loss_backward"))(_loss_backward(2))
formula(*aten_ops("smooth_l1_loss_backward", "huber_loss_backward"))(_loss_backward(4))


@formula(*aten_ops("binary_cross_entropy_backward"))
def binary_cross_entropy_backward(
    grad_output: torch.Tensor, input: torch.Tensor, target: torch.Tensor, weight: Any = None, *args: Any, out: Any,
    **kwargs: Any,
) -> Cost:
    """dy * (x - t) / max(x (1 - x), eps): 6 per element, +1 with weights."""
    return Cost(flops=input.numel() * (6 + (weight is not None)))


@formula(*aten_ops("nll_loss_backward", "nll_loss2d_backward"))
def nll_loss_backward(
    grad_output: torch.Tensor, input: torch.Tensor, target: torch.Tensor, weight: Any, *args: Any, out: Any,
    **kwargs: Any,
) -> Cost:
    """-dy (/ total weight) written at each target's class: 1 per target element, +1 with
    class weights; the zeros elsewhere are free."""
    return Cost(flops=target.numel() * (1 + (weight is not None)))

