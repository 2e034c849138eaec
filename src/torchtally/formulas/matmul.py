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


@formula(*aten_ops("addmm", "baddbmm", "addmv"))
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


@formula(*aten_ops("_addmm_activation"))
def addmm_activation(
    bias: torch.Tensor, left: torch.Tensor, right: torch.Tensor, *args: Any, out: Any, **kwargs: Any
) -> Cost:
    """addmm followed by a fused ReLU or GELU: 1 FLOP per result element for the activation."""
    product = _contracted(left, out)
    result = first_tensor(out)
    assert result is not None
    return Cost(macs=product.macs, flops=product.flops + result.numel())


@formula(*aten_ops("_grouped_mm", "_scaled_grouped_mm"))
def grouped_mm(left: torch.Tensor, right: torch.Tensor, *args: Any, out: Any, **kwargs: Any) -> Cost:
    """Mixture-of-experts products, one per group. When the left operand is 2-D and the right
    3-D (tokens routed to experts) or both 3-D, each result element sums K products. When both
    are 2-D, the groups split the contracted dimension: M x K_total x N in all."""
    if left.dim() == 2 and right.dim() == 2:
        macs = left.shape[0] * left.shape[1] * right.shape[1]
        return Cost(macs=macs, flops=2 * macs)
    return _contracted(left, out)


@formula(*aten_ops("_trilinear"))
def trilinear(
    i1: torch.Tensor, i2: torch.Tensor, i3: torch.Tensor, expand1: Any, expand2: Any, expand3: Any, sumdim: Any,
    *args: Any, out: Any, **kwargs: Any,
) -> Cost:
    """``nn.Bilinear``'s x1^T W x2 (and any trilinear product): each result element sums one
    term per combination of the summed dimensions; one MAC per term."""
    shapes = []
    for tensor, expanded in ((i1, expand1), (i2, expand2), (i3, expand3)):
        shape = list(tensor.shape)
        for dim in sorted(expanded):
            shape.insert(dim, 1)
        shapes.append(shape)
    summed = 1
    for dim in sumdim:
        summed *= max(shape[dim] for shape in shapes)
    result = first_tensor(out)
    assert result is not None
    macs = result.numel() * summed
    return Cost(macs=macs, flops=2 * macs)
