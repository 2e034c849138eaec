"""torchtally.compat.thop: ``profile`` returns thop's ``(macs, params)`` counted by
torchtally, ``clever_format`` formats like thop's. Expected numbers are derived by hand."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

import torchtally as tt
from helpers import Fn
from seed_models import SharedConv, SmallCNN, TwoConvs, UnusedConv
from torchtally.compat.thop import clever_format, profile

ONE_CONV = 512 * 512 * 9  # a 3x3 conv, 1 -> 1 channel, padding 1, on 512x512: 9 MACs per output
SMALL_CNN_MACS = (
    16 * 32 * 32 * 3 * 9  # conv1: 16x32x32 outputs, 3*3*3 each
    + 32 * 16 * 16 * 16 * 9  # conv2: 32x16x16 outputs, 16*3*3 each
    + 2048 * 128  # fc1
    + 128 * 10  # fc2
)  # = 1,885,440


def x512() -> tuple[torch.Tensor]:
    return (torch.randn(1, 1, 512, 512),)


def test_the_seed_nets() -> None:
    assert profile(TwoConvs(), inputs=x512(), verbose=False) == (2 * ONE_CONV, 2 * 9)
    # One conv called twice: both calls' MACs, its 9 weights once.
    assert profile(SharedConv(), inputs=x512(), verbose=False) == (2 * ONE_CONV, 9)
    # conv2 never runs: no MACs, but its 9 weights are the model's (thop counted 9).
    assert profile(UnusedConv(), inputs=x512(), verbose=False) == (ONE_CONV, 18)
    assert profile(SmallCNN(), inputs=(torch.randn(1, 3, 32, 32),), verbose=False) == (SMALL_CNN_MACS, 268_650)


def test_resnet18_and_exact_ints() -> None:
    with torch.device("meta"):
        model = torchvision.models.resnet18()
    macs, params = profile(model, inputs=(torch.randn(1, 3, 224, 224, device="meta"),), verbose=False)
    # Convolutions (output elements x in-channels x kernel) and the head:
    # stem 64*112*112 x 3*7*7 = 118,013,952; layer1 4 x 64*56*56 x 64*9 = 462,422,016;
    # layers 2-4 each: first conv 57,802,752 + three 3x3 convs 3 x 115,605,504 + 1x1
    # downsample 6,422,528 = 411,041,792; fc 512*1000 = 512,000.
    assert macs == 118_013_952 + 462_422_016 + 3 * 411_041_792 + 512_000 == 1_814_073_344
    assert params == 11_689_512
    assert type(macs) is int and type(params) is int


def test_functional_matmul_counts() -> None:
    # thop sees modules only: x @ w in a forward is 0 there. 4x8 @ 8x16: 4*16 outputs x 8.
    model = Fn(lambda x, w: x @ w)
    assert profile(model, (torch.randn(4, 8), torch.randn(8, 16)), verbose=False) == (4 * 16 * 8, 0)
    assert profile(model, [torch.randn(4, 8), torch.randn(8, 16)], verbose=False)[0] == 512  # a list works too


def test_a_single_tensor_is_one_input() -> None:
    assert profile(nn.Linear(8, 4), torch.randn(2, 8), verbose=False) == (2 * 8 * 4, 8 * 4 + 4)


def count_outputs_x7(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
    """A thop rule: adds to module.total_ops (7 per output element)."""
    module.total_ops += torch.DoubleTensor([int(output.numel()) * 7])


def test_custom_ops_replace_the_modules_count(capsys: pytest.CaptureFixture[str]) -> None:
    model = SmallCNN()
    macs, params = profile(model, (torch.randn(1, 3, 32, 32),), custom_ops={nn.Linear: count_outputs_x7})
    # The convolutions as counted; fc1 and fc2 by the rule: 7 x 128 and 7 x 10 outputs.
    convs = 16 * 32 * 32 * 27 + 32 * 16 * 16 * 144
    assert macs == convs + 7 * 128 + 7 * 10
    assert params == 268_650
    assert capsys.readouterr().out == f"[INFO] Customize rule count_outputs_x7() {nn.Linear}.\n"
    assert all(not hasattr(m, "total_ops") for m in model.modules())  # thop's buffer is gone


def test_a_rule_on_a_sequential_adds_to_its_childrens_counts_as_in_thop() -> None:
    class Block(nn.Sequential):
        pass

    model = nn.Sequential(Block(nn.Linear(4, 4), nn.Linear(4, 4)), nn.Linear(4, 2))
    calls: list[tuple[tuple[int, ...], tuple[int, ...]]] = []

    def rule(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        calls.append((tuple(inputs[0].shape), tuple(output.shape)))
        assert inputs[0].device.type == "meta"  # shapes and dtypes, no values
        module.total_ops += 100

    macs, params, layers = profile(model, (torch.randn(3, 4),), custom_ops={Block: rule}, verbose=False, ret_layer_info=True)
    # thop looks inside Sequential/ModuleList even with a rule: the block's 100 plus its two
    # 3x4 @ 4x4 matmuls (2 x 48); the head 3 x 4*2 = 24.
    assert macs == 100 + 2 * 48 + 24
    assert params == 2 * (4 * 4 + 4) + 4 * 2 + 2
    assert calls == [((3, 4), (3, 4))]
    assert layers["0"][0] == 100 + 2 * 48 and layers["1"] == (24, 10, {})


def test_a_rule_on_a_leaf_replaces_its_count_and_one_on_the_model_adds_to_its_children() -> None:
    class Root(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.lin(x) @ torch.ones(4, 4)  # 3 x 4 x 4 = 48 MACs of the model's own

    def rule100(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        module.total_ops += 100

    x = torch.randn(3, 4)
    # The model's rule replaces its own 48 and adds the Linear's 3*4*4 = 48 (thop: 148).
    assert profile(Root(), (x,), custom_ops={Root: rule100}, verbose=False)[0] == 100 + 48
    # A leaf's rule replaces its count: 100 + the model's own 48.
    assert profile(Root(), (x,), custom_ops={nn.Linear: rule100}, verbose=False)[0] == 100 + 48


def test_a_failing_rule_is_a_clear_error() -> None:
    def needs_values(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        module.total_ops += float(output.sum())  # a meta tensor has no value

    model = SmallCNN()
    with pytest.raises(tt.TorchtallyError, match=r"needs_values.*'fc1' \(Linear\).*meta tensors"):
        profile(model, (torch.randn(1, 3, 32, 32),), custom_ops={nn.Linear: needs_values}, verbose=False)
    assert all(not hasattr(m, "total_ops") for m in model.modules())


def test_layer_info_nests_like_thops() -> None:
    macs, params, layers = profile(SmallCNN(), (torch.randn(1, 3, 32, 32),), verbose=False, ret_layer_info=True)
    assert layers == {
        "conv1": (16 * 32 * 32 * 27, 448, {}),
        "conv2": (32 * 16 * 16 * 144, 4_640, {}),
        "fc1": (2048 * 128, 262_272, {}),
        "fc2": (128 * 10, 1_290, {}),
    }
    assert macs == SMALL_CNN_MACS and params == 268_650


def test_verbose_warns_of_what_is_not_counted(capsys: pytest.CaptureFixture[str]) -> None:
    profile(UnusedConv(), x512())
    assert capsys.readouterr().out == "[INFO] Modules never called: conv2 (params counts their weights: 9 of 18 unused)\n"
    # A QR decomposition has no formula: its MACs are unknown, not 0.
    model = Fn(lambda x: torch.linalg.qr(x).Q)
    profile(model, (torch.randn(1, 3, 8, 8),), verbose=False, report_missing=True)
    assert capsys.readouterr().out == (
        "[WARN] Cannot find rule for aten.linalg_qr (1 call). Treat it as zero Macs: the MACs are a lower bound.\n"
    )
    profile(model, (torch.randn(1, 3, 8, 8),), verbose=False)
    profile(SmallCNN(), (torch.randn(1, 3, 32, 32),))  # everything counted: nothing to say
    assert capsys.readouterr().out == ""


def test_bad_arguments() -> None:
    with pytest.raises(tt.InputError, match="custom_ops"):
        profile(SmallCNN(), (torch.randn(1, 3, 32, 32),), custom_ops=[nn.Linear])  # type: ignore[arg-type]
    with pytest.raises(tt.InputError, match="nn.Module"):
        profile(lambda x: x, (torch.randn(1),))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1_814_073_344, "1.81G"),
        (11_689_512, "11.69M"),
        (2_500, "2.50K"),
        (999, "999.00B"),
        (1_000, "1000.00B"),  # thop's strict ">": a unit from above its power of 1000
        (1e6, "1000.00K"),
        (-5_000, "-5000.00B"),
        (3.2e12, "3.20T"),
        (0, "0.00B"),
    ],
)
def test_clever_format(value: float, text: str) -> None:
    assert clever_format(value) == text


def test_clever_format_of_several_numbers_and_a_format() -> None:
    assert clever_format([1_814_073_344, 11_689_512], "%.3f") == ("1.814G", "11.690M")
    assert clever_format([42]) == "42.00B"  # one number: a string, as thop
