"""Views of a report: the settings (enums), every column, the row settings, the flat
(torchsummary) style and its footer, notebooks and `summary()`, rich, and golden files.

Every expected number is derived by hand in a comment next to it (never copied from the
package's own output). Golden files are rewritten only with ``pytest --update-golden``."""

from __future__ import annotations

import io
import re
import sys
import types
from collections.abc import Iterator
from html import escape

import pytest
import torch
import torchvision
from torch import nn

import torchtally as tt
from helpers import check_golden
from seed_models import SharedConv, SmallCNN, UnusedConv
from torchtally.render.rich_view import render_rich
from torchtally.render.table import table_view
from torchtally.report.settings import ViewOptions

# ---------------------------------------------------------------------------------------
# Reading a rendered plain-text table back
# ---------------------------------------------------------------------------------------

TREE_CHARS = "│├└─ |`-"  # what the tree drawing (unicode or ascii) is made of


def split_row(line: str) -> tuple[str, list[str]]:
    """A table line as (tree drawing, cells). Cells are separated by at least two spaces;
    the tree drawing (which may hold runs of spaces) comes off the label first."""
    body = line.lstrip(TREE_CHARS)
    return line[: len(line) - len(body)], re.split(r"\s{2,}", body.strip())


def parse_table(text: str) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """(headers, body rows as (tree drawing, cells)) of a rendered text table."""
    lines = text.splitlines()
    rules = [i for i, line in enumerate(lines) if line and set(line) == {"="}]
    headers = re.split(r"\s{2,}", lines[rules[0] + 1].strip())
    rows = [split_row(line) for line in lines[rules[1] + 1 : rules[2]]]
    for _, cells in rows:
        assert len(cells) == len(headers), f"cannot split {cells} under {headers}"
    return headers, rows


def table_dicts(text: str) -> list[dict[str, str]]:
    """The body rows by header; the label keeps its tree drawing (``├─conv (Conv2d)``)."""
    headers, rows = parse_table(text)
    return [dict(zip(headers, [prefix + cells[0], *cells[1:]])) for prefix, cells in rows]


def labels_of(text: str) -> list[str]:
    """The labels as drawn, tree included."""
    return [row["Layer (type)"] for row in table_dicts(text)]


def by_label(text: str) -> dict[str, dict[str, str]]:
    rows = {row["Layer (type)"]: row for row in table_dicts(text)}
    assert len(rows) == len(table_dicts(text)), "two rows have the same label: use labels_of"
    return rows


def count(cell: str) -> int:
    """A count cell: ``1,290``, ``--`` (zero), ``shared: x`` (zero here) or ``3,200 + shared: x``."""
    number = cell.split(" + ")[0]
    return 0 if number == "--" or number.startswith("shared:") else int(number.replace(",", ""))


UNITS = {"B": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}


def nbytes(cell: str) -> tuple[float, float]:
    """A bytes cell as (value, rounding tolerance): ``512 B`` exact, ``1.41 KiB`` to 0.005 KiB."""
    if cell == "--":
        return 0.0, 0.0
    value, unit = cell.split()
    return float(value) * UNITS[unit], 0.0 if unit == "B" else 0.005 * UNITS[unit]


def footer_value(text: str, label: str) -> int:
    """The exact number of a footer line ``Label: 1.89 M (1,885,440)`` or ``Label: 268,650 (...)``."""
    match = re.search(rf"^{re.escape(label)}: (?:[^(\n]*\(([\d,]+)\)|([\d,]+))", text, re.MULTILINE)
    assert match, f"no '{label}' line in:\n{text}"
    return int((match.group(1) or match.group(2)).replace(",", ""))


# ---------------------------------------------------------------------------------------
# Models small enough to check by hand
# ---------------------------------------------------------------------------------------


class Tiny(nn.Module):
    """conv 3->8 (3x3, pad 1) + batch norm + ReLU + depthwise conv 8->8 (3x3, groups 8) +
    flatten + linear 32->10, on a 1x3x4x4 input (every activation stays under 1 KiB)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.act = nn.ReLU()
        self.dw = nn.Conv2d(8, 8, 3, groups=8)
        self.flat = nn.Flatten()
        self.fc = nn.Linear(8 * 2 * 2, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.flat(self.dw(self.act(self.bn(self.conv(x))))))


TINY_INPUT = (1, 3, 4, 4)


class CountingNet(nn.Module):
    """Counts how often its forward ran, on the class (the analysis may run a copy of the
    model), to show that a bad setting fails before the run."""

    forwards = 0

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        CountingNet.forwards += 1
        return self.fc(x)


def meta_resnet18() -> nn.Module:
    with torch.device("meta"):
        return torchvision.models.resnet18()


@pytest.fixture(scope="module")
def small_cnn() -> tt.ModelReport:
    return tt.analyze(SmallCNN(), (1, 3, 32, 32))


@pytest.fixture(scope="module")
def resnet18() -> tt.ModelReport:
    return tt.analyze(meta_resnet18(), (1, 3, 224, 224))


@pytest.fixture(scope="module")
def tiny() -> tt.ModelReport:
    return tt.analyze(Tiny(), TINY_INPUT)


# ---------------------------------------------------------------------------------------
# 1. Settings are enums: members or their string values; a bad name lists the good ones
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("column", list(tt.Column))
def test_every_column_accepts_its_member_and_its_value(tiny: tt.ModelReport, column: tt.Column) -> None:
    assert tiny.table(columns=[column]) == tiny.table(columns=[column.value]) == tiny.table(columns=column.value)


@pytest.mark.parametrize("setting", list(tt.RowSetting))
def test_every_row_setting_accepts_its_member_and_its_value(resnet18: tt.ModelReport, setting: tt.RowSetting) -> None:
    assert resnet18.table(depth=2, rows=[setting]) == resnet18.table(depth=2, rows=setting.value)


@pytest.mark.parametrize("style", list(tt.Style))
def test_every_style_accepts_its_member_and_its_value(tiny: tt.ModelReport, style: tt.Style) -> None:
    assert tiny.table(style=style) == tiny.table(style=style.value)
    assert str(tiny.with_view(style=style)) == tiny.table(style=style.value)


@pytest.mark.parametrize(
    "kind,arguments",
    [
        (tt.Column, {"columns": ["macs", "not_a_column"]}),
        (tt.Column, {"columns": "not_a_column"}),
        (tt.RowSetting, {"rows": ["hide_empty", "not_a_setting"]}),
        (tt.Style, {"style": "not_a_style"}),
    ],
)
def test_a_bad_setting_name_lists_every_good_one(tiny: tt.ModelReport, kind: type, arguments: dict[str, object]) -> None:
    for call in (tiny.table, tiny.with_view, tiny.to_markdown, tiny.to_html):
        with pytest.raises(tt.InputError) as caught:
            call(**arguments)  # type: ignore[operator]
        message = str(caught.value)
        assert "not_a_" in message
        for member in kind:
            assert repr(member.value) in message, f"{member.value!r} missing from: {message}"


@pytest.mark.parametrize("depth", [-1, 1.5, True, "2"])
def test_a_bad_depth_is_rejected(tiny: tt.ModelReport, depth: object) -> None:
    with pytest.raises(tt.InputError, match="depth"):
        tiny.table(depth=depth)  # type: ignore[arg-type]
    with pytest.raises(tt.InputError, match="depth"):
        tt.summary(CountingNet(), (1, 4), depth=depth, file=io.StringIO())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "arguments",
    [{"columns": ["params", "bogus"]}, {"rows": "bogus"}, {"style": "bogus"}, {"depth": -1}],
)
def test_summary_rejects_a_bad_setting_before_running_the_model(arguments: dict[str, object]) -> None:
    model = CountingNet()
    out = io.StringIO()
    before = CountingNet.forwards
    with pytest.raises(tt.InputError):
        tt.summary(model, (1, 4), file=out, **arguments)  # type: ignore[arg-type]
    assert CountingNet.forwards == before  # the forward never ran
    assert out.getvalue() == ""
    tt.summary(model, (1, 4), file=out)  # and a good call does run it
    assert CountingNet.forwards > before


# ---------------------------------------------------------------------------------------
# 2. Columns, cell by cell, on models small enough to derive by hand
# ---------------------------------------------------------------------------------------


def test_shape_kernel_and_param_columns_by_hand(tiny: tt.ModelReport) -> None:
    rows = by_label(tiny.table(columns=["input_shape", "output_shape", "kernel_size", "params", "params_percent"]))
    # output shapes: conv keeps 4x4 (padding 1); the depthwise 3x3 without padding gives 2x2; 8*2*2 = 32
    assert rows["├─conv (Conv2d)"]["Output Shape"] == "[1, 8, 4, 4]"
    assert rows["├─dw (Conv2d)"]["Input Shape"] == "[1, 8, 4, 4]"
    assert rows["├─dw (Conv2d)"]["Output Shape"] == "[1, 8, 2, 2]"
    assert rows["├─flat (Flatten)"]["Output Shape"] == "[1, 32]"
    assert rows["└─fc (Linear)"]["Output Shape"] == "[1, 10]"
    # kernel shape, with the groups only when there are several
    assert rows["├─conv (Conv2d)"]["Kernel Shape"] == "[3, 3]"
    assert rows["├─dw (Conv2d)"]["Kernel Shape"] == "[3, 3] g=8"
    assert rows["├─bn (BatchNorm2d)"]["Kernel Shape"] == "--"
    assert rows["└─fc (Linear)"]["Kernel Shape"] == "--"
    # params: conv 8*3*9 + 8 = 224; bn 2*8 = 16; dw 8*1*9 + 8 = 80; fc 32*10 + 10 = 330; total 650
    assert [count(rows[label]["Param #"]) for label in rows] == [0, 224, 16, 0, 80, 0, 330]
    assert tiny.total_params == 650
    # percent of the total, two decimals: 224/650 = 34.4615%, 16/650 = 2.4615%,
    # 80/650 = 12.3077%, 330/650 = 50.7692%
    assert rows["├─conv (Conv2d)"]["Param %"] == "34.46%"
    assert rows["├─bn (BatchNorm2d)"]["Param %"] == "2.46%"
    assert rows["├─dw (Conv2d)"]["Param %"] == "12.31%"
    assert rows["└─fc (Linear)"]["Param %"] == "50.77%"
    assert rows["├─act (ReLU)"]["Param %"] == "--"


def test_mac_and_activation_columns_by_hand(tiny: tt.ModelReport) -> None:
    rows = by_label(tiny.table(columns=["macs", "macs_percent", "flops", "activation_bytes"]))
    # MACs = output elements x (C_in / groups) x kernel elements:
    # conv 8*4*4 * 3 * 9 = 3,456; dw 8*2*2 * 1 * 9 = 288; fc 10 * 32 = 320; total 4,064
    assert rows["├─conv (Conv2d)"]["MACs"] == "3,456"
    assert rows["├─dw (Conv2d)"]["MACs"] == "288"
    assert rows["└─fc (Linear)"]["MACs"] == "320"
    assert tiny.total_macs == 4_064
    # 3456/4064 = 85.039%, 288/4064 = 7.087%, 320/4064 = 7.874%
    assert rows["├─conv (Conv2d)"]["MAC %"] == "85.04%"
    assert rows["├─dw (Conv2d)"]["MAC %"] == "7.09%"
    assert rows["└─fc (Linear)"]["MAC %"] == "7.87%"
    assert rows["├─bn (BatchNorm2d)"]["MAC %"] == "--"
    # FLOPs: 2 x MACs for conv/linear; eval batch norm 4 per element (8*4*4 = 128 -> 512);
    # ReLU 1 per element (128)
    assert rows["├─conv (Conv2d)"]["FLOPs"] == "6,912"
    assert rows["├─bn (BatchNorm2d)"]["FLOPs"] == "512"
    assert rows["├─act (ReLU)"]["FLOPs"] == "128"
    # activations = output bytes of leaf modules, float32: 8*4*4*4 = 512 B for conv, bn, act;
    # 8*2*2*4 = 128 B for dw and flat; 10*4 = 40 B for fc; the root (not a leaf) shows none
    expected = {
        "Tiny": "--", "├─conv (Conv2d)": "512 B", "├─bn (BatchNorm2d)": "512 B", "├─act (ReLU)": "512 B",
        "├─dw (Conv2d)": "128 B", "├─flat (Flatten)": "128 B", "└─fc (Linear)": "40 B",
    }
    assert {label: row["Activations"] for label, row in rows.items()} == expected
    assert tiny.memory.activations == 3 * 512 + 2 * 128 + 40


@pytest.mark.parametrize("dtype,size", [(torch.float32, 4), (torch.float16, 2), (torch.bfloat16, 2)])
def test_memory_traffic_and_intensity_by_hand(dtype: torch.dtype, size: int) -> None:
    model = nn.Sequential(nn.Conv2d(2, 4, 3), nn.Flatten(), nn.Linear(36, 3)).to(dtype)
    report = tt.analyze(model, (1, 2, 5, 5))  # the input takes the model's dtype
    assert report.inputs[0].dtype == str(dtype).removeprefix("torch.")
    conv, flat, linear = report.layer("0"), report.layer("1"), report.layer("2")
    # conv reads its input (2*5*5 = 50), weight (4*2*3*3 = 72) and bias (4): 126 elements;
    # writes its output 4*3*3 = 36 elements
    assert (conv.memory_read, conv.memory_write) == (126 * size, 36 * size)
    # linear reads its input (36), weight (3*36 = 108) and bias (3): 147 elements; writes 3
    assert (linear.memory_read, linear.memory_write) == (147 * size, 3 * size)
    assert (flat.memory_read, flat.memory_write) == (0, 0)  # a view moves nothing
    rows = by_label(report.table(columns=["flops", "memory_read", "memory_write", "arithmetic_intensity"]))
    assert rows["├─0 (Conv2d)"]["Mem Read"] == f"{126 * size} B"
    assert rows["├─0 (Conv2d)"]["Mem Write"] == f"{36 * size} B"
    assert rows["└─2 (Linear)"]["Mem Read"] == f"{147 * size} B"
    assert rows["└─2 (Linear)"]["Mem Write"] == f"{3 * size} B"
    assert rows["├─1 (Flatten)"]["Mem Read"] == "--"
    # FLOPs / bytes moved: conv 2 * (36 * 2*9) = 1,296 FLOPs over 162 elements;
    # linear 2 * (3 * 36) = 216 FLOPs over 150 elements
    assert rows["├─0 (Conv2d)"]["FLOPs"] == "1,296"
    assert rows["├─0 (Conv2d)"]["FLOPs/Byte"] == f"{1296 / (162 * size):.2f}"  # 2.00 (fp32), 4.00 (16-bit)
    assert rows["└─2 (Linear)"]["FLOPs/Byte"] == f"{216 / (150 * size):.2f}"  # 0.36 (fp32), 0.72 (16-bit)
    assert rows["├─1 (Flatten)"]["FLOPs/Byte"] == "--"


def test_trainable_column() -> None:
    model = Tiny()
    model.conv.bias.requires_grad_(False)  # conv: weight trains, bias does not
    model.fc.requires_grad_(False)  # fc: nothing trains
    report = tt.analyze(model, TINY_INPUT)
    rows = by_label(report.table(columns=["params", "trainable"]))
    assert rows["├─conv (Conv2d)"]["Trainable"] == "Partial"
    assert rows["└─fc (Linear)"]["Trainable"] == "False"
    assert rows["├─dw (Conv2d)"]["Trainable"] == "True"
    assert rows["├─bn (BatchNorm2d)"]["Trainable"] == "True"
    assert rows["├─act (ReLU)"]["Trainable"] == "--"  # no parameters
    assert table_dicts(report.table(depth=0, columns=["trainable"]))[0]["Trainable"] == "Partial"
    # 650 params, of which conv's bias (8) and fc (330) are frozen
    assert report.trainable_params == 650 - 8 - 330


def test_calls_column_and_a_module_called_twice() -> None:
    report = tt.analyze(SharedConv(), (1, 1, 16, 16))
    rows = by_label(report.table(columns=["calls", "params", "macs", "activation_bytes"]))
    conv = rows["└─conv1 (Conv2d) x2"]
    assert conv["Calls"] == "2"
    assert conv["Param #"] == "9"  # 3*3, no bias: one weight, counted once
    assert conv["MACs"] == "4,608"  # both calls: 2 * (16*16 outputs * 9)
    assert conv["Activations"] == "2.00 KiB"  # both calls' outputs: 2 * 16*16*4 B = 2 KiB
    assert rows["SharedConv"]["Calls"] == "1"
    unused = by_label(tt.analyze(UnusedConv(), (1, 1, 16, 16)).table(columns=["calls"]))
    assert unused["└─conv2 (Conv2d) (unused)"]["Calls"] == "--"


# ---------------------------------------------------------------------------------------
# 3. Rows: depth, labels, ascii, hide_empty, collapse_repeats
# ---------------------------------------------------------------------------------------

# resnet18's first stage: BasicBlock(64) = two 3x3 convs 64->64 without bias (2 * 36,864)
# and two batch norms (2 * 128) = 73,984 params; each conv runs 56*56*64 outputs x 64*9:
# 115,605,504 MACs, so one block is 231,211,008 MACs.
BLOCK64_PARAMS = 2 * 64 * 64 * 9 + 2 * 2 * 64
BLOCK64_MACS = 2 * (56 * 56 * 64) * (64 * 9)


def test_depth_folds_subtrees_into_rows(resnet18: tt.ModelReport) -> None:
    one = by_label(resnet18.table(depth=1))
    # depth 1: the root and its 10 children
    assert list(one) == [
        "ResNet", "├─conv1 (Conv2d)", "├─bn1 (BatchNorm2d)", "├─relu (ReLU)", "├─maxpool (MaxPool2d)",
        "├─layer1 (Sequential)", "├─layer2 (Sequential)", "├─layer3 (Sequential)", "├─layer4 (Sequential)",
        "├─avgpool (AdaptiveAvgPool2d)", "└─fc (Linear)",
    ]
    assert count(one["├─layer1 (Sequential)"]["Param #"]) == 2 * BLOCK64_PARAMS
    assert count(one["├─layer1 (Sequential)"]["MACs"]) == 2 * BLOCK64_MACS
    assert count(one["├─conv1 (Conv2d)"]["MACs"]) == 112 * 112 * 64 * 3 * 49  # 7x7 stride-2 stem
    zero = table_dicts(resnet18.table(depth=0))
    assert len(zero) == 1
    assert count(zero[0]["Param #"]) == 11_689_512  # torchvision's published resnet18 size
    two = table_dicts(resnet18.table(depth=2))
    assert len(two) == 1 + 10 + 4 * 2  # the root, its 10 children, the 2 blocks of each of the 4 stages


def test_type_names_labels(small_cnn: tt.ModelReport, resnet18: tt.ModelReport) -> None:
    labels = [prefix + cells[0] for prefix, cells in parse_table(small_cnn.table(rows="type_names"))[1]]
    # torchinfo's "Class: depth-index", numbered among the rows of each depth
    assert labels == ["SmallCNN", "├─Conv2d: 1-1", "├─Conv2d: 1-2", "├─Linear: 1-3", "└─Linear: 1-4"]
    deep = [cells[0] for _, cells in parse_table(resnet18.table(depth=2, rows="type_names"))[1]]
    assert [label for label in deep if label.startswith("BasicBlock")] == [f"BasicBlock: 2-{i}" for i in range(1, 9)]
    # flat: torchsummary's "Class-index" (a Sequential root holding nothing has no row)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 2))
    flat = [cells[0] for _, cells in parse_table(tt.analyze(model, (1, 1, 4, 4)).table(style="flat", rows="type_names"))[1]]
    assert flat == ["Conv2d-1", "ReLU-2", "Flatten-3", "Linear-4"]


def test_ascii_only_gives_an_ascii_table(resnet18: tt.ModelReport) -> None:
    every = ["ascii_only", "collapse_repeats"]
    unicode_text = resnet18.table(depth=3, rows=["collapse_repeats"])
    assert not unicode_text.isascii()  # the default tree drawing and the ellipsis are not ASCII
    text = resnet18.table(depth=3, rows=every)
    assert text.isascii()
    assert "|-layer1 (Sequential)" in text
    assert "| `-layer1.0 ... layer1.1 (BasicBlock) x2" in text
    assert tt.analyze(SharedConv(), (1, 1, 8, 8)).table(rows=["ascii_only", "type_names"]).isascii()


class WithEmptyRows(nn.Module):
    """Identity, Dropout and Flatten hold nothing and cost nothing; the rest hold or cost something."""

    def __init__(self) -> None:
        super().__init__()
        self.pre = nn.Identity()
        self.conv = nn.Conv2d(1, 2, 3)  # params and MACs
        self.act = nn.ReLU()  # FLOPs only
        self.drop = nn.Dropout(0.5)  # eval: nothing
        self.flat = nn.Flatten()  # a view
        self.head = nn.Sequential(nn.Identity(), nn.Linear(8, 3))
        self.tail = nn.Sequential(nn.Identity())  # nothing anywhere below it

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tail(self.head(self.flat(self.drop(self.act(self.conv(self.pre(x)))))))


def test_hide_empty_keeps_every_row_with_params_or_cost_and_sums_add_up() -> None:
    report = tt.analyze(WithEmptyRows(), (1, 1, 4, 4))
    text = report.table(rows="hide_empty")
    labels = [cells[0] for _, cells in parse_table(text)[1]]
    for kept in ("WithEmptyRows", "conv (Conv2d)", "act (ReLU)", "head (Sequential)", "1 (Linear)"):
        assert kept in labels
    rows = table_dicts(text)
    # conv 2*9 + 2 = 20; linear 8*3 + 3 = 27
    assert sum(count(row["Param #"]) for row in rows) == report.total_params == 47
    # conv 2*2*2 outputs * 9 = 72 MACs; linear 24
    assert sum(count(row["MACs"]) for row in rows) == report.total_macs == 96
    assert sum(count(row["FLOPs"]) for row in rows) == report.total_flops


def test_hide_empty_hides_identity_dropout_and_flatten() -> None:
    report = tt.analyze(WithEmptyRows(), (1, 1, 4, 4))
    labels = [cells[0] for _, cells in parse_table(report.table(rows="hide_empty"))[1]]
    for hidden in ("pre (Identity)", "drop (Dropout)", "flat (Flatten)", "0 (Identity)", "tail (Sequential)"):
        assert not any(hidden in label for label in labels), hidden
    # With an Activations column their output bytes are something to show (and hiding them
    # would break that column's sum): they stay.
    text = report.table(rows="hide_empty", columns=["params", "activation_bytes"])
    labels = [cells[0] for _, cells in parse_table(text)[1]]
    assert any("pre (Identity)" in label for label in labels)


def test_collapse_repeats_folds_identical_blocks(resnet18: tt.ModelReport) -> None:
    columns = ["params", "macs", "flops", "backward_macs", "activation_bytes", "memory_read", "memory_write"]
    text = resnet18.table(depth=2, rows="collapse_repeats", columns=columns)
    rows = {row["Layer (type)"]: row for row in table_dicts(text)}
    collapsed = rows["│ └─layer1.0 … layer1.1 (BasicBlock) x2"]
    assert count(collapsed["Param #"]) == 2 * BLOCK64_PARAMS  # 147,968
    assert count(collapsed["MACs"]) == 2 * BLOCK64_MACS  # 462,422,016
    # the row's numbers are the sums of the two blocks' whole subtrees (from the report's data)
    layers = resnet18.layers

    def subtree(name: str, field: str) -> int:
        return sum(getattr(layer, field) for layer in layers if layer.name == name or layer.name.startswith(name + "."))

    blocks = ("layer1.0", "layer1.1")
    assert count(collapsed["FLOPs"]) == sum(subtree(b, "self_flops") for b in blocks) == sum(
        resnet18.layer(b).flops for b in blocks
    )
    for header, field in (("Activations", "output_bytes"), ("Mem Read", "self_memory_read"), ("Mem Write", "self_memory_write")):
        expected = sum(
            getattr(layer, field) for b in blocks for layer in layers
            if (layer.name.startswith(b + ".") or layer.name == b) and (field != "output_bytes" or layer.is_leaf)
        )
        value, tolerance = nbytes(collapsed[header])
        assert abs(value - expected) <= tolerance, header
    # layer2..4 start with a downsampling block: their two blocks differ and are not collapsed
    labels = labels_of(text)
    assert not any("layer2.0 …" in label or "layer3.0 …" in label or "layer4.0 …" in label for label in labels)
    assert labels.count("│ ├─0 (BasicBlock)") == 3
    assert labels.count("│ └─1 (BasicBlock)") == 3
    # still, every column adds up
    assert sum(count(row["Param #"]) for row in table_dicts(text)) == resnet18.total_params
    assert sum(count(row["MACs"]) for row in table_dicts(text)) == resnet18.total_macs


def test_collapse_repeats_stops_at_a_different_block() -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 4, bias=False), nn.Linear(4, 4))
    text = tt.analyze(model, (1, 4)).table(rows="collapse_repeats", columns=["params", "macs"])
    rows = by_label(text)
    # 0 and 1 are identical (20 params each); 2 has no bias (16); 3 is alone again after it
    assert list(rows) == ["Sequential", "├─0 … 1 (Linear) x2", "├─2 (Linear)", "└─3 (Linear)"]
    assert rows["├─0 … 1 (Linear) x2"]["Param #"] == "40"
    assert rows["├─0 … 1 (Linear) x2"]["MACs"] == "32"  # 2 * 4*4
    assert rows["├─2 (Linear)"]["Param #"] == "16"


def test_collapsed_blocks_called_several_times_say_so() -> None:
    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.blocks = nn.ModuleList(nn.Linear(4, 4) for _ in range(3))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            for block in self.blocks:
                x = block(block(x))
            return x

    rows = by_label(tt.analyze(Twice(), (1, 4)).table(rows="collapse_repeats", columns=["params", "macs"]))
    assert list(rows) == ["Twice", "└─blocks (ModuleList)", "  └─blocks.0 … blocks.2 (Linear) x3, 2 calls each"]
    row = rows["  └─blocks.0 … blocks.2 (Linear) x3, 2 calls each"]
    assert row["Param #"] == "60"  # 3 * (16 + 4)
    assert row["MACs"] == "96"  # 3 blocks * 2 calls * 16


# ---------------------------------------------------------------------------------------
# 4. The flat (torchsummary) style and its size footer
# ---------------------------------------------------------------------------------------


def test_flat_rows_use_full_names_and_leave_out_empty_containers(resnet18: tt.ModelReport) -> None:
    labels = [cells[0] for _, cells in parse_table(resnet18.table(depth=3, style="flat"))[1]]
    assert "layer1.0.conv1 (Conv2d)" in labels
    assert "layer2.0.downsample (Sequential)" in labels  # folded at depth 3: a whole subtree
    # containers holding nothing themselves have no row (the root, the stages); a block keeps
    # one for what it runs itself (the residual add and its ReLU)
    assert not any(label.startswith(("layer1 (", "ResNet")) for label in labels)
    assert "layer1.0 (BasicBlock)" in labels
    assert all(not label.startswith(tuple("│├└")) for label in labels)


def test_flat_footer_for_small_cnn_by_hand(small_cnn: tt.ModelReport) -> None:
    text = small_cnn.table(style="flat")
    labels = [cells[0] for _, cells in parse_table(text)[1]]
    # the root holds the functional ReLUs and max-pools, so it keeps a row
    assert labels == ["SmallCNN", "conv1 (Conv2d)", "conv2 (Conv2d)", "fc1 (Linear)", "fc2 (Linear)"]
    # input 3*32*32*4 B = 12,288 B = 0.0117 MB
    assert "Input size (MB): 0.01" in text
    # leaf outputs: conv1 16*32*32*4 = 65,536; conv2 32*16*16*4 = 32,768; fc1 128*4 = 512;
    # fc2 10*4 = 40; sum 98,856 B; twice (output and gradient) = 197,712 B = 0.1886 MB
    assert small_cnn.memory.activations == 98_856
    assert "Forward/backward pass size (MB): 0.19" in text
    # params 268,650 * 4 B = 1,074,600 B = 1.0248 MB
    assert "Params size (MB): 1.02" in text
    # 12,288 + 197,712 + 1,074,600 = 1,284,600 B = 1.2251 MB (the sum of bytes, not of rounded MB)
    assert "Estimated Total Size (MB): 1.23" in text
    assert footer_value(text, "Total params") == 268_650


def test_flat_footer_uses_real_dtypes() -> None:
    text = tt.analyze(SmallCNN().half(), (1, 3, 32, 32)).table(style="flat")
    assert "Input size (MB): 0.01" in text  # 6,144 B
    assert "Forward/backward pass size (MB): 0.09" in text  # 2 * 49,428 B = 98,856 B = 0.0943 MB
    assert "Params size (MB): 0.51" in text  # 268,650 * 2 B = 537,300 B = 0.5124 MB
    assert "Estimated Total Size (MB): 0.61" in text  # 642,300 B = 0.6125 MB


# ---------------------------------------------------------------------------------------
# 7. Notebooks and summary()
# ---------------------------------------------------------------------------------------


class Oddly(nn.Module):
    """A module path that needs escaping in HTML."""

    def __init__(self) -> None:
        super().__init__()
        self.add_module("a<b>&c", nn.Linear(2, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return getattr(self, "a<b>&c")(x)


@pytest.mark.parametrize("model,shape", [(SmallCNN, (1, 3, 32, 32)), (Oddly, (1, 2)), (UnusedConv, (1, 1, 8, 8))])
def test_repr_html_holds_every_label_escaped(model: type[nn.Module], shape: tuple[int, ...]) -> None:
    report = tt.analyze(model(), shape)
    html = report._repr_html_()
    assert html.lstrip().startswith("<div>") and "<table" in html and "</table>" in html
    for prefix, cells in parse_table(report.table())[1]:
        assert escape(prefix + cells[0]) in html
    if model is Oddly:
        assert "a&lt;b&gt;&amp;c (Linear)" in html and "a<b>" not in html


@pytest.fixture
def no_ipython(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "IPython", raising=False)


def test_summary_prints_once_outside_ipython(no_ipython: None, capsys: pytest.CaptureFixture[str]) -> None:
    out = io.StringIO()
    report = tt.summary(SmallCNN(), (1, 3, 32, 32), depth=1, file=out)
    assert out.getvalue() == report.table(depth=1) + "\n"
    assert out.getvalue().count("Layer (type)") == 1
    assert capsys.readouterr().out == ""  # nothing went to stdout
    tt.summary(SmallCNN(), (1, 3, 32, 32))  # no file: stdout, once
    assert capsys.readouterr().out.count("Total params: 268,650") == 1


class FakeShell:
    """What summary() uses of an IPython shell: the cell number and the display publisher."""

    def __init__(self) -> None:
        self.execution_count = 7
        self.published: list[dict[str, str]] = []
        self.display_pub = types.SimpleNamespace(publish=lambda data, metadata: self.published.append(data))


def test_summary_shows_one_table_per_call_in_a_notebook(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    shell = FakeShell()
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: shell))
    report = tt.summary(SmallCNN(), (1, 3, 32, 32), depth=0)
    assert capsys.readouterr().out == ""  # nothing printed: shown as the cell's output instead
    assert shell.published == [{"text/plain": report.table(depth=0), "text/html": report.to_html(depth=0)}]
    # IPython then asks the returned report (the cell's value) to display itself: not again.
    report._ipython_display_()
    assert len(shell.published) == 1
    # In a later cell, the report displays normally (with the settings given to summary()).
    shell.execution_count = 8
    report._ipython_display_()
    assert len(shell.published) == 2 and shell.published[1]["text/html"] == report.to_html(depth=0)
    # A loop of summaries shows every table.
    for _ in range(2):
        tt.summary(SmallCNN(), (1, 3, 32, 32))
    assert len(shell.published) == 4
    # An explicit file is written to, notebook or not.
    out = io.StringIO()
    tt.summary(SmallCNN(), (1, 3, 32, 32), depth=0, file=out)
    assert out.getvalue() == report.table(depth=0) + "\n" and len(shell.published) == 4


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def test_summary_uses_rich_on_a_terminal(no_ipython: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "120")
    terminal = FakeTerminal()
    tt.summary(SmallCNN(), (1, 3, 32, 32), file=terminal)
    text = ANSI.sub("", terminal.getvalue())
    lines = text.splitlines()
    assert not any(line and set(line) == {"="} for line in lines)  # not the plain table's rules
    assert any(line.strip() and set(line.strip()) == {"─"} for line in lines)  # rich's rule
    assert text.count("Layer (type)") == 1
    assert "Total params: 268,650" in text


def test_rich_protocol_renders_the_report_view(small_cnn: tt.ModelReport) -> None:
    from rich.console import Console

    report = small_cnn.with_view(1, columns=["params", "macs"])
    out = io.StringIO()
    Console(file=out, width=100, color_system=None).print(report)
    assert out.getvalue() == render_rich(table_view(small_cnn, report.view), width=100)


# ---------------------------------------------------------------------------------------
# 8. Rich: the same numbers as the plain table; narrow terminals never break a number
# ---------------------------------------------------------------------------------------


def rich_body_lines(text: str) -> list[str]:
    """The row lines of a rich rendering (between its two ``─`` rules)."""
    lines = text.splitlines()
    rules = [i for i, line in enumerate(lines) if line.strip() and set(line.strip()) == {"─"}]
    return lines[rules[0] + 1 : rules[1]]


def test_rich_wide_shows_every_cell_of_the_plain_table() -> None:
    report = tt.analyze(SmallCNN(), (1, 3, 32, 32), training=True, optimizer="sgd")
    options = ViewOptions.parse(
        columns=["output_shape", "params", "macs", "flops", "backward_macs", "backward_flops",
                 "activation_bytes", "memory_read", "memory_write", "calls"]
    )
    text = render_rich(table_view(report, options), width=200)
    assert "left out" not in text
    plain = report.table(columns=options.columns)
    body = rich_body_lines(text)
    plain_rows = parse_table(plain)[1]
    assert len(body) == len(plain_rows)
    for line, (prefix, cells) in zip(body, plain_rows):
        assert split_row(line) == (prefix, cells)  # the same label and every number, whole
    for label in ("Total params", "Forward MACs", "Forward FLOPs", "Backward MACs", "Backward FLOPs"):
        assert footer_value(text, label) == footer_value(plain, label)


def narrow_cases() -> Iterator[tuple[str, tt.ModelReport, ViewOptions]]:
    small = tt.analyze(SmallCNN(), (1, 3, 32, 32))
    yield "small_cnn", small, ViewOptions.parse()
    yield "small_cnn_all", small, ViewOptions.parse(columns=list(tt.Column))
    yield "resnet18", tt.analyze(meta_resnet18(), (1, 3, 224, 224)), ViewOptions.parse(depth=2, columns=["params", "macs", "flops"])


@pytest.mark.parametrize("width", [40, 60])
def test_rich_narrow_never_breaks_a_number(width: int) -> None:
    for name, report, options in narrow_cases():
        view = table_view(report, options)
        text = render_rich(view, width=width)
        assert all(len(line) <= width for line in text.splitlines()), name
        body = rich_body_lines(text)
        assert len(body) == len(view.rows), name  # one line per row: nothing wraps
        shown = re.split(r"\s{2,}", text.splitlines()[0].strip())
        assert shown == list(view.headers[: len(shown)]), name  # columns are left out from the right
        for line, row in zip(body, view.rows):
            _, cells = split_row(line)
            assert cells[1:] == list(row[1 : len(shown)]), (name, line)  # every number shown whole
            assert cells[0] == row[0].lstrip(TREE_CHARS) or cells[0].endswith("…"), (name, line)
        note = " ".join(text.split())
        for title in view.headers[len(shown) :]:
            assert title in note.split("left out", 1)[-1], (name, title)  # the left-out columns are named


# ---------------------------------------------------------------------------------------
# 9. Golden files (rewritten only by `pytest --update-golden`)
# ---------------------------------------------------------------------------------------


def lightweight_reports() -> dict[str, tt.ModelReport]:
    reports = {}
    for name in ("squeezenet1_1", "mobilenet_v2", "mobilenet_v3_small"):
        with torch.device("meta"):
            model = getattr(torchvision.models, name)()
        reports[name] = tt.analyze(model, (1, 3, 224, 224))
    return reports


@pytest.fixture(scope="module")
def lightweight() -> dict[str, tt.ModelReport]:
    return lightweight_reports()


def test_lightweight_params_match_the_seed_table(lightweight: dict[str, tt.ModelReport]) -> None:
    # the seed table's figures (torchvision's published sizes)
    expected = {"squeezenet1_1": 1_235_496, "mobilenet_v2": 3_504_872, "mobilenet_v3_small": 2_542_856}
    assert {name: report.total_params for name, report in lightweight.items()} == expected
    table = tt.compare(lightweight)
    assert dict(zip(table.column("model"), table.column("params"))) == expected


def test_golden_flat_small_cnn(small_cnn: tt.ModelReport, update_golden: bool) -> None:
    check_golden("flat_small_cnn.txt", small_cnn.table(style="flat"), update_golden)


def test_golden_tree_resnet18_collapsed(resnet18: tt.ModelReport, update_golden: bool) -> None:
    check_golden("tree_resnet18_collapsed.txt", resnet18.table(depth=2, rows="collapse_repeats"), update_golden)


def test_golden_ascii_shared_conv(update_golden: bool) -> None:
    report = tt.analyze(SharedConv(), (1, 1, 16, 16))
    text = report.table(rows="ascii_only", columns=["input_shape", "output_shape", "params", "calls", "macs", "flops"])
    assert text.isascii()
    check_golden("ascii_shared_conv.txt", text, update_golden)


def test_golden_markdown_small_cnn(small_cnn: tt.ModelReport, update_golden: bool) -> None:
    check_golden("markdown_small_cnn.md", small_cnn.to_markdown(), update_golden)


def test_golden_html_small_cnn(small_cnn: tt.ModelReport, update_golden: bool) -> None:
    check_golden("html_small_cnn.html", small_cnn.to_html(), update_golden)


def test_golden_rich_small_cnn_100(small_cnn: tt.ModelReport, update_golden: bool) -> None:
    text = render_rich(table_view(small_cnn, ViewOptions.parse()), width=100)
    check_golden("rich_small_cnn_100.txt", text.rstrip("\n"), update_golden)


def test_golden_compare_lightweight(lightweight: dict[str, tt.ModelReport], update_golden: bool) -> None:
    check_golden("compare_lightweight.txt", str(tt.compare(lightweight)), update_golden)


def test_flat_style_keeps_torchsummary_columns_for_training_and_timed_reports() -> None:
    trained = tt.analyze(SmallCNN(), (1, 3, 32, 32), training=True)
    assert parse_table(trained.table(style="flat"))[0] == ["Layer (type)", "Output Shape", "Param #"]
    timed = tt.analyze(SmallCNN(), (1, 3, 32, 32), timing=tt.TimingOptions(warmup=1, repeats=1))
    untimed = tt.analyze(SmallCNN(), (1, 3, 32, 32))
    # A container is listed for its own work, never for having been timed.
    assert len(parse_table(timed.table(style="flat"))[1]) == len(parse_table(untimed.table(style="flat"))[1])


def test_view_settings_given_to_analyze_get_a_hint() -> None:
    for setting in ({"depth": 2}, {"columns": ["macs"]}, {"rows": "hide_empty"}, {"style": "flat"}):
        with pytest.raises(tt.InputError, match="report.table"):
            tt.analyze(SmallCNN(), (1, 3, 32, 32), **setting)


def test_unfold_kernel_is_two_dimensional() -> None:
    report = tt.analyze(nn.Unfold(kernel_size=2), (1, 3, 4, 4))
    assert report.layers[0].kernel_size == (2, 2)


def test_a_module_name_with_a_newline_stays_on_one_row() -> None:
    class Odd(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.d = nn.ModuleDict({"new\nline": nn.ReLU(), "pipe|<b>\\": nn.ReLU()})

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.d["pipe|<b>\\"](self.d["new\nline"](x))

    report = tt.analyze(Odd(), (1, 4))
    text = report.table()
    assert "new\\nline (ReLU)" in text
    assert sum("(ReLU)" in line for line in text.splitlines()) == 2
    markdown = report.to_markdown()
    table_lines = [line for line in markdown.splitlines() if line.startswith("| ")]  # not the :--- rule
    # every Markdown row has the header's number of cells: escaped |, no raw HTML
    assert all(line.count(" | ") == table_lines[0].count(" | ") for line in table_lines)
    assert "pipe\\|&lt;b&gt;\\\\ (ReLU)" in markdown and "<b>" not in markdown
