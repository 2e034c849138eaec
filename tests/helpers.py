"""Small pieces several test files use."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


class Fn(nn.Module):
    """A module whose forward is a plain function of its inputs (tensor methods, F.*)."""

    def __init__(self, fn: Callable[..., Any]):
        super().__init__()
        self.fn = fn

    def forward(self, *inputs: torch.Tensor) -> Any:
        return self.fn(*inputs)


def flop_counter_macs(model: nn.Module, *inputs: torch.Tensor) -> int:
    """PyTorch's independent count: FlopCounterMode reports 2 FLOPs per multiply-accumulate."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(*inputs)
    total = counter.get_total_flops()
    assert total % 2 == 0
    return total // 2
