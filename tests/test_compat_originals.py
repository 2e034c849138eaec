"""Our compat output next to the original packages' (each test is skipped when its package
is not installed): the same columns and rows, and our numbers where theirs are wrong. The
expected values are derived by hand in the comments, never taken from either output."""

from __future__ import annotations

import contextlib
import io
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
import torchvision
from torch import nn

from helpers import Fn
from seed_models import SharedConv, SmallCNN, UnusedConv
from torchtally.compat import thop as our_thop
from torchtally.compat import torchinfo as our_torchinfo
from torchtally.compat import torchstat as our_torchstat
from torchtally.compat import torchsummary as our_torchsummary


def output_of(call: Callable[[], Any]) -> str:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        call()
    return buffer.getvalue().rstrip("\n")


def summary_rows(text: str) -> list[list[str]]:
    """torchsummary's table rows: label, shape, Param #."""
    return [re.split(r"\s{2,}", line.strip()) for line in text.splitlines() if re.match(r"^ *\S+-\d+ ", line)]


def test_torchsummary_same_table_and_shared_weights_once() -> None:
    torchsummary = pytest.importorskip("torchsummary")
    theirs = output_of(lambda: torchsummary.summary(SmallCNN(), (3, 32, 32), device="cpu"))
    ours = output_of(lambda: our_torchsummary.summary(SmallCNN(), (3, 32, 32), device="cpu"))
    print(f"torchsummary:\n{theirs}\ntorchtally.compat.torchsummary:\n{ours}")
    assert ours == theirs  # seed 003's CNN: float32, nothing shared or unused -- they agree

    theirs = output_of(lambda: torchsummary.summary(SharedConv(), (1, 64, 64), device="cpu"))
    ours = output_of(lambda: our_torchsummary.summary(SharedConv(), (1, 64, 64), device="cpu"))
    print(f"torchsummary:\n{theirs}\ntorchtally.compat.torchsummary:\n{ours}")
    assert ours.splitlines()[:3] == theirs.splitlines()[:3]  # rules and headers
    assert [row[:2] for row in summary_rows(ours)] == [row[:2] for row in summary_rows(theirs)]  # rows and shapes
    # One 3x3 conv called twice holds 9 weights: theirs repeats them (9 + 9 = 18).
    assert [row[2] for row in summary_rows(theirs)] == ["9", "9"] and "Total params: 18" in theirs
    assert [row[2] for row in summary_rows(ours)] == ["9", "0"] and "Total params: 9" in ours


def test_torchsummary_float16_sizes() -> None:
    torchsummary = pytest.importorskip("torchsummary")
    model = SmallCNN().half()
    with pytest.raises(RuntimeError):  # theirs feeds float32 inputs to the float16 model
        output_of(lambda: torchsummary.summary(model, (3, 32, 32), device="cpu"))
    ours = output_of(lambda: our_torchsummary.summary(model, (3, 32, 32), device="cpu"))
    # 268,650 params x 2 bytes = 537,300 B = 0.51 MB (torchsummary's 4 bytes: 1.02)
    assert "Params size (MB): 0.51" in ours.splitlines()


def test_thop_same_counts_where_right_ours_where_wrong() -> None:
    thop = pytest.importorskip("thop")
    x = torch.randn(1, 3, 32, 32)
    theirs = thop.profile(SmallCNN(), inputs=(x,), verbose=False, ret_layer_info=True)
    ours = our_thop.profile(SmallCNN(), inputs=(x,), verbose=False, ret_layer_info=True)
    # SmallCNN: conv1 16*32*32*27 + conv2 32*16*16*144 + fc1 2048*128 + fc2 128*10 MACs; 268,650 params.
    assert ours[:2] == theirs[:2] == (1_885_440, 268_650)
    assert set(ours[2]) == set(theirs[2])  # the same per-child layer info
    assert our_thop.clever_format(ours[:2]) == thop.clever_format(theirs[:2]) == ("1.89M", "268.65K")

    model = torchvision.models.resnet18()
    theirs = thop.profile(model, inputs=(torch.randn(1, 3, 224, 224),), verbose=False)
    ours = our_thop.profile(model, inputs=(torch.randn(1, 3, 224, 224),), verbose=False)
    # The convolutions and fc of resnet18 (derived in test_compat_thop): 1,814,073,344 MACs.
    # thop adds 2 ops per batch-norm element and the pooling into the same number.
    assert ours == (1_814_073_344, 11_689_512)
    assert theirs[0] != ours[0] and theirs[1] == ours[1]

    # A functional matmul (4x8 @ 8x16 = 512 MACs) and an embedding table thop has no rule for.
    assert thop.profile(Fn(lambda a, b: a @ b), (torch.randn(4, 8), torch.randn(8, 16)), verbose=False)[0] == 0
    assert our_thop.profile(Fn(lambda a, b: a @ b), (torch.randn(4, 8), torch.randn(8, 16)), verbose=False)[0] == 512
    tokens = (torch.zeros(1, 5, dtype=torch.long),)
    embedded = nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 2))
    # 10 x 4 table + (4 + 1) x 2 linear = 50 params; thop counts only the linear's 10.
    assert thop.profile(embedded, tokens, verbose=False)[1] == 10
    assert our_thop.profile(embedded, tokens, verbose=False)[1] == 50


def torchinfo_table(text: str) -> tuple[list[str], list[list[str]]]:
    """Headers and rows (cells split on 2+ spaces) of a torchinfo-style table."""
    lines = text.splitlines()
    body = lines[3 : lines.index(lines[0], 3)]
    return re.split(r"\s{2,}", lines[1].strip()), [re.split(r"\s{2,}", line.strip()) for line in body]


@pytest.mark.parametrize("value", [0, 1, 999, 1_000, 1_001, 2_500, 1e6, 1e6 + 1, 1e9, 3.2e12, -5_000, 1_814_073_344])
def test_clever_format_prints_like_thops(value: float) -> None:
    thop = pytest.importorskip("thop")
    from torchtally.compat.thop import clever_format

    assert clever_format(value) == thop.clever_format(value)
    assert clever_format([value, 7], "%.3f") == thop.clever_format([value, 7], "%.3f")


def test_torchinfo_same_columns_and_rows(capsys: pytest.CaptureFixture[str]) -> None:
    torchinfo = pytest.importorskip("torchinfo")
    columns = ["input_size", "output_size", "num_params", "kernel_size", "mult_adds"]
    theirs = str(torchinfo.summary(SmallCNN(), (1, 3, 32, 32), col_names=columns, verbose=0))
    capsys.readouterr()
    our_torchinfo.summary(SmallCNN(), (1, 3, 32, 32), col_names=columns)
    ours = capsys.readouterr().out
    print(f"torchinfo:\n{theirs}\ntorchtally.compat.torchinfo:\n{ours}")
    their_headers, their_rows = torchinfo_table(theirs)
    our_headers, our_rows = torchinfo_table(ours)
    # The same columns in the same order (torchinfo's Mult-Adds are torchtally's MACs), the same rows.
    assert their_headers == our_headers
    assert len(our_rows) == len(their_rows) == 5
    # Conv2d: 1-1 ... (torchinfo draws the last child with ├─ too; ours ends the branch with └─)
    assert [row[0].lstrip("│├└─ ") for row in our_rows[1:]] == [row[0].lstrip("│├└─ ") for row in their_rows[1:]]
    assert [row[1:4] for row in our_rows[1:]] == [row[1:4] for row in their_rows[1:]]  # shapes and params
    # conv1: 16*32*32 outputs x 3*3*3 = 442,368 MACs; torchinfo adds the 16*32*32 bias additions.
    assert our_rows[1][5] == "442,368" and their_rows[1][5] == f"{442_368 + 16 * 32 * 32:,}"

    theirs = str(torchinfo.summary(UnusedConv(), (1, 1, 64, 64), verbose=0))
    our_torchinfo.summary(UnusedConv(), (1, 1, 64, 64))
    ours = capsys.readouterr().out
    # Both total the model's 18 weights; only ours says 9 of them never ran.
    assert "Total params: 18" in theirs and "Unused params: 9" not in theirs
    assert "Total params: 18" in ours.splitlines() and "Unused params: 9" in ours.splitlines()


def test_torchstat_same_columns_and_rows() -> None:
    pytest.importorskip("torchstat")
    # In a process of its own: torchstat replaces the __call__ of every leaf module's class
    # (Conv2d.__call__ ...) for good, which would break every later test here. torchstat 0.0.7
    # adds its total row with DataFrame.append, which pandas 2 removed: that process gets it
    # back, as pandas.concat of the row (what append did).
    script = (
        "import pandas as pd\n"
        "pd.DataFrame.append = lambda self, row, ignore_index=False: pd.concat("
        "[self, pd.DataFrame([row]) if isinstance(row, (dict, pd.Series)) else pd.DataFrame(row)], ignore_index=ignore_index)\n"
        "from seed_models import SharedConv; import torchstat; torchstat.stat(SharedConv(), (1, 64, 64))"
    )
    run = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).parent, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    theirs = run.stdout.rstrip("\n")
    ours = output_of(lambda: our_torchstat.stat(SharedConv(), (1, 64, 64), timing=False))
    assert ours.splitlines()[0].split() == theirs.splitlines()[0].split()  # the same columns
    assert len(ours.splitlines()) == len(theirs.splitlines())  # one row, total, rules, totals
    # The conv runs twice: 2 x 64*64*9 MACs. torchstat counted the first call only.
    assert "Total Flops: 73.73KFlops" in ours.splitlines()
    assert "Total Flops: 36.86KFlops" in theirs.splitlines()
