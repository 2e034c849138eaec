"""Matrix products. A result element that sums k products costs k MACs, so a product costs
(elements of the result) x (length of the contracted dimension). FLOPs are 2 x MACs: a bias
that the kernel accumulates into is the initial value of the sum, not extra work."""

from __future__ import annotations

from typing import Any

import torch

from .registry import Cost, aten_ops, first_tensor, formula


def _contracted(left: torch.Tensor, out: Any) -> Cost:
    result = first_tensor(out)
    assert result is not None
    k = left.shape[-1] if left.dim() > 0 else 1
    macs = result.numel() * k
    return Cost(macs=macs, flops=2 * macs)


@formula(*aten_ops("mm", "bmm", "matmul", "mv", "dot", "vdot", "inner", "_int_mm", "_scaled_mm"))
def left_times_right(left: torch.Tensor, right: torch.Tensor, *args: Any, out: Any, **kwargs: Any) -> Cost:
    """mm(a, b), bmm(a, b), mv(a, v), dot(a, b), ...: the left operand is first."""
    return _contracted(left, out)


@formula(*aten_ops("addmm", "baddbmm", "addmv", "_addmm_activation"))
def bias_plus_product(
    bias: torch.Tensor, left: torch.Tensor, right: torch.Tensor, *args: Any, out: Any, **kwargs: Any
) -> Cost:
    """addmm(bias, a, b) and friends: the bias is accumulated into, not counted."""
    return _contracted(left, out)


@formula(*aten_ops("addbmm"))
def addbmm(bias: torch.Tensor, batch1: torch.Tensor, batch2: torch.Tensor, *args: Any, out: Any, **kwargs: Any) -> Cost:
    """addbmm sums the batch of products into one matrix: B*m*k*n MACs."""
    macs = batch1.numel() * batch2.shape[-1]
    return Cost(macs=macs, flops=2 * macs)


@formula(*aten_ops("addr"))
def outer_product(bias: torch.Tensor, vec1: torch.Tensor, vec2: torch.Tensor, *args: Any, out: Any, **kwargs: Any) -> Cost:
    """addr(bias, u, v) = bias + u v^T: one multiply-accumulate per result element."""
    macs = vec1.numel() * vec2.numel()
    return Cost(macs=macs, flops=2 * macs)


@formula(*aten_ops("linear"))
def linear(input: torch.Tensor, weight: torch.Tensor, *args: Any, out: Any, **kwargs: Any) -> Cost:
    """aten.linear is normally decomposed before we see it; counted the same way if not."""
    return _contracted(input, out)
