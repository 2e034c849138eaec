"""torchtally.compat.torchstat: torchstat's table (its pandas layout) with torchtally's
numbers. Every expected number is derived by hand in a comment; the layouts are golden
files too (rewritten only with ``pytest --update-golden``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
import torchvision
from torch import nn

import torchtally as tt
from helpers import check_golden
from seed_models import SharedConv, SmallCNN, TwoConvs, UnusedConv
from torchtally.compat import torchstat
from torchtally.compat.torchstat import HEADERS, stat

MIB = 2**20
PLANE = 512 * 512  # elements of one 1x512x512 feature map


def printed(capsys: pytest.CaptureFixture[str], call: Callable[[], Any]) -> tuple[str, Any]:
    capsys.readouterr()
    result = call()
    return capsys.readouterr().out.removesuffix("\n"), result


def table(text: str) -> dict[str, list[str]]:
    """Row label (a number, or "total") -> its cells, read back from the printed table: each
    column ends where its right-aligned header ends."""
    lines = text.splitlines()
    ends, start = [], 0
    for header in HEADERS:
        start = lines[0].index(header, start) + len(header)
        ends.append(start)
    body = lines[1 : lines.index(next(line for line in lines if line.startswith("===")))]
    found = {}
    for line in body:
        label = line.split(" ", 1)[0]
        cells = [line[begin:end].strip() for begin, end in zip([len(label), *ends], ends)]
        found[label] = [cell for cell in cells if cell] if label == "total" else cells
    return found


def meta_resnet18() -> nn.Module:
    with torch.device("meta"):
        return torchvision.models.resnet18()


def test_two_convs(capsys: pytest.CaptureFixture[str], update_golden: bool) -> None:
    text, report = printed(capsys, lambda: stat(TwoConvs(), (1, 512, 512), timing=False))
    cells = table(text)
    # conv: params 9; output 1 MiB; FLOPs 2 x 9 per output = 4,718,592 (torchstat's MAdd,
    # (2*9 - 1) per output, was 4,456,448); MACs 9 per output = 2,359,296; reads the input
    # (1,048,576 B) and the weights (36 B), writes the output (1,048,576 B).
    conv = ["1 512 512", "1 512 512", "9.0", "1.00", "4,718,592.0", "2,359,296.0", "1048612.0", "1048576.0", "--", "2097188.0"]
    assert cells["0"] == ["conv1", *conv]
    assert cells["1"] == ["conv2", *conv]
    # The totals add up every column (torchstat's MemRead/MemWrite totals repeated the last row).
    assert cells["total"] == ["18.0", "2.00", "9,437,184.0", "4,718,592.0", "2097224.0", "2097152.0", "--", "4194376.0"]
    assert text.splitlines()[-5:] == [
        "Total params: 18",
        "-" * len(text.splitlines()[0]),
        "Total memory: 2.00MB",
        "Total MAdd: 9.44MMAdd",  # 9,437,184 / 1000**2, rounded to 2 places
        "Total Flops: 4.72MFlops",
        "Total MemR+W: 4.0MB",  # 4,194,376 / 1024**2 = 4.00003 -> round(…, 2) = 4.0
    ][-5:]
    # Seed 002's torchstat header and the start of its first row, to the character (the seed
    # lost the header's first two spaces in pasting).
    assert text.splitlines()[0].strip() == (
        "module name  input shape output shape  params memory(MB)         MAdd        Flops  "
        "MemRead(B)  MemWrite(B) duration[%]  MemR+W(B)"
    )
    assert text.splitlines()[1].startswith("0           conv1    1 512 512    1 512 512     9.0       1.00  ")
    assert report.timing is None
    check_golden("compat_torchstat_two_convs.txt", text, update_golden)


def test_a_shared_layer_counts_both_calls(capsys: pytest.CaptureFixture[str]) -> None:
    text, _ = printed(capsys, lambda: stat(SharedConv(), (1, 512, 512), timing=False))
    cells = table(text)
    # One row for the module, its two calls added up (torchstat counted the first only):
    # 2 MiB of outputs, 2 x 4,718,592 FLOPs, 2 x 2,359,296 MACs, 2 x 1,048,612 B read.
    assert cells["0"] == [
        "conv1 x2", "1 512 512", "1 512 512", "9.0", "2.00", "9,437,184.0", "4,718,592.0", "2097224.0", "2097152.0",
        "--", "4194376.0",
    ]
    assert "Total params: 9" in text.splitlines()


def test_an_unused_layer_is_listed_with_its_weights(capsys: pytest.CaptureFixture[str], update_golden: bool) -> None:
    text, _ = printed(capsys, lambda: stat(UnusedConv(), (1, 512, 512), timing=False))
    cells = table(text)
    assert cells["1"] == ["conv2 (unused)", "--", "--", "9.0", "0.00", "0.0", "0.0", "0.0", "0.0", "--", "0.0"]
    assert cells["total"][:2] == ["18.0", "1.00"]  # the model's 18 weights; one 1 MiB output
    assert text.splitlines()[-3:] == [
        "Used params: 9 (read by an operator during the run)",
        "Unused params: 9",
        "Modules never called: conv2",
    ]
    check_golden("compat_torchstat_unused_conv.txt", text, update_golden)


def test_seed_003_cnn_shows_its_functional_work(capsys: pytest.CaptureFixture[str], update_golden: bool) -> None:
    text, report = printed(capsys, lambda: stat(SmallCNN(), (3, 32, 32), timing=False))
    cells = table(text)
    # The model's own forward runs relu and max_pool2d functionally (torchstat lost them): relu
    # on 16*32*32, 32*16*16 and 128 elements; 2x2 pooling, 4 per output, on 16*16*16 and
    # 32*8*8 outputs: 16,384 + 8,192 + 128 + 4 x (4,096 + 2,048) = 49,280 FLOPs, no MACs.
    assert cells["0"][0] == "SmallCNN" and cells["0"][3:7] == ["0.0", "0.00", "49,280.0", "0.0"]
    assert cells["0"][1:3] == ["3  32  32", "10"]  # its input and output, batch left out
    # conv1: 16*32*32 outputs x 27 = 442,368 MACs, 884,736 FLOPs; reads 3*32*32*4 = 12,288 B
    # of input and (432 + 16)*4 = 1,792 B of weights and bias; writes 16*32*32*4 = 65,536 B.
    assert cells["1"] == [
        "conv1", "3  32  32", "16  32  32", "448.0", "0.06", "884,736.0", "442,368.0", "14080.0", "65536.0", "--", "79616.0",
    ]
    # fc1: 2048*128 = 262,144 MACs; reads 2048*4 + 262,272*4 = 1,057,280 B, writes 512 B.
    assert cells["3"] == ["fc1", "2048", "128", "262272.0", "0.00", "524,288.0", "262,144.0", "1057280.0", "512.0", "--", "1057792.0"]
    total = cells["total"]
    assert total[0] == "268650.0"
    assert total[2:4] == [f"{report.total_flops:,}.0", f"{report.total_macs:,}.0"] == ["3,820,160.0", "1,885,440.0"]
    read, written = sum(layer.self_memory_read for layer in report.layers), sum(layer.self_memory_write for layer in report.layers)
    assert total[4:6] == [f"{read}.0", f"{written}.0"]  # every operator's traffic, in some row
    check_golden("compat_torchstat_small_cnn.txt", text, update_golden)


def test_resnet18_with_adaptive_pooling(capsys: pytest.CaptureFixture[str], update_golden: bool) -> None:
    text, report = printed(capsys, lambda: stat(meta_resnet18(), (3, 224, 224)))
    cells = table(text)
    # 52 leaf modules (stem 4, 8 blocks x 5, 3 downsamples x 2, pool, fc) + 8 rows for the
    # blocks' own residual additions.
    assert len(cells) == 60 + 1
    # conv1: 64*112*112 outputs x 3*7*7 = 118,013,952 MACs; bn1 in eval: 4 FLOPs per element.
    assert cells["0"][5:7] == ["236,027,904.0", "118,013,952.0"]
    assert cells["1"][5] == f"{4 * 64 * 112 * 112:,}.0"
    # layer1.0's own row: out += identity, 64*56*56 = 200,704 FLOPs.
    assert cells["4"][0] == "layer1.0" and cells["4"][5] == "200,704.0"
    # The adaptive pool torchstat could not count: 1 FLOP per input element, 512*7*7.
    assert cells["58"][:3] == ["avgpool", "512   7   7", "512   1   1"] and cells["58"][5] == "25,088.0"
    assert cells["total"][3] == "1,814,073,344.0"  # the MACs derived in test_compat_thop
    assert cells["total"][6] == "--"  # meta weights cannot be timed
    assert "Total Flops: 1.81GFlops" in text.splitlines()
    assert report.timing is None
    check_golden("compat_torchstat_resnet18.txt", text, update_golden)


def test_query_granularity_folds_small_subtrees(capsys: pytest.CaptureFixture[str]) -> None:
    text, _ = printed(capsys, lambda: stat(meta_resnet18(), (3, 224, 224), query_granularity=2))
    cells = table(text)
    names = [row[0] for label, row in cells.items() if label != "total"]
    # Subtrees at most 2 high become one row: the plain blocks and the downsample pairs; a
    # block with a downsample is 3 high, so its children are listed (after its own addition).
    assert names[:7] == ["conv1", "bn1", "relu", "maxpool", "layer1.0", "layer1.1", "layer2.0"]
    assert names[7:13] == ["layer2.0.conv1", "layer2.0.bn1", "layer2.0.relu x2", "layer2.0.conv2", "layer2.0.bn2", "layer2.0.downsample"]
    # A folded block holds its subtree: conv1 + bn1 + relu + conv2 + bn2 params of layer1.0.
    assert cells["4"][3] == f"{2 * 64 * 64 * 9 + 2 * 128}.0"
    assert cells["total"][0] == "11689512.0" and cells["total"][3] == "1,814,073,344.0"


def test_inputs_of_any_rank(capsys: pytest.CaptureFixture[str]) -> None:
    text, _ = printed(capsys, lambda: stat(nn.Linear(16, 4), (16,), timing=False))
    # The model is one leaf: 16*4 MACs, 16*4 + 4 params; shapes without the batch.
    assert table(text)["0"][:7] == ["Linear", "16", "4", "68.0", "0.00", "128.0", "64.0"]
    text, _ = printed(capsys, lambda: stat(nn.Conv3d(2, 4, 3, padding=1), (2, 4, 4, 4), timing=False))
    # 4*4*4*4 outputs x 2*27 = 13,824 MACs.
    assert table(text)["0"][:7] == ["Conv3d", "2   4   4   4", "4   4   4   4", "220.0", "0.00", "27,648.0", "13,824.0"]


def test_timed_rows_are_shares_of_the_forward_pass(capsys: pytest.CaptureFixture[str]) -> None:
    options = tt.TimingOptions(warmup=1, repeats=2)
    text, report = printed(capsys, lambda: stat(SmallCNN(), (3, 32, 32), timing=options))
    assert report.timing is not None and report.timing.repeats == 2
    cells = table(text)
    shares = [float(row[9].rstrip("%")) for label, row in cells.items() if label != "total"]
    assert all(share >= 0 for share in shares)
    # Every module has a row here (the root for its own work), so the shares make the whole pass.
    assert float(cells["total"][6].rstrip("%")) == pytest.approx(sum(shares), abs=0.05)
    assert float(cells["total"][6].rstrip("%")) == pytest.approx(100.0, abs=0.05)
    assert tt.Column.TIME_PERCENT in (report.view.columns or ())


def test_layout_is_pandas(capsys: pytest.CaptureFixture[str]) -> None:
    """torchstat printed a pandas DataFrame: the same cells through pandas give the same text."""
    pd = pytest.importorskip("pandas")
    text, report = printed(capsys, lambda: stat(SmallCNN(), (3, 32, 32), timing=False))
    rows = torchstat.stat_rows(report)
    data, _ = torchstat.stat_cells(report, rows)
    floats = {"params", "MemRead(B)", "MemWrite(B)", "MemR+W(B)"}  # torchstat's float columns
    frame = pd.DataFrame(
        {h: [float(r[c]) if h in floats else r[c] for r in data] for c, h in enumerate(HEADERS)},
        index=[*range(len(rows)), "total"],
    )
    with pd.option_context("display.width", 1000, "display.max_columns", 100):
        assert text.splitlines()[: len(data) + 1] == str(frame).splitlines()


def test_bad_arguments() -> None:
    with pytest.raises(tt.InputError, match="input_size"):
        stat(SmallCNN(), [(3, 32, 32)])
    with pytest.raises(tt.InputError, match="query_granularity"):
        stat(SmallCNN(), (3, 32, 32), query_granularity=0)
    with pytest.raises(tt.InputError, match="timing"):
        stat(SmallCNN(), (3, 32, 32), timing="yes")  # type: ignore[arg-type]


def test_uncounted_operators_are_named_under_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    class Decomposed(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.linalg.qr(self.conv(x)).Q  # a QR decomposition has no formula

    stat(Decomposed(), (3, 16, 16), timing=False)
    out = capsys.readouterr().out
    assert "Uncounted operators (totals are a lower bound): aten.linalg_qr x1" in out


def test_a_model_that_fails_only_when_timed_still_gets_its_counts(capsys: pytest.CaptureFixture[str]) -> None:
    class FailsWhenReal(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if not isinstance(x, torch._subclasses.fake_tensor.FakeTensor):
                raise ValueError("no real values here")
            return self.lin(x)

    report = stat(FailsWhenReal(), (4,))
    out = capsys.readouterr().out
    assert report.total_macs == 16  # 1 x 4 x 4
    assert "duration[%] not measured: a warm-up pass of the timed forward passes failed" in out


def test_numpy_integer_sizes_are_accepted_as_by_the_originals(capsys: pytest.CaptureFixture[str]) -> None:
    numpy = pytest.importorskip("numpy")
    from torchtally.compat import torchinfo, torchsummary

    size = (3, numpy.int64(32), 32)
    # SmallCNN at 1x3x32x32: 1,885,440 MACs (seed 003's CNN, derived in test_seeds)
    assert stat(SmallCNN(), size, timing=False).total_macs == 1_885_440
    assert torchsummary.summary(SmallCNN(), size).total_macs == 1_885_440
    assert torchinfo.summary(SmallCNN(), (numpy.int64(1), *size), verbose=0).total_macs == 1_885_440
    capsys.readouterr()
