"""Loss functions, per element of the input (each +1 per element when the loss is reduced to
a mean or sum):

- mean squared error, L1: 2 (subtract; square or absolute value)
- smooth L1, Huber: 4 (subtract, absolute value, compare, square or shift)
- binary cross-entropy: 6 (two logs, 1 - x, two multiplies, an add)
- binary cross-entropy with logits: 7 (the stable log-sigmoid form: max, exp, log, and the rest)
- negative log-likelihood: 1 per target element (pick is free; weight: +1; the sum: +1)"""

from __future__ import annotations

from typing import Any

import torch

from .registry import Cost, Formula, aten_ops, formula

NO_REDUCTION = 0  # torch's Reduction enum: 0 none, 1 mean, 2 sum


def _elementwise_loss(per_element: int) -> Formula:
    def cost(input: torch.Tensor, target: torch.Tensor, *args: Any, out: Any, reduction: int = 1, **kwargs: Any) -> Cost:
        # The reduction is positional in most schemas: find it among the trailing ints.
        ints = [a for a in args if isinstance(a, int) and not isinstance(a, bool)]
        mode = ints[0] if ints else reduction
        return Cost(flops=input.numel() * (per_element + (mode != NO_REDUCTION)))

    cost.__name__ = f"loss_{per_element}"
    return cost


formula(*aten_ops("mse_loss", "l1_loss"))(_elementwise_loss(2))
formula(*aten_ops("smooth_l1_loss", "huber_loss"))(_elementwise_loss(4))


@formula(*aten_ops("binary_cross_entropy"))
def binary_cross_entropy(
    input: torch.Tensor, target: torch.Tensor, weight: Any = None, reduction: int = 1, *args: Any, out: Any, **kwargs: Any
) -> Cost:
    return Cost(flops=input.numel() * (6 + (weight is not None) + (reduction != NO_REDUCTION)))


@formula(*aten_ops("binary_cross_entropy_with_logits"))
def binary_cross_entropy_with_logits(
    input: torch.Tensor, target: torch.Tensor, weight: Any = None, pos_weight: Any = None, reduction: int = 1,
    *args: Any, out: Any, **kwargs: Any,
) -> Cost:
    extra = (weight is not None) + (pos_weight is not None) + (reduction != NO_REDUCTION)
    return Cost(flops=input.numel() * (7 + extra))


@formula(*aten_ops("nll_loss_forward", "nll_loss2d_forward"))
def nll_loss(
    input: torch.Tensor, target: torch.Tensor, weight: Any, reduction: int, *args: Any, out: Any, **kwargs: Any
) -> Cost:
    return Cost(flops=target.numel() * ((weight is not None) + (reduction != NO_REDUCTION)))
