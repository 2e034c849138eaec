"""Pooling and resampling, per element:

- max / average pooling over a window of k elements: k per output element (compares or adds;
  the average's one divide replaces the first add)
- adaptive pooling: 1 per input element (every input element enters one window)
- linear interpolation in d dimensions reads 2^d neighbours: 2^d multiplies and 2^d - 1
  adds per output element (linear 3, bilinear 7, trilinear 15); bicubic reads 16: 31.
  Nearest-neighbour resampling copies (0, listed with the data-movement operators).
- grid sampling: the same per output element (bilinear 7, trilinear 15, bicubic 31, nearest 0)
- antialiased bilinear / bicubic resampling (``antialias=True``) runs as PyTorch's CPU kernel
  does: one pass along the width, then one along the height (a pass only where the size
  changes). Output element i of a pass reads the x input elements its filter window covers
  (2 / 4 input elements wide, widened by the scale when shrinking): x multiplies and x - 1
  adds. The windows are found as the kernel finds them, so the edges count what they read."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from .registry import Cost, aten_ops, default_overloads, first_tensor, formula


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


def _scale(in_size: int, out_size: int, align_corners: bool, given: float | None) -> float:
    """Input elements per output element, as ``area_pixel_compute_scale`` works it out."""
    if align_corners:
        return (in_size - 1) / (out_size - 1) if out_size > 1 else 0.0
    return 1.0 / given if given is not None and given > 0 else in_size / out_size


def _pass_flops(in_size: int, out_size: int, align_corners: bool, given: float | None, width: int) -> int:
    """FLOPs of one antialiased pass along one line: per output, 2 x (elements read) - 1."""
    scale = _scale(in_size, out_size, align_corners, given)
    support = width / 2 * scale if scale >= 1.0 else width / 2  # the filter's half-width, in inputs
    most = math.ceil(support) * 2 + 1
    total = 0
    for i in range(out_size):
        center = scale * (i + 0.5)
        first = max(int(center - support + 0.5), 0)  # int() truncates toward zero, as C++'s cast does
        read = min(max(min(int(center + support + 0.5), in_size) - first, 0), most)
        total += 2 * read - 1 if read else 0
    return total


def _antialiased(width: int) -> Any:
    def cost(
        input: torch.Tensor, output_size: Sequence[int], align_corners: bool, scales_h: float | None = None,
        scales_w: float | None = None, *, out: Any, **kwargs: Any,
    ) -> Cost | None:  # fmt: skip
        if input.dim() != 4 or len(output_size) != 2:
            return None
        in_h, in_w = input.shape[-2], input.shape[-1]
        out_h, out_w = int(output_size[0]), int(output_size[1])
        planes = input.shape[0] * input.shape[1]
        flops = 0
        if out_w != in_w:  # along the width first: every row of the input
            flops += planes * in_h * _pass_flops(in_w, out_w, align_corners, scales_w, width)
        if out_h != in_h:  # then along the height: every column of that result
            flops += planes * out_w * _pass_flops(in_h, out_h, align_corners, scales_h, width)
        return Cost(flops=flops)

    cost.__name__ = f"antialiased_{width}_wide"
    return cost


formula(*default_overloads("_upsample_bilinear2d_aa"))(_antialiased(2))
formula(*default_overloads("_upsample_bicubic2d_aa"))(_antialiased(4))


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
