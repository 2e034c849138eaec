"""torchtally.compat.torchsummary: torchsummary's table, character for character, with
torchtally's numbers. Every expected number is derived by hand in a comment; the layouts
are also kept as golden files (rewritten only with ``pytest --update-golden``)."""

from __future__ import annotations

import re
import sys
import types
from collections.abc import Callable
from typing import Any

import pytest
import torch
import torchvision
from torch import nn

import torchtally as tt
from helpers import TwoInputs, check_golden
from seed_models import SharedConv, SmallCNN, TwoConvs, UnusedConv
from torchtally.compat import torchsummary

MB = 2**20


def printed(capsys: pytest.CaptureFixture[str], call: Callable[[], Any]) -> tuple[str, Any]:
    """What ``call`` printed (without the final newline) and what it returned."""
    capsys.readouterr()
    result = call()
    return capsys.readouterr().out.removesuffix("\n"), result


def rows(text: str) -> list[tuple[str, str, str]]:
    """(label, output shape, Param #) of every table row."""
    found = re.findall(r"^ *(\S+-\d+) +(\[.*\]|--) +([\d,]+)$", text, flags=re.MULTILINE)
    return [(label, shape, params) for label, shape, params in found]


def footer(text: str) -> dict[str, str]:
    return dict(re.findall(r"^([A-Z][^:\n]*): (.+)$", text, flags=re.MULTILINE))


def meta_resnet18() -> nn.Module:
    with torch.device("meta"):
        return torchvision.models.resnet18()


# Seed 002's torchsummary output for its two-conv net on a 1x512x512 input, as printed there:
# the one case where torchsummary's numbers are right, so ours must be the same text.
SEED_002_TWO_CONVS = """\
----------------------------------------------------------------
        Layer (type)               Output Shape         Param #
================================================================
            Conv2d-1          [-1, 1, 512, 512]               9
            Conv2d-2          [-1, 1, 512, 512]               9
================================================================
Total params: 18
Trainable params: 18
Non-trainable params: 0
----------------------------------------------------------------
Input size (MB): 1.00
Forward/backward pass size (MB): 4.00
Params size (MB): 0.00
Estimated Total Size (MB): 5.00
----------------------------------------------------------------"""


def test_two_convs_print_seed_002s_table(capsys: pytest.CaptureFixture[str]) -> None:
    # Input: 512*512 float32 = 1 MiB. Forward/backward: 2 x (two outputs of 1 MiB) = 4 MiB.
    # Params: 18 x 4 bytes = 72 B -> 0.00. Total: 1 + 4 + 0.00007 -> 5.00.
    text, report = printed(capsys, lambda: torchsummary.summary(TwoConvs(), (1, 512, 512), device="cpu"))
    assert text == SEED_002_TWO_CONVS
    assert isinstance(report, tt.ModelReport)


def test_a_conv_called_twice_counts_its_weights_once(capsys: pytest.CaptureFixture[str]) -> None:
    text, _ = printed(capsys, lambda: torchsummary.summary(SharedConv(), (1, 512, 512)))
    # Two calls, two rows (torchsummary's); the 9 weights on the first only, so the column
    # adds up to Total params: 9 (torchsummary printed 9, 9 and 18).
    assert rows(text) == [("Conv2d-1", "[-1, 1, 512, 512]", "9"), ("Conv2d-2", "[-1, 1, 512, 512]", "0")]
    sizes = footer(text)
    assert sizes["Total params"] == "9"
    assert sizes["Trainable params"] == "9"
    # Both calls' outputs count: 2 x (2 x 1 MiB) = 4 MiB; total 1 + 4 + 0 = 5.
    assert sizes["Forward/backward pass size (MB)"] == "4.00"
    assert sizes["Estimated Total Size (MB)"] == "5.00"
    assert "Used params" not in text  # nothing unused or shared: no notes under the table


def test_an_unused_layer_is_in_the_total_and_named(capsys: pytest.CaptureFixture[str]) -> None:
    text, report = printed(capsys, lambda: torchsummary.summary(UnusedConv(), (1, 512, 512)))
    assert rows(text) == [("Conv2d-1", "[-1, 1, 512, 512]", "9")]  # conv2 never ran: no row
    sizes = footer(text)
    # The model has 2 x 9 weights; torchsummary said 9, forgetting conv2's.
    assert sizes["Total params"] == "18"
    # One output of 1 MiB, x2 for its gradient; total 1 + 2 + 0 = 3.
    assert sizes["Forward/backward pass size (MB)"] == "2.00"
    assert sizes["Estimated Total Size (MB)"] == "3.00"
    # The notes: 9 used (conv1), 9 unused (conv2), and its name.
    assert sizes["Used params"] == "9 (read by an operator during the run)"
    assert sizes["Unused params"] == "9"
    assert sizes["Modules never called"] == "conv2"
    assert text.endswith("Modules never called: conv2\n" + "-" * 64)
    assert report.unused_params == 9


def test_seed_003_cnn(capsys: pytest.CaptureFixture[str], update_golden: bool) -> None:
    text, _ = printed(capsys, lambda: torchsummary.summary(SmallCNN(), input_size=(3, 32, 32)))
    # Seed 003: Hout = (32 + 2*1 - 3)/1 + 1 = 32, pooled to 16, 8; params (in*3*3 + 1)*out and (in + 1)*out.
    assert rows(text) == [
        ("Conv2d-1", "[-1, 16, 32, 32]", "448"),  # (3*3*3 + 1) * 16
        ("Conv2d-2", "[-1, 32, 16, 16]", "4,640"),  # (16*3*3 + 1) * 32
        ("Linear-3", "[-1, 128]", "262,272"),  # (32*8*8 + 1) * 128
        ("Linear-4", "[-1, 10]", "1,290"),  # (128 + 1) * 10
    ]
    sizes = footer(text)
    assert sizes["Total params"] == "268,650"
    # Input 3*32*32*4 = 12,288 B = 0.0117 MB. Outputs 16*32*32 + 32*16*16 + 128 + 10 = 24,714
    # elements = 98,856 B, x2 = 197,712 B = 0.1886 MB. Params 268,650*4 = 1,074,600 B = 1.0248 MB.
    # Total 1,284,600 B = 1.2251 MB.
    assert (sizes["Input size (MB)"], sizes["Forward/backward pass size (MB)"]) == ("0.01", "0.19")
    assert (sizes["Params size (MB)"], sizes["Estimated Total Size (MB)"]) == ("1.02", "1.23")
    check_golden("compat_torchsummary_small_cnn.txt", text, update_golden)


def test_float16_halves_every_size(capsys: pytest.CaptureFixture[str]) -> None:
    text, _ = printed(capsys, lambda: torchsummary.summary(SmallCNN().half(), (3, 32, 32)))
    sizes = footer(text)
    # 2 bytes a number: inputs 6,144 B = 0.0059; outputs 2 x 49,428 B = 0.0943; params 537,300 B
    # = 0.5124; total 642,300 B = 0.6125 (torchsummary assumes 4 bytes and prints float32's).
    assert sizes["Input size (MB)"] == "0.01"
    assert sizes["Forward/backward pass size (MB)"] == "0.09"
    assert sizes["Params size (MB)"] == "0.51"
    assert sizes["Estimated Total Size (MB)"] == "0.61"


def test_a_batch_size_is_shown_and_sized(capsys: pytest.CaptureFixture[str]) -> None:
    text, report = printed(capsys, lambda: torchsummary.summary(SmallCNN(), (3, 32, 32), batch_size=8))
    assert [shape for _, shape, _ in rows(text)] == ["[8, 16, 32, 32]", "[8, 32, 16, 16]", "[8, 128]", "[8, 10]"]
    sizes = footer(text)
    # 8 x the one-sample bytes: input 98,304 B = 0.09; outputs 8 x 197,712 = 1,581,696 B = 1.51;
    # params unchanged 1.02; total 2,754,600 B = 2.63 (as torchsummary's seed-001 run scales).
    assert sizes["Input size (MB)"] == "0.09"
    assert sizes["Forward/backward pass size (MB)"] == "1.51"
    assert sizes["Estimated Total Size (MB)"] == "2.63"
    assert report.inputs[0].shape == (8, 3, 32, 32)


def test_resnet18_rows_in_call_order(capsys: pytest.CaptureFixture[str], update_golden: bool) -> None:
    text, _ = printed(capsys, lambda: torchsummary.summary(meta_resnet18(), (3, 224, 224)))
    found = rows(text)
    # Seed 000's 68 rows: 20 convs, 20 batch norms, 17 ReLU calls (one stem + 2 per block),
    # a max pool, 8 blocks, the pool and the head.
    assert len(found) == 68
    assert found[20] == ("ReLU-21", "[-1, 128, 28, 28]", "0")  # a block's first ReLU ...
    assert found[23] == ("Conv2d-24", "[-1, 128, 28, 28]", "8,192")  # ... then its downsample (1x1, 64 -> 128)
    assert found[25] == ("ReLU-26", "[-1, 128, 28, 28]", "0")  # ... then the second call of the same ReLU
    assert found[26] == ("BasicBlock-27", "[-1, 128, 28, 28]", "0")
    assert found[66] == ("AdaptiveAvgPool2d-67", "[-1, 512, 1, 1]", "0")
    assert found[67] == ("Linear-68", "[-1, 1000]", "513,000")  # (512 + 1) * 1000
    sizes = footer(text)
    assert sizes["Total params"] == "11,689,512"
    # Input 3*224*224*4 = 602,112 B = 0.57. Leaf outputs, per call, in elements: stem 3 x
    # 802,816 + 200,704; layer1 2 blocks x 6 x 200,704; layer2 (8 + 6) x 100,352; layer3
    # 14 x 50,176; layer4 14 x 25,088; pool 512; fc 1,000: 7,477,736 x 4 B = 29,910,944 B, x2 =
    # 59,821,888 B = 57.05 MB. (torchsummary also adds the blocks' outputs, the same tensors
    # as their last ReLU's: 62.79.) Params 46,758,048 B = 44.59. Total 107,182,048 B = 102.22.
    assert sizes["Input size (MB)"] == "0.57"
    assert sizes["Forward/backward pass size (MB)"] == "57.05"
    assert sizes["Params size (MB)"] == "44.59"
    assert sizes["Estimated Total Size (MB)"] == "102.22"
    check_golden("compat_torchsummary_resnet18.txt", text, update_golden)


def test_cuda_device_without_a_gpu_runs_on_fake_tensors(capsys: pytest.CaptureFixture[str]) -> None:
    model = SmallCNN()
    text, report = printed(capsys, lambda: torchsummary.summary(model, (3, 32, 32), device="cuda"))
    assert footer(text)["Total params"] == "268,650"
    assert report.execution == "fake" and report.device == "cpu"  # no tensor went anywhere
    assert all(p.device.type == "cpu" for p in model.parameters())
    with pytest.raises(tt.InputError, match="not a device"):
        torchsummary.summary(model, (3, 32, 32), device="gpu0")


def test_several_inputs_and_their_dtypes(capsys: pytest.CaptureFixture[str]) -> None:
    text, report = printed(capsys, lambda: torchsummary.summary(TwoInputs(), [(4,), (6,)]))
    # Linear(4, 3) and Linear(6, 3): (4 + 1)*3 + (6 + 1)*3 = 36 params.
    assert rows(text) == [("Linear-1", "[-1, 3]", "15"), ("Linear-2", "[-1, 3]", "21")]
    assert footer(text)["Total params"] == "36"
    assert [spec.shape for spec in report.inputs] == [(1, 4), (1, 6)]
    embed = nn.Embedding(10, 4)
    text, report = printed(capsys, lambda: torchsummary.summary(embed, (5,), dtypes=[torch.long]))
    # The root itself holds the 10 x 4 table, so it is listed (torchsummary never lists the model).
    assert rows(text) == [("Embedding-1", "[-1, 5, 4]", "40")]
    assert report.inputs[0].dtype == "int64"


def test_bad_arguments_are_input_errors() -> None:
    with pytest.raises(tt.InputError, match="batch_size"):
        torchsummary.summary(SmallCNN(), (3, 32, 32), batch_size=0)
    with pytest.raises(tt.InputError, match="input_size"):
        torchsummary.summary(SmallCNN(), "3x32x32")
    with pytest.raises(tt.InputError, match="nn.Module"):
        torchsummary.summary("model", (3, 32, 32))  # type: ignore[arg-type]


def test_returns_the_report_and_leaves_no_hook(capsys: pytest.CaptureFixture[str]) -> None:
    model = SharedConv()
    _, report = printed(capsys, lambda: torchsummary.summary(model, (1, 8, 8)))
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
    assert report.view.style is tt.Style.FLAT and tt.RowSetting.TYPE_NAMES in report.view.rows
    assert report.layer("conv1").calls == 2  # 2 x 8*8*9 MACs below
    assert report.total_macs == 2 * 8 * 8 * 9


class FakeShell:
    """What a notebook needs of IPython's shell: the cell number and the display publisher."""

    def __init__(self) -> None:
        self.execution_count = 7
        self.published: list[dict[str, str]] = []
        self.display_pub = types.SimpleNamespace(publish=lambda data, metadata: self.published.append(data))


def test_a_notebook_shows_the_table_once(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    shell = FakeShell()
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: shell))
    text, report = printed(capsys, lambda: torchsummary.summary(SmallCNN(), (3, 32, 32)))
    assert "Total params: 268,650" in text.splitlines()  # printed as the original does
    report._ipython_display_()  # the report as the value of the same cell: nothing more
    assert shell.published == []
    shell.execution_count = 8  # in a later cell it shows its own (flat) table
    report._ipython_display_()
    assert shell.published == [{"text/plain": report.table(), "text/html": report.to_html()}]


def test_the_models_own_mode_is_kept(capsys: pytest.CaptureFixture[str]) -> None:
    class AuxInTraining(nn.Module):
        """An auxiliary head that only runs in train mode (like googlenet's)."""

        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Linear(4, 4)
            self.aux = nn.Linear(4, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.body(x)
            return y + self.aux(y).sum() if self.training else y

    model = AuxInTraining().train()
    torchsummary.summary(model, (4,))
    out = capsys.readouterr().out
    assert "Linear-2" in out and "Modules never called" not in out  # the aux head ran
    assert model.training
    torchsummary.summary(model.eval(), (4,))
    assert "Linear-2" not in capsys.readouterr().out
