"""Per-operator cost formulas, checked through `tt.analyze` on tiny modules.

Every expected number is derived by hand in a comment from the convention stated in the
docstring of the matching `torchtally/formulas/` module (conv.py, matmul.py, pointwise.py,
norm.py, pool.py, reduction.py), never read back from torchtally's own output. The runs
use fake tensors, so large inputs (a 16000-sample waveform, a 16x112x112 video clip) cost
nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import torchtally as tt
from helpers import Fn


def numel(shape: tuple[int, ...]) -> int:
    n = 1
    for size in shape:
        n *= size
    return n


# --------------------------------------------------------------------------------------
# Convolution: MACs = out_elements x (C_in/groups) x prod(kernel) for a normal conv,
#              MACs = in_elements x (C_out/groups) x prod(kernel) for a transposed one.
# FLOPs = 2 x MACs; the bias is accumulated into the sum, so it changes neither.
# --------------------------------------------------------------------------------------

CONVS = [
    pytest.param(
        lambda bias: nn.Conv1d(1, 16, 3, bias=bias),
        (1, 1, 16000),
        # L_out = 16000 - 3 + 1 = 15998; out elements 16 * 15998 = 255,968; x (1/1) * 3
        255_968 * 3,
        id="conv1d-waveform",
    ),
    pytest.param(
        lambda bias: nn.Conv1d(2, 4, 3, stride=2, padding=1, dilation=2, bias=bias),
        (1, 2, 20),
        # L_out = floor((20 + 2*1 - 2*(3-1) - 1) / 2) + 1 = floor(17/2) + 1 = 9; out 4 * 9 = 36; x 2 * 3
        36 * 6,
        id="conv1d-stride-pad-dilation",
    ),
    pytest.param(
        lambda bias: nn.Conv2d(3, 8, 3, padding=1, bias=bias),
        (2, 3, 32, 32),
        # "same" size 32x32; out 2 * 8 * 32 * 32 = 16,384; x 3 * 3*3 = 27
        16_384 * 27,
        id="conv2d",
    ),
    pytest.param(
        lambda bias: nn.Conv2d(3, 4, 5, stride=2, padding=2, bias=bias),
        (1, 3, 15, 15),
        # H_out = floor((15 + 4 - 5) / 2) + 1 = 8; out 4 * 8 * 8 = 256; x 3 * 5*5 = 75
        256 * 75,
        id="conv2d-stride-padding",
    ),
    pytest.param(
        lambda bias: nn.Conv2d(3, 4, 3, dilation=2, bias=bias),
        (1, 3, 9, 9),
        # effective kernel 2*(3-1)+1 = 5: H_out = 9 - 5 + 1 = 5; out 4 * 5 * 5 = 100; x 3 * 9 = 27
        100 * 27,
        id="conv2d-dilation",
    ),
    pytest.param(
        lambda bias: nn.Conv3d(3, 4, 3, bias=bias),
        (1, 3, 16, 112, 112),
        # out 4 * 14 * 110 * 110 = 677,600; x 3 * 3*3*3 = 81
        677_600 * 81,
        id="conv3d-video",
    ),
    pytest.param(
        lambda bias: nn.Conv2d(8, 12, 3, groups=4, bias=bias),
        (1, 8, 10, 10),
        # out 12 * 8 * 8 = 768; x (8/4) * 3*3 = 18
        768 * 18,
        id="conv2d-grouped",
    ),
    pytest.param(
        lambda bias: nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=bias),
        (1, 8, 10, 10),
        # depthwise: out 8 * 10 * 10 = 800; x (8/8) * 9
        800 * 9,
        id="conv2d-depthwise",
    ),
    pytest.param(
        lambda bias: nn.Conv2d(4, 8, 3, groups=4, bias=bias),
        (1, 4, 6, 6),
        # depthwise with channel multiplier 2: out 8 * 4 * 4 = 128; x (4/4) * 9
        128 * 9,
        id="conv2d-depthwise-multiplier",
    ),
    pytest.param(
        lambda bias: nn.ConvTranspose1d(4, 6, 3, stride=2, bias=bias),
        (1, 4, 10),
        # transposed: in 4 * 10 = 40; x (6/1) * 3 = 18
        40 * 18,
        id="convtranspose1d",
    ),
    pytest.param(
        lambda bias: nn.ConvTranspose1d(6, 4, 4, stride=2, dilation=2, groups=2, bias=bias),
        (2, 6, 5),
        # transposed, grouped: in 2 * 6 * 5 = 60; x (4/2) * 4 = 8
        60 * 8,
        id="convtranspose1d-grouped-dilated",
    ),
    pytest.param(
        lambda bias: nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, bias=bias),
        (1, 4, 8, 8),
        # transposed: in 4 * 8 * 8 = 256; x 6 * 3*3 = 54 (padding only crops the output)
        256 * 54,
        id="convtranspose2d-stride-padding",
    ),
    pytest.param(
        lambda bias: nn.ConvTranspose2d(4, 6, 3, groups=2, bias=bias),
        (1, 4, 8, 8),
        # transposed, grouped: in 256; x (6/2) * 9 = 27
        256 * 27,
        id="convtranspose2d-grouped",
    ),
    pytest.param(
        lambda bias: nn.ConvTranspose3d(2, 3, 2, stride=2, bias=bias),
        (1, 2, 4, 4, 4),
        # transposed: in 2 * 4*4*4 = 128; x 3 * 2*2*2 = 24
        128 * 24,
        id="convtranspose3d",
    ),
]


@pytest.mark.parametrize("bias", [False, True], ids=["no-bias", "bias"])
@pytest.mark.parametrize("make,shape,macs", CONVS)
def test_convolution(make: Callable[[bool], nn.Module], shape: tuple[int, ...], macs: int, bias: bool) -> None:
    report = tt.analyze(make(bias), shape)
    # The same hand value with and without bias: bias additions are not MACs.
    assert report.total_macs == macs
    assert report.total_flops == 2 * macs
    assert report.operators["aten.convolution"].calls == 1
    assert report.uncounted_ops == {}


def test_functional_conv_same_padding_with_dilation() -> None:
    # padding="same" keeps 9x9; out 4 * 9 * 9 = 324; x 3 * 3*3 = 27 -> 8,748
    model = Fn(lambda x, w: F.conv2d(x, w, padding="same", dilation=2))
    report = tt.analyze(model, [(1, 3, 9, 9), (4, 3, 3, 3)])
    assert report.total_macs == 324 * 27
    assert report.total_flops == 2 * 324 * 27


# --------------------------------------------------------------------------------------
# Linear: MACs = rows x out_features x in_features (rows = all leading dims). With a bias
# the kernel is addmm (bias accumulated into, not counted), without it mm.
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "shape,bias,op,macs",
    [
        ((2, 8), True, "aten.addmm", 2 * 4 * 8),  # 2 rows x 4 out x 8 in = 64
        ((2, 8), False, "aten.mm", 2 * 4 * 8),
        ((2, 3, 8), True, "aten.addmm", 6 * 4 * 8),  # 2*3 = 6 rows -> 192
        ((2, 3, 8), False, "aten.mm", 6 * 4 * 8),
        ((2, 3, 5, 8), True, "aten.addmm", 30 * 4 * 8),  # 2*3*5 = 30 rows -> 960
        ((8,), True, "aten.addmm", 1 * 4 * 8),  # a single vector: 32
        ((8,), False, "aten.mm", 1 * 4 * 8),
    ],
)
def test_linear(shape: tuple[int, ...], bias: bool, op: str, macs: int) -> None:
    report = tt.analyze(nn.Linear(8, 4, bias=bias), shape)
    assert report.total_macs == macs
    assert report.total_flops == 2 * macs
    assert report.operators[op].macs == macs
    assert report.uncounted_ops == {}


def test_bilinear() -> None:
    # nn.Bilinear runs as aten._trilinear: y[b, o] = sum over i, j of x1[b, i] W[o, i, j] x2[b, j],
    # one MAC per (i, j) term: batch x out x in1 x in2 = 2 * 7 * 5 * 6 = 420 MACs.
    report = tt.analyze(nn.Bilinear(5, 6, 7), [(2, 5), (2, 6)])
    assert report.uncounted_ops == {}
    assert report.operators["aten._trilinear"].macs == 2 * 7 * 5 * 6
    # and the bias addition, 1 FLOP per output element: 2 * 7 = 14.
    assert report.operators["aten.add"].flops == 2 * 7


@pytest.mark.parametrize("mode,per_output", [("bilinear", 7), ("nearest", 0), ("bicubic", 31)])
def test_grid_sample(mode: str, per_output: int) -> None:
    # output (1, 3, 4, 4): each element interpolates 4 (bilinear) or 16 (bicubic) neighbours,
    # n multiplies and n - 1 adds; nearest copies one value.
    model = Fn(lambda x, grid: F.grid_sample(x, grid, mode=mode, align_corners=False))
    report = tt.analyze(model, [(1, 3, 8, 8), (1, 4, 4, 2)])
    assert report.operators["aten.grid_sampler_2d"].flops == 3 * 4 * 4 * per_output


# --------------------------------------------------------------------------------------
# Vector work (pointwise.py): 1 FLOP per output element for any floating-point op.
# --------------------------------------------------------------------------------------

ACTIVATION_SHAPE = (2, 3, 5, 7)  # 210 elements


@pytest.mark.parametrize(
    "module",
    [
        nn.ReLU(),
        nn.ReLU(inplace=True),
        nn.GELU(),
        nn.GELU(approximate="tanh"),
        nn.SiLU(),
        nn.Sigmoid(),
        nn.Tanh(),
        nn.Hardswish(),
        nn.Hardswish(inplace=True),
    ],
    ids=["relu", "relu-inplace", "gelu", "gelu-tanh", "silu", "sigmoid", "tanh", "hardswish", "hardswish-inplace"],
)
def test_activation_is_one_flop_per_element(module: nn.Module) -> None:
    report = tt.analyze(module, ACTIVATION_SHAPE)
    assert report.total_flops == 210  # 2*3*5*7 output elements x 1
    assert report.total_macs == 0
    assert report.uncounted_ops == {}


@pytest.mark.parametrize(
    "fn,shapes,flops",
    [
        (torch.add, [(2, 3, 4), (2, 3, 4)], 24),  # 2*3*4 output elements
        (torch.add, [(2, 3, 4), (4,)], 24),  # broadcast: output (2,3,4)
        (torch.add, [(3, 1), (1, 4)], 12),  # broadcast both ways: output (3,4) = 12
        (torch.mul, [(5, 1, 4), (3, 1)], 60),  # output (5,3,4) = 60, more than either input
        (lambda x: x * 2.0, [(4, 5)], 20),  # tensor x scalar: 20 output elements
        (lambda x, y: x.add_(y), [(4, 5), (5,)], 20),  # in place: 20 elements written
    ],
    ids=["add", "add-broadcast", "add-outer-broadcast", "mul-broadcast", "mul-scalar", "add-inplace"],
)
def test_elementwise_binary_counts_output_elements(fn: Callable[..., Any], shapes: list[tuple[int, ...]], flops: int) -> None:
    report = tt.analyze(Fn(fn), shapes)
    assert report.total_flops == flops
    assert report.total_macs == 0


@pytest.mark.parametrize("dtype", [torch.long, torch.int32, torch.bool])
def test_integer_only_elementwise_and_reductions_cost_nothing(dtype: torch.dtype) -> None:
    # Integer/boolean arithmetic is not floating-point work: 0 FLOPs.
    model = Fn(lambda x: ((x * 2 + 1).sum(), (x == 0).sum(), torch.maximum(x, x)))
    report = tt.analyze(model, (4, 5), dtypes=[dtype])
    assert report.total_flops == 0
    assert report.total_macs == 0
    assert report.uncounted_ops == {}


def test_same_elementwise_work_on_floats_is_counted() -> None:
    # The control for the integer test above, on a (4,5) float input (20 elements):
    # x*2: 20, +1: 20, .sum(): 20 (1 per input); x == 0: 20 (compare, float input), .sum() of a
    # bool tensor: 0; maximum: 20 -> 100
    model = Fn(lambda x: ((x * 2 + 1).sum(), (x == 0).sum(), torch.maximum(x, x)))
    report = tt.analyze(model, (4, 5))
    assert report.total_flops == 100


# --------------------------------------------------------------------------------------
# Normalisation (norm.py), per input element: statistics 4 (when computed), normalise 2,
# +1 for the weight, +1 for the bias. Softmax and log-softmax: 5.
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make,shape,mode,per_element",
    [
        (lambda: nn.BatchNorm2d(3), (2, 3, 4, 4), "eval", 2 + 1 + 1),  # running stats: no statistics
        (lambda: nn.BatchNorm2d(3, affine=False), (2, 3, 4, 4), "eval", 2),
        # train: batch statistics too; num_batches_tracked += 1 is integer work (0)
        (lambda: nn.BatchNorm2d(3), (2, 3, 4, 4), "train", 4 + 2 + 1 + 1),
        (lambda: nn.BatchNorm2d(3, affine=False), (2, 3, 4, 4), "train", 4 + 2),
        # without running stats, eval mode normalises with batch statistics as well
        (lambda: nn.BatchNorm2d(3, track_running_stats=False), (2, 3, 4, 4), "eval", 4 + 2 + 1 + 1),
        (lambda: nn.BatchNorm1d(3), (5, 3), "eval", 2 + 1 + 1),
        (lambda: nn.LayerNorm(4), (2, 3, 4), "eval", 4 + 2 + 1 + 1),
        (lambda: nn.LayerNorm(4, bias=False), (2, 3, 4), "eval", 4 + 2 + 1),
        (lambda: nn.LayerNorm(4, elementwise_affine=False), (2, 3, 4), "eval", 4 + 2),
        (lambda: nn.LayerNorm((3, 4)), (2, 3, 4), "eval", 4 + 2 + 1 + 1),
        (lambda: nn.GroupNorm(2, 4), (2, 4, 3, 3), "eval", 4 + 2 + 1 + 1),
        (lambda: nn.GroupNorm(2, 4, affine=False), (2, 4, 3, 3), "eval", 4 + 2),
    ],
    ids=[
        "bn-eval", "bn-eval-no-affine", "bn-train", "bn-train-no-affine", "bn-no-running-stats",
        "bn1d-eval", "ln", "ln-no-bias", "ln-no-affine", "ln-2d", "gn", "gn-no-affine",
    ],
)
def test_normalization(make: Callable[[], nn.Module], shape: tuple[int, ...], mode: str, per_element: int) -> None:
    report = tt.analyze(make(), shape, mode=mode)
    assert report.total_flops == per_element * numel(shape)
    assert report.total_macs == 0
    assert report.uncounted_ops == {}


@pytest.mark.parametrize(
    "module",
    [nn.Softmax(dim=-1), nn.Softmax(dim=1), nn.LogSoftmax(dim=-1), Fn(lambda x: F.softmax(x, dim=0))],
    ids=["softmax-last", "softmax-dim1", "log-softmax", "F.softmax-dim0"],
)
def test_softmax_is_five_flops_per_element(module: nn.Module) -> None:
    report = tt.analyze(module, (2, 3, 4))
    assert report.total_flops == 5 * 24  # max, subtract, exp, sum, divide (or log) per element
    assert report.total_macs == 0


# --------------------------------------------------------------------------------------
# Pooling and resampling (pool.py): window size per output element; adaptive pooling 1 per
# input element; linear interpolation 2^(d+1) - 1 per output element, nearest 0.
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "module,shape,flops",
    [
        (nn.MaxPool2d(2), (1, 3, 8, 8), 3 * 4 * 4 * 4),  # out 3x4x4 = 48, window 2x2 = 4 -> 192
        (nn.MaxPool2d(3, stride=2, padding=1), (1, 2, 9, 9), 2 * 5 * 5 * 9),  # out (9+2-3)/2+1 = 5 -> 450
        (nn.AvgPool2d(3, stride=1), (1, 3, 8, 8), 3 * 6 * 6 * 9),  # out 3x6x6 = 108, window 9 -> 972
        (nn.AvgPool2d((2, 3)), (1, 3, 6, 6), 3 * 3 * 2 * 6),  # out 3x3x2 = 18, window 2x3 = 6 -> 108
        (nn.MaxPool1d(3), (1, 3, 12), 3 * 4 * 3),  # out 3x4 = 12, window 3 -> 36
        (nn.AvgPool1d(3), (1, 3, 12), 3 * 4 * 3),
        (nn.MaxPool3d(2), (1, 3, 4, 4, 4), 3 * 8 * 8),  # out 3x2x2x2 = 24, window 8 -> 192
        (nn.AdaptiveAvgPool2d(1), (1, 3, 8, 8), 3 * 64),  # 1 per input element: 192
        (nn.AdaptiveAvgPool2d(2), (1, 3, 8, 8), 3 * 64),
        (nn.AdaptiveMaxPool2d(2), (1, 3, 8, 8), 3 * 64),
    ],
    ids=[
        "maxpool2d", "maxpool2d-stride-pad", "avgpool2d", "avgpool2d-rect", "maxpool1d", "avgpool1d",
        "maxpool3d", "adaptive-avg-1", "adaptive-avg-2", "adaptive-max-2",
    ],
)
def test_pooling(module: nn.Module, shape: tuple[int, ...], flops: int) -> None:
    report = tt.analyze(module, shape)
    assert report.total_flops == flops
    assert report.total_macs == 0
    assert report.uncounted_ops == {}


@pytest.mark.parametrize(
    "mode,shape,out_elements,per_output",
    [
        ("bilinear", (1, 3, 8, 8), 3 * 16 * 16, 7),  # 4 neighbours: 4 multiplies + 3 adds
        ("nearest", (1, 3, 8, 8), 3 * 16 * 16, 0),  # a copy
        ("nearest-exact", (1, 3, 8, 8), 3 * 16 * 16, 0),
        ("linear", (1, 3, 4), 3 * 8, 3),  # 2 neighbours: 2 multiplies + 1 add
        ("trilinear", (1, 3, 4, 4, 4), 3 * 8 * 8 * 8, 15),  # 8 neighbours: 8 + 7
        ("bicubic", (1, 3, 4, 4), 3 * 8 * 8, 31),  # 16 neighbours: 16 + 15
    ],
)
def test_upsample(mode: str, shape: tuple[int, ...], out_elements: int, per_output: int) -> None:
    report = tt.analyze(nn.Upsample(scale_factor=2, mode=mode), shape)
    assert report.total_flops == per_output * out_elements
    assert report.total_macs == 0
    assert report.uncounted_ops == {}


# Antialiased resampling (pool.py): a pass along the width, then one along the height; each
# output element of a pass reads the input elements of its filter window (x multiplies, x - 1
# adds). Windows by hand: output i's centre is scale * (i + 0.5) in input coordinates, it
# reads inputs [int(centre - s + 0.5), int(centre + s + 0.5)) clipped to the input, with s
# the half-width (1 bilinear, 2 bicubic; times the scale when shrinking).


@pytest.mark.parametrize(
    "mode,shape,size,flops",
    [
        # 8 -> 4, scale 2, s = 4: centres 1, 3, 5, 7 read [0,5) [0,7) [1,8) [3,8): 5, 7, 7, 5
        # inputs, 9 + 13 + 13 + 9 = 44 per line. Width: 2 planes x 8 rows; height: 2 x 4 columns.
        ("bicubic", (1, 2, 8, 8), (4, 4), 2 * 8 * 44 + 2 * 4 * 44),
        # 4 -> 8 along the width only, scale 0.5, s = 1: centres 0.25, 0.75, ..., 3.75 read
        # 1, 2, 2, 2, 2, 2, 2, 1 inputs (the edges lose a neighbour): 1 + 6 x 3 + 1 = 20 per row;
        # the height is unchanged: no second pass. 3 rows.
        ("bilinear", (1, 1, 3, 4), (3, 8), 3 * 20),
    ],
)
def test_antialiased_resampling(mode: str, shape: tuple[int, ...], size: tuple[int, int], flops: int) -> None:
    report = tt.analyze(Fn(lambda x: F.interpolate(x, size=size, mode=mode, antialias=True)), shape)
    assert report.total_flops == flops
    assert report.total_macs == 0
    assert report.uncounted_ops == {}


def _bicubic_windows(size: int, out: int) -> list[tuple[int, int, float]]:
    """(first input, inputs read, centre) per output, the rule of the comment above."""
    scale = size / out
    half = 2 * max(scale, 1.0)
    found = []
    for i in range(out):
        centre = scale * (i + 0.5)
        first = max(int(centre - half + 0.5), 0)
        found.append((first, min(int(centre + half + 0.5), size) - first, centre))
    return found


def test_antialiased_windows_are_the_kernels() -> None:
    """The windows of the rule above, weighted by the antialias bicubic filter (a = -0.5),
    give PyTorch's own resampled values: so they are the elements the kernel reads. The
    FLOPs follow from them (13 -> 5 along the width: one pass)."""

    def cubic(x: float) -> float:
        x, a = abs(x), -0.5
        return ((a + 2) * x - (a + 3)) * x * x + 1 if x < 1 else ((((x - 5) * x + 8) * x - 4) * a if x < 2 else 0.0)

    line = torch.randn(13, dtype=torch.float64)
    windows = _bicubic_windows(13, 5)
    mine = []
    for first, read, centre in windows:
        weights = [cubic((first + j - centre + 0.5) * 5 / 13) for j in range(read)]
        mine.append(sum(w * float(line[first + j]) for j, w in enumerate(weights)) / sum(weights))
    theirs = F.interpolate(line.view(1, 1, 1, 13), size=(1, 5), mode="bicubic", antialias=True).view(5)
    assert torch.allclose(theirs, torch.tensor(mine, dtype=torch.float64), atol=1e-12)
    report = tt.analyze(Fn(lambda x: F.interpolate(x, size=(1, 5), mode="bicubic", antialias=True)), (1, 1, 1, 13))
    assert report.total_flops == sum(2 * read - 1 for _, read, _ in windows)


# --------------------------------------------------------------------------------------
# Linear algebra (linalg.py, pointwise.py).
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "a,b,kwargs,macs,flops",
    [
        # 3 right-hand sides through a 5x5 triangle: 3 x (5*4/2) MACs; + 3 x 5 divides
        ((5, 5), (5, 3), {"upper": False}, 3 * 10, 2 * 30 + 15),
        # unit diagonal: no divides
        ((5, 5), (5, 3), {"upper": True, "unitriangular": True}, 3 * 10, 2 * 30),
        # X A = B, batched: 2 x 3 rows of B are the right-hand sides, 4x4 triangles: 6 x 6 MACs
        ((2, 4, 4), (2, 3, 4), {"upper": True, "left": False}, 6 * 6, 2 * 36 + 6 * 4),
    ],
)
def test_solve_triangular(a: tuple[int, ...], b: tuple[int, ...], kwargs: dict[str, Any], macs: int, flops: int) -> None:
    report = tt.analyze(Fn(lambda x, y: torch.linalg.solve_triangular(x, y, **kwargs)), [a, b])
    assert (report.total_macs, report.total_flops) == (macs, flops)
    assert report.uncounted_ops == {}


def test_triangular_solve() -> None:
    # the older spelling, B first: 2 right-hand sides, 6x6 triangle: 2 x 15 MACs, 2 x 6 divides
    report = tt.analyze(Fn(lambda b, a: torch.triangular_solve(b, a).solution), [(6, 2), (6, 6)])
    assert (report.total_macs, report.total_flops) == (2 * 15, 2 * 30 + 12)


def test_polar() -> None:
    # abs * cos(angle) + i abs * sin(angle): cos, sin and two multiplies per element, 4 x 3 x 5
    report = tt.analyze(Fn(torch.polar), [(3, 5), (3, 5)])
    assert (report.total_macs, report.total_flops) == (0, 4 * 15)
    assert report.uncounted_ops == {}


# --------------------------------------------------------------------------------------
# Reductions (reduction.py): 1 FLOP per input element.
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fn",
    [
        lambda x: x.sum(),
        lambda x: x.sum(dim=1),
        lambda x: x.mean(),
        lambda x: x.mean(dim=(2, 3), keepdim=True),
        lambda x: x.amax(dim=-1),
    ],
    ids=["sum", "sum-dim", "mean", "mean-dims", "amax"],
)
def test_reduction_is_one_flop_per_input_element(fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
    report = tt.analyze(Fn(fn), (2, 3, 4, 5))
    assert report.total_flops == 120  # 2*3*4*5 input elements, whatever the output size
    assert report.total_macs == 0


# --------------------------------------------------------------------------------------
# Uncounted operators and user formulas.
# --------------------------------------------------------------------------------------


@torch.library.custom_op("torchtally_tests::scale", mutates_args=())
def scale(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """An op torchtally knows nothing about: x * w."""
    return x * w


@scale.register_fake
def _(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return torch.empty_like(x)


SCALE = torch.ops.torchtally_tests.scale
SCALE_NAME = "torchtally_tests.scale"  # how a report names the operator


class ScaleTwice(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return scale(scale(x, self.w), self.w)


def scale_cost(x: torch.Tensor, w: torch.Tensor, *, out: torch.Tensor) -> tt.Cost:
    """A user's formula for the custom op: 1 MAC and 2 FLOPs per output element."""
    return tt.Cost(macs=out.numel(), flops=2 * out.numel())


def test_op_without_formula_is_listed_with_its_calls() -> None:
    report = tt.analyze(ScaleTwice(), (3, 5))
    assert report.uncounted_ops == {SCALE_NAME: 2}
    assert report.operators[SCALE_NAME].calls == 2


def test_aten_op_without_formula_is_listed() -> None:
    # a QR decomposition: no formula yet
    model = Fn(lambda x: torch.linalg.qr(x).Q)
    report = tt.analyze(model, (1, 3, 8, 8))
    assert report.uncounted_ops == {"aten.linalg_qr": 1}


@pytest.mark.parametrize(
    "op", ["torchtally_tests::scale", SCALE, SCALE.default], ids=["string", "packet", "overload"]
)
def test_registered_formula_is_used(op: Any) -> None:
    seen: list[tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]] = []

    def cost(x: torch.Tensor, w: torch.Tensor, *, out: torch.Tensor) -> tt.Cost:
        seen.append((tuple(x.shape), tuple(w.shape), tuple(out.shape)))
        return scale_cost(x, w, out=out)

    tt.register_formula(op, cost)
    try:
        report = tt.analyze(ScaleTwice(), (3, 5))
    finally:
        tt.unregister_formula(op)
    # Two calls of 3*5 = 15 output elements: 30 MACs, 60 FLOPs.
    assert report.total_macs == 30
    assert report.total_flops == 60
    assert report.uncounted_ops == {}
    # Called as fn(*args, out=result): the op's own arguments and its result.
    assert seen == [((3, 5), (5,), (3, 5))] * 2
    # Unregistered: uncounted again.
    assert tt.analyze(ScaleTwice(), (3, 5)).uncounted_ops == {SCALE_NAME: 2}


def test_register_formula_as_decorator() -> None:
    try:

        @tt.register_formula(SCALE)
        def cost(x: torch.Tensor, w: torch.Tensor, *, out: torch.Tensor) -> tt.Cost:
            return scale_cost(x, w, out=out)

        report = tt.analyze(ScaleTwice(), (4, 5))
    finally:
        tt.unregister_formula(SCALE)
    assert report.total_macs == 2 * 20  # two calls, 4*5 = 20 elements each
    assert report.uncounted_ops == {}


def test_per_call_formula_is_used_only_for_that_call() -> None:
    report = tt.analyze(ScaleTwice(), (3, 5), formulas={SCALE: scale_cost})
    assert (report.total_macs, report.total_flops) == (30, 60)  # 2 calls x 15 elements
    assert report.uncounted_ops == {}
    assert tt.analyze(ScaleTwice(), (3, 5)).uncounted_ops == {SCALE_NAME: 2}


def test_per_call_formula_overrides_a_builtin() -> None:
    report = tt.analyze(nn.ReLU(), (2, 3), formulas={torch.ops.aten.relu: lambda x, *, out: tt.Cost(flops=3 * out.numel())})
    assert report.total_flops == 3 * 6  # the override's 3 per element, not the built-in 1


def test_formula_returning_none_means_uncounted() -> None:
    report = tt.analyze(nn.ReLU(), (2, 3), formulas={torch.ops.aten.relu: lambda *args, out, **kwargs: None})
    assert report.uncounted_ops == {"aten.relu": 1}
    assert report.total_flops == 0


def test_formula_that_raises_gives_formula_error() -> None:
    def broken(x: torch.Tensor, w: torch.Tensor, *, out: torch.Tensor) -> tt.Cost:
        raise ZeroDivisionError("bad formula")

    with pytest.raises(tt.FormulaError) as per_call:
        tt.analyze(ScaleTwice(), (3, 5), formulas={SCALE: broken})
    assert isinstance(per_call.value.__cause__, ZeroDivisionError)

    tt.register_formula(SCALE, broken)
    try:
        with pytest.raises(tt.FormulaError):
            tt.analyze(ScaleTwice(), (3, 5))
    finally:
        tt.unregister_formula(SCALE)


# --------------------------------------------------------------------------------------
# Grouped (mixture-of-experts) products, losses, scatters with a reduction, fused ops.
# --------------------------------------------------------------------------------------


def test_grouped_mm_routes_tokens_to_experts() -> None:
    # 6 tokens of width 16 go to 3 experts (2 tokens each), each expert maps 16 -> 8:
    # every token row costs 16 x 8 MACs, whichever expert it meets: 6 * 16 * 8.
    # (the kernel wants rows of a multiple of 16 bytes: 8 bfloat16 values at least)
    tokens = torch.randn(6, 16, dtype=torch.bfloat16)
    experts = torch.randn(3, 16, 8, dtype=torch.bfloat16)
    offsets = torch.tensor([2, 4, 6], dtype=torch.int32)
    model = Fn(lambda x, w, offs: torch._grouped_mm(x, w, offs=offs))
    report = tt.analyze(model, input_data=(tokens, experts, offsets))
    assert report.operators["aten._grouped_mm"].macs == 6 * 16 * 8
    assert report.uncounted_ops == {}


@pytest.mark.parametrize(
    "loss,per_element",
    [
        (nn.MSELoss(), 2 + 1),  # subtract, square; + the mean
        (nn.MSELoss(reduction="none"), 2),
        (nn.L1Loss(reduction="sum"), 2 + 1),
        (nn.SmoothL1Loss(), 4 + 1),
        (nn.BCEWithLogitsLoss(), 7 + 1),
    ],
)
def test_elementwise_losses(loss: nn.Module, per_element: int) -> None:
    report = tt.analyze(loss, [(4, 5), (4, 5)])
    assert report.total_flops == 4 * 5 * per_element
    assert report.uncounted_ops == {}


def test_cross_entropy_is_log_softmax_and_nll() -> None:
    # log-softmax over 4 x 10 logits: 5 per element; NLL picks 4 targets and averages them: 1 each
    report = tt.analyze(nn.CrossEntropyLoss(), [(4, 10), (4,)], dtypes=[torch.float32, torch.long])
    assert report.total_flops == 4 * 10 * 5 + 4
    assert report.uncounted_ops == {}


def test_scatter_counts_the_scattered_elements() -> None:
    # only the index's 3 positions of src are added, however large src is
    index = torch.tensor([[0, 1, 0]])
    add = Fn(lambda x, src: x.scatter_add(1, index, src))
    assert tt.analyze(add, [(1, 4), (6, 16)]).total_flops == 3
    multiply = Fn(lambda x, src: x.scatter(1, index, src, reduce="multiply"))
    assert tt.analyze(multiply, [(1, 4), (6, 16)]).total_flops == 3


def test_fused_addmm_activation() -> None:
    # (2 x 3) @ (3 x 4): 2*4 results of 3 MACs; then GELU on the 8 results: 1 FLOP each
    model = Fn(lambda b, x, w: torch._addmm_activation(b, x, w, use_gelu=True))
    report = tt.analyze(model, [(4,), (2, 3), (3, 4)])
    assert report.total_macs == 2 * 4 * 3
    assert report.total_flops == 2 * (2 * 4 * 3) + 2 * 4


def test_boolean_reductions_are_free_and_known() -> None:
    model = Fn(lambda x: ((x > 0).any(), (x > 0).all(), torch.count_nonzero(x > 0)))
    report = tt.analyze(model, (3, 5))
    assert report.uncounted_ops == {}
    assert report.total_flops == 3 * (3 * 5)  # only the three float comparisons x > 0
