"""Pooling and resampling, per element:

- max / average pooling over a window of k elements: k per output element (compares or adds;
  the average's one divide replaces the first add)
- adaptive pooling: 1 per input element (every input element enters one window)
- linear interpolation in d dimensions reads 2^d neighbours: 2^d multiplies and 2^d - 1
  adds per output element (linear 3, bilinear 7, trilinear 15); bicubic reads 16: 31.
  Nearest-neighbour resampling copies (0, listed with the data-movement operators).
- grid sampling: the same per output element (bilinear 7, trilinear 15, bicubic 31, nearest 0)"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from .registry import Cost, aten_ops, first_tensor, formula


def _window(kernel_size: int | Sequence[int], dims: int) -> int:
    sizes = [kernel_size] if isinstance(kernel_size, int) else [int(size) for size in kernel_size]
    if len(sizes) == 1:  # one size for every spatial dimension
        sizes = sizes * dims
    return math.prod(sizes)


def _windowed(dims: int) -> Any:
    def cost(input: torch.Tensor, kernel_size: Any, *args: Any, out: Any, **kwargs: Any) -> Cost:
        result = first_tensor(out)
        assert result is not None
        return Cost(flops=result.numel() * _window(kernel_size, dims))

    cost.__name__ = f"pool{dims}d"
    return cost


for _dims in (1, 2, 3):
    formula(
        *aten_ops(
            f"max_pool{_dims}d",
            f"max_pool{_dims}d_with_indices",
            f"avg_pool{_dims}d",
            f"mkldnn_max_pool{_dims}d",
            f"quantized_max_pool{_dims}d",
        )
    )(_windowed(_dims))


@formula(
    *aten_ops(
        "_adaptive_avg_pool2d", "_adaptive_avg_pool3d", "adaptive_avg_pool1d", "adaptive_max_pool1d",
        "adaptive_max_pool2d", "adaptive_max_pool3d", "mkldnn_adaptive_avg_pool2d",
    )
)
def adaptive_pool(input: torch.Tensor, *args: Any, out: Any, **kwargs: Any) -> Cost:
    return Cost(flops=input.numel())


def _interpolation(points: int) -> Any:
    def cost(*args: Any, out: Any, **kwargs: Any) -> Cost:
        result = first_tensor(out)
        assert result is not None
        return Cost(flops=result.numel() * (2 * points - 1))

    cost.__name__ = f"interpolate_{points}_points"
    return cost


formula(*aten_ops("upsample_linear1d"))(_interpolation(2))
formula(*aten_ops("upsample_bilinear2d"))(_interpolation(4))
formula(*aten_ops("upsample_trilinear3d"))(_interpolation(8))
formula(*aten_ops("upsample_bicubic2d"))(_interpolation(16))


# grid_sampler interpolation_mode: 0 bilinear (trilinear in 3-D), 1 nearest, 2 bicubic.
_GRID_SAMPLE_POINTS = {2: {0: 4, 1: 0, 2: 16}, 3: {0: 8, 1: 0}}


def _grid_sample(dims: int) -> Any:
    def cost(input: torch.Tensor, grid: torch.Tensor, interpolation_mode: int, *args: Any, out: Any, **kwargs: Any) -> Cost | None:
        points = _GRID_SAMPLE_POINTS[dims].get(int(interpolation_mode))
        if points is None:
            return None
        result = first_tensor(out)
        assert result is not None
        return Cost(flops=result.numel() * (2 * points - 1) if points else 0)

    cost.__name__ = f"grid_sample_{dims}d"
    return cost


formula(*aten_ops("grid_sampler_2d", "_grid_sampler_2d_cpu_fallback"))(_grid_sample(2))
formula(*aten_ops("grid_sampler_3d"))(_grid_sample(3))
