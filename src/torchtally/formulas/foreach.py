"""Multi-tensor (``_foreach_*``) operators, which optimizers use on CUDA by default: a call
costs what the single-tensor operator would cost on each tensor of its lists."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch._ops import OpOverload

from .registry import Cost, Formula

# The overload of the single-tensor operator that takes one element of each list.
_ELEMENT_OVERLOAD = {"List": "Tensor", "ScalarList": "Scalar", "Scalar": "Scalar", "Tensor": "Tensor", "default": "default"}


def single_tensor_operator(func: OpOverload) -> OpOverload | None:
    """``aten._foreach_add_.List`` -> ``aten.add_.Tensor``; None for anything else."""
    name = func.overloadpacket.__name__
    if func.namespace != "aten" or not name.startswith("_foreach_"):
        return None
    packet = getattr(torch.ops.aten, name.removeprefix("_foreach_"), None)
    if packet is None:
        return None
    for overload in (_ELEMENT_OVERLOAD.get(func._overloadname, "default"), "default", "Tensor"):
        found = getattr(packet, overload, None)
        if isinstance(found, OpOverload):
            return found
    return None


def _element(value: Any, i: int) -> Any:
    return value[i] if isinstance(value, (list, tuple)) else value


def foreach_formula(single: OpOverload, cost_of: Callable[[OpOverload, tuple[Any, ...], dict[str, Any], Any], Cost | None]) -> Formula:
    """The formula of a ``_foreach_`` operator whose single-tensor form is ``single``."""

    def each_tensor(*args: Any, out: Any, **kwargs: Any) -> Cost | None:
        first = args[0]
        macs = flops = 0
        for i in range(len(first)):
            element_args = tuple(_element(a, i) for a in args)
            element_out = out[i] if isinstance(out, (list, tuple)) and out else element_args[0]  # in place: self
            cost = cost_of(single, element_args, {k: _element(v, i) for k, v in kwargs.items()}, element_out)
            if cost is None:
                return None
            macs += cost.macs
            flops += cost.flops
        return Cost(macs=macs, flops=flops)

    each_tensor.__qualname__ = f"foreach[{single}]"
    return each_tensor
