"""Small pieces several test files use."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
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


class TwoInputs(nn.Module):
    """Two positional inputs: x of 4 features, y of 6."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(4, 3)
        self.b = nn.Linear(6, 3)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.a(x) + self.b(y)


class DataDependent(nn.Module):
    """Branches on a value: fake tensors have shapes but no values."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.lin(x)
        return y * 2 if y.sum() > 0 else -y


GOLDEN = Path(__file__).parent / "golden"


def check_golden(name: str, text: str, update: bool) -> None:
    """Compare ``text`` with ``tests/golden/<name>``; with ``--update-golden``, rewrite the file."""
    path = GOLDEN / name
    if update:
        path.write_text(text + "\n", encoding="utf-8")
    assert path.exists(), f"{path} is missing: run pytest with --update-golden to create it"
    assert text + "\n" == path.read_text(encoding="utf-8")


class Twice(nn.Module):
    """One 16x16 weight (1,024 B) applied twice to a 4x16 input (256 B)."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(16, 16, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(self.lin(x))
