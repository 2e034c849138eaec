"""Reductions, scans and accumulating scatters, per element of the input:

- sum, mean, max/min/amax/amin, argmax/argmin, prod, cumsum, cumprod, logcumsumexp: 1
- vector norms: 2 (square, add); logsumexp: 3 (subtract the max, exp, add)
- variance / standard deviation: 4 (mean: 1; subtract, square, add: 3)
- topk: 1 compare; sort: log2(n) compares per element of a slice of length n
- scatter_add / scatter with a reduction: 1 per index element; index_add and accumulating
  index_put: 1 add per source element
Only floating-point work counts (reductions of integers or booleans cost 0)."""

from __future__ import annotations

import math
from typing import Any

import torch

from .pointwise import involves_floating_point
from .registry import Cost, Formula, aten_ops, formula


def per_input_element(flops_per_element: int) -> Formula:
    def cost(input: torch.Tensor, *args: Any, out: Any, **kwargs: Any) -> Cost:
        if not involves_floating_point((input,), {}, None):
            return Cost()
        return Cost(flops=flops_per_element * input.numel())

    cost.__name__ = f"reduce_{flops_per_element}"
    return cost


formula(
    *aten_ops(
        "sum", "nansum", "mean", "nanmean", "amax", "amin", "max", "min", "aminmax", "argmax",
        "argmin", "prod", "cumsum", "cumsum_", "cumprod", "cumprod_", "cummax", "cummin",
        "logcumsumexp", "_cummax_helper", "_cummin_helper", "median", "nanmedian", "mode",
        "kthvalue", "topk", "any", "all", "count_nonzero", "histc", "bincount",
    )
)(per_input_element(1))
formula(*aten_ops("norm", "linalg_vector_norm", "frobenius_norm"))(per_input_element(2))
formula(*aten_ops("logsumexp"))(per_input_element(3))
formula(*aten_ops("var", "std", "var_mean", "std_mean"))(per_input_element(4))


@formula(*aten_ops("sort", "argsort"))
def sort(input: torch.Tensor, *args: Any, out: Any, dim: int = -1, **kwargs: Any) -> Cost:
    if input.dim() == 0 or not involves_floating_point((input,), {}, None):
        return Cost()
    if args and isinstance(args[0], int):  # sort(self, dim, descending) / sort.stable(self, *, stable, dim)
        dim = args[0]
    length = input.shape[dim]
    return Cost(flops=input.numel() * max(1, math.ceil(math.log2(length))) if length > 1 else 0)


@formula(
    *aten_ops("scatter_add", "scatter_add_", "scatter_reduce", "scatter_reduce_"),
    torch.ops.aten.scatter.reduce, torch.ops.aten.scatter.value_reduce,
    torch.ops.aten.scatter_.reduce, torch.ops.aten.scatter_.value_reduce,
)
def scatter_accumulate(
    input: torch.Tensor, dim: int, index: torch.Tensor, src: Any, *args: Any, out: Any, **kwargs: Any
) -> Cost:
    """One add (or multiply, max...) per scattered element: the index decides how many, as
    only ``src``'s elements at the index's positions are used."""
    return Cost(flops=index.numel() if involves_floating_point((input,), {}, None) else 0)


@formula(*aten_ops("index_add", "index_add_"))
def index_add(
    input: torch.Tensor, dim: int, index: torch.Tensor, source: torch.Tensor, *args: Any, out: Any, **kwargs: Any
) -> Cost:
    return Cost(flops=source.numel() if involves_floating_point((input,), {}, None) else 0)


@formula(*aten_ops("index_put", "index_put_", "_index_put_impl_"))
def index_put(
    input: torch.Tensor, indices: Any, values: torch.Tensor, accumulate: bool = False, *args: Any, out: Any, **kwargs: Any
) -> Cost:
    """Writing values is a copy; accumulating them is one add per written element."""
    if not accumulate or not involves_floating_point((input,), {}, None):
        return Cost()
    written = max(values.numel(), max((i.numel() for i in indices if isinstance(i, torch.Tensor)), default=0))
    return Cost(flops=written)


@formula(*aten_ops("embedding_bag", "_embedding_bag", "_embedding_bag_forward_only"))
def embedding_bag(
    weight: torch.Tensor, indices: torch.Tensor, offsets: Any, scale_grad_by_freq: bool = False, mode: int = 0,
    *args: Any, out: Any, **kwargs: Any,
) -> Cost:
    """Each looked-up row is added (sum, mean) or compared (max) into its bag: 1 per element."""
    return Cost(flops=indices.numel() * weight.shape[-1])


@formula(*aten_ops("col2im"))
def col2im(input: torch.Tensor, *args: Any, out: Any, **kwargs: Any) -> Cost:
    """Folding patches back adds every patch element into the image."""
    return Cost(flops=input.numel())
