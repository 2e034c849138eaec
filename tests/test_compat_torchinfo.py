"""torchtally.compat.torchinfo: torchinfo's arguments mapped to torchtally's columns, rows
and run options; the tree table printed once and returned. Expected numbers are derived by
hand; the layouts are golden files too (rewritten only with ``pytest --update-golden``)."""

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
from seed_models import SharedConv, SmallCNN, UnusedConv
from torchtally.compat.torchinfo import summary


def printed(capsys: pytest.CaptureFixture[str], call: Callable[[], Any]) -> tuple[str, Any]:
    capsys.readouterr()
    result = call()
    return capsys.readouterr().out.removesuffix("\n"), result


def header(text: str) -> list[str]:
    return re.split(r"\s{2,}", text.splitlines()[1].strip())


def labels(text: str) -> list[str]:
    lines = text.splitlines()
    body = lines[3 : lines.index(lines[0], 3)]
    return [re.split(r"\s{2,}", line.strip())[0] for line in body]


def test_torchinfos_defaults_on_seed_003_cnn(capsys: pytest.CaptureFixture[str], update_golden: bool) -> None:
    text, report = printed(capsys, lambda: summary(SmallCNN(), (1, 3, 32, 32)))
    # torchinfo's default columns (output_size, num_params) and rows (depth: Type: depth-idx).
    assert header(text) == ["Layer (type:depth-idx)", "Output Shape", "Param #"]
    assert labels(text)[1:] == ["├─Conv2d: 1-1", "├─Conv2d: 1-2", "├─Linear: 1-3", "└─Linear: 1-4"]
    lines = text.splitlines()
    assert "Total params: 268,650" in lines
    assert "Total mult-adds (M): 1.89" in lines  # 1,885,440 MACs (torchinfo's 1.91 M added the biases)
    assert "Total MACs: 1.89 M (1,885,440)" in lines  # torchtally's exact line follows
    # torchinfo's MB is 10^6 B: inputs 3*32*32 x 4 B = 12,288 B; params 268,650 x 4 B = 1,074,600 B
    assert lines[lines.index("Input size (MB): 0.01") + 2] == "Params size (MB): 1.07"
    assert str(report) == report.table()  # print(report) shows torchtally's own table
    check_golden("compat_torchinfo_small_cnn.txt", text, update_golden)


def test_every_torchinfo_column_maps_to_ours(capsys: pytest.CaptureFixture[str]) -> None:
    names = ["input_size", "output_size", "num_params", "params_percent", "kernel_size", "mult_adds", "trainable"]
    text, report = printed(capsys, lambda: summary(SmallCNN(), (1, 3, 32, 32), col_names=names))
    assert header(text) == [
        "Layer (type:depth-idx)", "Input Shape", "Output Shape", "Param #", "Param %", "Kernel Shape", "Mult-Adds", "Trainable",
    ]
    assert report.view.columns == (
        tt.Column.INPUT_SHAPE, tt.Column.OUTPUT_SHAPE, tt.Column.PARAMS, tt.Column.PARAMS_PERCENT,
        tt.Column.KERNEL_SIZE, tt.Column.MACS, tt.Column.TRAINABLE,
    )
    # conv1: 448 params = 0.17% of 268,650; a 3x3 kernel; 16*32*32 x 27 = 442,368 MACs.
    conv1 = next(line for line in text.splitlines() if "Conv2d: 1-1" in line)
    assert re.split(r"\s{2,}", conv1.strip())[1:] == ["[1, 3, 32, 32]", "[1, 16, 32, 32]", "448", "0.17%", "[3, 3]", "442,368", "True"]
    # torchtally's own names are accepted too
    _, report = printed(capsys, lambda: summary(SmallCNN(), (1, 3, 32, 32), col_names=["flops", "memory_read"]))
    assert report.view.columns == (tt.Column.FLOPS, tt.Column.MEMORY_READ)


def test_row_settings(capsys: pytest.CaptureFixture[str]) -> None:
    text, _ = printed(capsys, lambda: summary(SmallCNN(), (1, 3, 32, 32), row_settings=["var_names", "depth"]))
    assert labels(text)[1:] == ["├─conv1 (Conv2d)", "├─conv2 (Conv2d)", "├─fc1 (Linear)", "└─fc2 (Linear)"]
    text, _ = printed(capsys, lambda: summary(SmallCNN(), (1, 3, 32, 32), row_settings=("ascii_only", "depth")))
    assert labels(text)[1:] == ["|-Conv2d: 1-1", "|-Conv2d: 1-2", "|-Linear: 1-3", "`-Linear: 1-4"]
    # hide_recursive_layers: a module called twice is one row already, never "(recursive)"
    text, report = printed(capsys, lambda: summary(SharedConv(), (1, 1, 8, 8), row_settings=["hide_recursive_layers"]))
    assert labels(text) == ["SharedConv", "└─conv1 (Conv2d) x2"]
    assert report.view.rows == frozenset()
    _, report = printed(capsys, lambda: summary(SmallCNN(), (1, 3, 32, 32), row_settings=["depth", "hide_empty"]))
    assert report.view.rows == {tt.RowSetting.TYPE_NAMES, tt.RowSetting.HIDE_EMPTY}


def test_unknown_names_list_torchinfos() -> None:
    with pytest.raises(tt.InputError, match=r"col_names 'mult-adds' is not one of torchinfo's: 'input_size', .*'trainable'"):
        summary(SmallCNN(), (1, 3, 32, 32), col_names=["mult-adds"])
    with pytest.raises(tt.InputError, match=r"row_settings 'var_name' is not one of torchinfo's: 'depth', 'var_names'"):
        summary(SmallCNN(), (1, 3, 32, 32), row_settings=["var_name"])
    with pytest.raises(tt.InputError, match="verbose"):
        summary(SmallCNN(), (1, 3, 32, 32), verbose=3)
    with pytest.raises(tt.InputError, match="depth"):
        summary(SmallCNN(), (1, 3, 32, 32), depth=-1)
    with pytest.raises(tt.InputError, match="nothing to run"):
        summary(SmallCNN())


def test_batch_dim_inserts_a_batch_of_one(capsys: pytest.CaptureFixture[str]) -> None:
    _, report = printed(capsys, lambda: summary(SmallCNN(), (3, 32, 32), batch_dim=0))
    assert report.inputs[0].shape == (1, 3, 32, 32)
    _, report = printed(capsys, lambda: summary(TwoInputs(), [(4,), (6,)], batch_dim=0))
    assert [spec.shape for spec in report.inputs] == [(1, 4), (1, 6)]
    # input_data is used as given, as torchinfo does (it only adds the batch to input_size)
    _, report = printed(capsys, lambda: summary(SmallCNN(), input_data=torch.randn(2, 3, 32, 32), batch_dim=0))
    assert report.inputs[0].shape == (2, 3, 32, 32)
    with pytest.raises(tt.InputError, match="batch_dim=5"):
        summary(SmallCNN(), (3, 32, 32), batch_dim=5)


def test_verbose_levels(capsys: pytest.CaptureFixture[str]) -> None:
    text, report = printed(capsys, lambda: summary(SmallCNN(), (1, 3, 32, 32), verbose=0))
    assert text == "" and report.total_params == 268_650
    assert report.view.rows == {tt.RowSetting.TYPE_NAMES}  # printing it later shows the same table
    table, _ = printed(capsys, lambda: summary(SmallCNN(), (1, 3, 32, 32)))
    text, report = printed(capsys, lambda: summary(SmallCNN(), (1, 3, 32, 32), verbose=2))
    assert text.startswith(table)
    assert "aten.convolution" in text.splitlines()[len(table.splitlines()) + 3]  # the operators, biggest first


def test_run_options_reach_the_analysis(capsys: pytest.CaptureFixture[str]) -> None:
    _, report = printed(capsys, lambda: summary(nn.BatchNorm1d(4), (2, 4), mode="train"))
    assert report.mode == "train"
    embed = nn.Embedding(10, 4)
    _, report = printed(capsys, lambda: summary(embed, (2, 5), dtypes=[torch.long], device="cpu"))
    assert report.inputs[0].dtype == "int64" and report.total_params == 40  # 10 x 4

    class Scaled(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(4, 4)

        def forward(self, x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
            return self.lin(x) * scale

    _, report = printed(capsys, lambda: summary(Scaled(), (2, 4), scale=3.0, col_width=40, cache_forward_pass=True))
    # 2x4 @ 4x4: 2*4 outputs x 4; the multiply by scale, 8 FLOPs, ran: kwargs reached forward
    assert report.total_macs == 32 and report.layer("").self_flops == 8
    with pytest.raises(tt.InputError, match="move it yourself"):
        summary(SmallCNN(), (1, 3, 32, 32), device="meta")


def test_unused_layer_is_named_not_hidden(capsys: pytest.CaptureFixture[str], update_golden: bool) -> None:
    text, _ = printed(capsys, lambda: summary(UnusedConv(), (1, 1, 512, 512), row_settings=["var_names"]))
    # torchinfo put conv2's 9 weights in the total silently; they are there, and said unused.
    assert labels(text) == ["UnusedConv", "├─conv1 (Conv2d)", "└─conv2 (Conv2d) (unused)"]
    assert "Unused params: 9" in text.splitlines()
    check_golden("compat_torchinfo_unused_conv.txt", text, update_golden)


def test_resnet18_like_seed_004(capsys: pytest.CaptureFixture[str], update_golden: bool) -> None:
    with torch.device("meta"):
        model = torchvision.models.resnet18()
    text, report = printed(capsys, lambda: summary(model, (1, 3, 224, 224), col_names=["output_size", "num_params", "mult_adds"]))
    assert labels(text)[:3] == ["ResNet", "├─Conv2d: 1-1", "├─BatchNorm2d: 1-2"]
    assert "Total params: 11,689,512" in text.splitlines()
    assert "Params size (MB): 46.76" in text.splitlines()  # 11,689,512 x 4 B / 10^6, as seed 004
    assert "Total mult-adds (G): 1.81" in text.splitlines()  # as seed 004
    assert report.total_macs == 1_814_073_344  # derived in test_compat_thop; seed 004 says 1.81 G
    check_golden("compat_torchinfo_resnet18.txt", text, update_golden)


def test_a_notebook_shows_the_table_once(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    published: list[dict[str, str]] = []
    shell = types.SimpleNamespace(execution_count=3, display_pub=types.SimpleNamespace(publish=lambda data, metadata: published.append(data)))
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: shell))
    text, report = printed(capsys, lambda: summary(SmallCNN(), (1, 3, 32, 32)))
    assert text.splitlines()[1].startswith("Layer (type:depth-idx)")  # torchinfo's layout, printed
    report._ipython_display_()  # as the same cell's value: not a second time
    assert published == []
    assert report.view.columns == (tt.Column.OUTPUT_SHAPE, tt.Column.PARAMS)
    text, report = printed(capsys, lambda: summary(SmallCNN(), (1, 3, 32, 32), verbose=0))
    assert text == ""  # verbose=0 shows nothing
    report._ipython_display_()  # and the report, as the cell's value, shows itself
    assert len(published) == 1


def test_torchinfo_verbose_booleans_and_its_own_enums(capsys: pytest.CaptureFixture[str]) -> None:
    text, _ = printed(capsys, lambda: summary(SmallCNN(), (1, 3, 32, 32), verbose=True))
    assert "Total params: 268,650" in text
    text, _ = printed(capsys, lambda: summary(SmallCNN(), (1, 3, 32, 32), verbose=False))
    assert text == ""
    torchinfo = pytest.importorskip("torchinfo")
    text, _ = printed(
        capsys,
        lambda: summary(
            SmallCNN(), (1, 3, 32, 32),
            col_names=(torchinfo.ColumnSettings.NUM_PARAMS,), row_settings=(torchinfo.RowSettings.VAR_NAMES,),
        ),
    )
    assert "conv1 (Conv2d)" in text and "448" in text



def _words(text: str) -> tuple[list[str], list[str]]:
    """torchinfo's layout as words: the header cells, and its footer block from the table's
    closing rule to its last (each line's label before ':', '=' for a rule), in order."""
    lines = text.splitlines()
    rules = [number for number, line in enumerate(lines) if line and set(line) == {"="}]
    footer = ["=" if n in rules else lines[n].split(":")[0] for n in range(rules[2], rules[4] + 1)]
    # torchinfo 1.8 on Python 3.11 prints its unit enum's name, "(Units.GIGABYTES)"; its value is "G"
    units = {"Units.MEGABYTES": "M", "Units.GIGABYTES": "G", "Units.TERABYTES": "T"}
    return header(text), [re.sub(r"Units\.\w+", lambda m: units[m.group(0)], label) for label in footer]


@pytest.mark.parametrize(
    "col_names", [None, ["input_size", "output_size", "num_params", "params_percent", "kernel_size", "mult_adds", "trainable"]]
)
@pytest.mark.parametrize("name", ["small_cnn", "resnet18"])
def test_same_words_as_the_installed_torchinfo(capsys: pytest.CaptureFixture[str], col_names: list[str] | None, name: str) -> None:
    torchinfo = pytest.importorskip("torchinfo")
    # SmallCNN: 1,885,440 MACs, under 10^9 (M); resnet18: 1.81 G (seed 004)
    model, size, unit = (
        (SmallCNN(), (1, 3, 32, 32), "M") if name == "small_cnn" else (torchvision.models.resnet18(), (1, 3, 224, 224), "G")
    )
    theirs = str(torchinfo.summary(model, size, col_names=col_names, verbose=0))
    ours, _ = printed(capsys, lambda: summary(model, size, col_names=col_names))
    assert _words(ours) == _words(theirs)
    assert _words(ours)[1] == [
        "=", "Total params", "Trainable params", "Non-trainable params", f"Total mult-adds ({unit})", "=",
        "Input size (MB)", "Forward/backward pass size (MB)", "Params size (MB)", "Estimated Total Size (MB)", "=",
    ]
    # the row labels, at depth 1 where neither tool folds repeated calls
    theirs = str(torchinfo.summary(model, size, depth=1, verbose=0))
    ours, _ = printed(capsys, lambda: summary(model, size, depth=1))
    assert [label.replace("└", "├") for label in labels(ours)] == labels(theirs)
    # torchtally's conventions right under torchinfo's block, then its own lines
    lines = ours.splitlines()
    after = lines.index(next(line for line in lines if line.startswith("Estimated Total Size (MB)"))) + 2
    assert lines[after].startswith("torchtally: mult-adds = MACs of every aten operator")
    assert lines[after + 1].startswith("Used params:")
