"""The models of the seed documents (../shared/seeds), shared by several test files."""

from __future__ import annotations

import torch
from torch import nn


def conv3x3() -> nn.Conv2d:
    return nn.Conv2d(1, 1, kernel_size=3, stride=1, padding=1, bias=False)


class TwoConvs(nn.Module):
    """Seed 002: two 3x3 convs, 9 parameters each."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = conv3x3()
        self.conv2 = conv3x3()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.conv1(x))


class SharedConv(nn.Module):
    """Seed 002: one conv called twice (the 'virtual conv2' shares conv1's weights)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = conv3x3()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv1(self.conv1(x))


class UnusedConv(nn.Module):
    """Seed 002: conv2 is defined but never called."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = conv3x3()
        self.conv2 = conv3x3()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv1(x)


class SmallCNN(nn.Module):
    """Seed 003: 3x32x32 input, 268,650 parameters."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, kernel_size=3, stride=1, padding=1)
        self.conv2 = nn.Conv2d(16, 32, kernel_size=3, stride=1, padding=1)
        self.fc1 = nn.Linear(32 * 8 * 8, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = torch.max_pool2d(torch.relu(self.conv2(x)), 2)
        x = x.view(x.size(0), -1)
        x = torch.relu(self.fc1(x))
        return self.fc2(x)
