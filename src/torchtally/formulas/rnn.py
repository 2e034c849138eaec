"""Fused recurrent kernels (LSTM on CPU runs as ``mkldnn_rnn_layer``, on CUDA as
``_cudnn_rnn``; GRU and plain RNNs on CPU are decomposed into matmuls and pointwise
operators, which are counted as they run).

Every time step of every sequence multiplies each weight matrix once by a vector, so
MACs = (time steps x batch) x (elements of all weight matrices). Pointwise work per time
step, sequence and hidden unit (mode numbers are cuDNN's):

- RNN (0: relu, 1: tanh): add the two products, activation: 2, +2 with biases
- LSTM (2): add the two products for 4 gates: 4; 3 sigmoids + 2 tanh: 5; cell and hidden
  update (f*c + i*g, o*tanh(c)): 4 -> 13, +8 with biases (two per gate)
- GRU (3): add the products for r, z: 2; r*(W_hn h): 1; add for n: 1; 2 sigmoids + 1 tanh:
  3; h' = (1 - z) * n + z * h: 4 -> 11, +6 with biases
"""

from __future__ import annotations

from typing import Any

import torch

from .registry import Cost, aten_ops, formula

POINTWISE_PER_UNIT = {0: (2, 2), 1: (2, 2), 2: (13, 8), 3: (11, 6)}  # mode: (base, with biases)


def _pointwise(mode: int, has_biases: bool, steps: int, hidden: int, layers_and_directions: int) -> int:
    base, biases = POINTWISE_PER_UNIT.get(mode, (0, 0))
    return steps * hidden * layers_and_directions * (base + (biases if has_biases else 0))


@formula(*aten_ops("mkldnn_rnn_layer"))
def mkldnn_rnn_layer(
    input: torch.Tensor, weight_ih: torch.Tensor, weight_hh: torch.Tensor, bias_ih: Any, bias_hh: Any,
    hx: Any, cx: Any, reverse: bool, batch_sizes: Any, mode: int, hidden_size: int, num_layers: int,
    has_biases: bool, *args: Any, out: Any, **kwargs: Any,
) -> Cost:
    """One layer in one direction; ``input`` is (T, B, I) or (B, T, I)."""
    steps = input.numel() // input.shape[-1]  # T x B
    macs = steps * (weight_ih.numel() + weight_hh.numel())
    return Cost(macs=macs, flops=2 * macs + _pointwise(mode, has_biases, steps, hidden_size, 1))


@formula(*aten_ops("_cudnn_rnn"))
def cudnn_rnn(
    input: torch.Tensor, weight: list[torch.Tensor], weight_stride0: int, weight_buf: Any, hx: Any, cx: Any,
    mode: int, hidden_size: int, proj_size: int, num_layers: int, batch_first: bool, dropout: float,
    train: bool, bidirectional: bool, batch_sizes: Any, *args: Any, out: Any, **kwargs: Any,
) -> Cost:
    """All layers and directions at once; a packed sequence's steps are sum(batch_sizes)."""
    steps = sum(batch_sizes) if batch_sizes else input.numel() // input.shape[-1]
    matrices = sum(w.numel() for w in weight if w.dim() == 2)
    macs = steps * matrices
    layers_and_directions = num_layers * (2 if bidirectional else 1)
    has_biases = weight_stride0 in (4, 5)  # w_ih, w_hh, b_ih, b_hh[, w_hr]
    return Cost(macs=macs, flops=2 * macs + _pointwise(mode, has_biases, steps, hidden_size, layers_and_directions))


@formula(*aten_ops("_thnn_fused_lstm_cell"))
def fused_lstm_cell(
    input_gates: torch.Tensor, hidden_gates: torch.Tensor, cx: torch.Tensor, input_bias: Any = None,
    hidden_bias: Any = None, *args: Any, out: Any, **kwargs: Any,
) -> Cost:
    """The pointwise half of an LSTM step on CUDA (the matmuls run as separate operators)."""
    return Cost(flops=_pointwise(2, input_bias is not None, 1, cx.numel(), 1))


@formula(*aten_ops("_thnn_fused_gru_cell"))
def fused_gru_cell(
    input_gates: torch.Tensor, hidden_gates: torch.Tensor, hx: torch.Tensor, input_bias: Any = None,
    hidden_bias: Any = None, *args: Any, out: Any, **kwargs: Any,
) -> Cost:
    return Cost(flops=_pointwise(3, input_bias is not None, 1, hx.numel(), 1))
