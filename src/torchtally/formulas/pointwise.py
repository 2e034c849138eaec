"""Elementwise operators.

Rule: an operator PyTorch tags ``torch.Tag.pointwise`` costs 1 FLOP per element of its
result (transcendental or not: exp, tanh, gelu and add all count 1), provided a
floating-point (or complex) tensor is involved; elementwise work on integers and booleans
is not floating-point work and costs 0. The table below lists the exceptions.
"""

from __future__ import annotations

from typing import Any

import torch
from torch._ops import OpOverload

from .registry import Cost, Formula, aten_ops, first_tensor, formula, tensor_args, zero_cost


def involves_floating_point(args: Any, kwargs: Any, out: Any) -> bool:
    for tensor in tensor_args((*args, *kwargs.values(), out)):
        if tensor.is_floating_point() or tensor.is_complex():
            return True
    return False


def per_element(flops_per_element: int) -> Formula:
    """A formula charging ``flops_per_element`` per element of the result."""

    def cost(*args: Any, out: Any, **kwargs: Any) -> Cost:
        result = first_tensor(out)
        if result is None or not involves_floating_point(args, kwargs, out):
            return Cost()
        return Cost(flops=flops_per_element * result.numel())

    cost.__name__ = f"per_element_{flops_per_element}"
    return cost


one_per_element = per_element(1)


def is_pointwise(func: OpOverload) -> bool:
    """Whether PyTorch tags this operator (or, for ``foo_``, its out-of-place ``foo``) pointwise."""
    if torch.Tag.pointwise in func.tags:
        return True
    name = func.overloadpacket.__name__
    if name.endswith("_") and not name.endswith("__"):
        functional = getattr(torch.ops.aten, name[:-1], None) if func.namespace == "aten" else None
        if functional is not None:
            overload = getattr(functional, func._overloadname, None)
            if overload is not None and torch.Tag.pointwise in overload.tags:
                return True
    return False


# Tagged pointwise by PyTorch, but they select or copy values rather than compute them.
formula(
    *aten_ops(
        "clone", "where", "masked_fill", "masked_fill_", "fill", "fill_", "zero_", "copy", "copy_",
        "_to_copy", "lift_fresh_copy", "masked_scatter", "masked_scatter_", "bitwise_not",
        "logical_not", "logical_and", "logical_or", "logical_xor", "isnan", "isinf", "isfinite",
        "signbit", "nan_to_num", "nan_to_num_", "positive", "conj_physical", "real", "imag",
    )
)(zero_cost)

# a + value * t1 * t2 (or t1 / t2): one multiply (or divide) and one add per element.
formula(*aten_ops("addcmul", "addcmul_", "addcdiv", "addcdiv_"))(per_element(2))
# start + weight * (end - start): a subtract, a multiply and an add.
formula(*aten_ops("lerp", "lerp_"))(per_element(3))
# abs * cos(angle) + i * abs * sin(angle): a cosine, a sine and two multiplies per element.
formula(*aten_ops("polar"))(per_element(4))


@formula(*aten_ops("native_dropout"))
def native_dropout(input: torch.Tensor, p: float, train: Any, *args: Any, out: Any, **kwargs: Any) -> Cost:
    """Training-mode dropout scales every kept element: 1 multiply per element."""
    if train is False:
        return Cost()
    return Cost(flops=input.numel() if input.is_floating_point() else 0)


@formula(*aten_ops("glu"))
def glu(input: torch.Tensor, *args: Any, out: Any, **kwargs: Any) -> Cost:
    """a * sigmoid(b) over the two halves: a sigmoid and a multiply per output element."""
    result = first_tensor(out)
    assert result is not None
    return Cost(flops=2 * result.numel())


# Elementwise, but not tagged pointwise by PyTorch.
formula(
    *aten_ops(
        "hardswish", "hardswish_", "_prelu_kernel", "prelu", "rrelu_with_noise", "rrelu_with_noise_",
        "log_sigmoid_forward", "floor_divide", "floor_divide_",
    )
)(one_per_element)


# Python's bitwise operator overloads (``a | b`` on tensors). They are composite and normally
# decompose before a dispatch mode sees them; under DTensor they arrive whole. Integer and
# boolean work: free, like the bitwise operators they stand for.
formula(*aten_ops("__or__", "__and__", "__xor__", "__ior__", "__iand__", "__ixor__", "__lshift__", "__rshift__", "__ilshift__", "__irshift__"))(one_per_element)
