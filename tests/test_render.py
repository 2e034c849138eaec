"""The text table: golden files, depth folding, and every column adding up to its footer."""

from __future__ import annotations

import json
import re

import pytest
import torch
import torchvision

import torchtally as tt
from helpers import check_golden
from seed_models import SharedConv, SmallCNN, UnusedConv


@pytest.mark.parametrize(
    "name,model,shape",
    [
        ("small_cnn.txt", SmallCNN, (1, 3, 32, 32)),
        ("shared_conv.txt", SharedConv, (1, 1, 512, 512)),
        ("unused_conv.txt", UnusedConv, (1, 1, 512, 512)),
    ],
)
def test_golden_tables(name: str, model: type[torch.nn.Module], shape: tuple[int, ...], update_golden: bool) -> None:
    torch.manual_seed(0)
    check_golden(name, str(tt.analyze(model(), shape)), update_golden)


def table_rows(text: str) -> list[list[str]]:
    """The body rows of a rendered table, split into cells."""
    lines = text.splitlines()
    rules = [i for i, line in enumerate(lines) if line and set(line) == {"="}]
    return [re.split(r"\s{2,}", line.strip()) for line in lines[rules[1] + 1 : rules[2]]]


def footer_number(text: str, label: str) -> int:
    match = re.search(rf"^{re.escape(label)}: ([\d,]+)", text, re.MULTILINE)
    assert match, f"no '{label}' line in the footer"
    return int(match.group(1).replace(",", ""))


def cell_number(cell: str) -> int:
    number = cell.split(" + ")[0]
    return 0 if number == "--" or number.startswith("shared:") else int(number.replace(",", ""))


def assert_columns_add_up(report: tt.ModelReport, depth: int) -> None:
    text = report.table(depth=depth)
    rows = table_rows(text)
    params = sum(cell_number(row[-3]) for row in rows)
    macs = sum(cell_number(row[-2]) for row in rows)
    flops = sum(cell_number(row[-1]) for row in rows)
    assert params == footer_number(text, "Total params") == report.total_params
    total_macs_line = re.search(r"^Total MACs: .* \(([\d,]+)\)$", text, re.MULTILINE)
    assert total_macs_line is not None
    assert macs == int(total_macs_line.group(1).replace(",", "")) == report.total_macs
    total_flops_line = re.search(r"^Total FLOPs: .* \(([\d,]+)\)$", text, re.MULTILINE)
    assert total_flops_line is not None
    assert flops == int(total_flops_line.group(1).replace(",", "")) == report.total_flops


@pytest.mark.parametrize("depth", [0, 1, 2, 3, 10])
def test_columns_add_up_to_the_footer_at_every_depth(depth: int) -> None:
    with torch.device("meta"):
        model = torchvision.models.resnet18()
    report = tt.analyze(model, (1, 3, 64, 64))
    assert_columns_add_up(report, depth)
    rows = table_rows(report.table(depth=depth))
    assert len(rows) == sum(1 for layer in report.layers if layer.depth <= depth)


def test_columns_add_up_with_shared_and_unused_weights() -> None:
    transformers = pytest.importorskip("transformers")
    config = transformers.GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=100, n_positions=32)
    report = tt.analyze(transformers.GPT2LMHeadModel(config), (1, 8), dtypes=[torch.long])
    for depth in (1, 2, 5):
        assert_columns_add_up(report, depth)
    assert "shared: transformer.wte" in report.table(depth=1)
    assert_columns_add_up(tt.analyze(UnusedConv(), (1, 1, 8, 8)), 1)


def test_depth_zero_folds_everything_into_the_root() -> None:
    report = tt.analyze(SmallCNN(), (1, 3, 32, 32))
    rows = table_rows(report.table(depth=0))
    assert len(rows) == 1
    assert rows[0][0] == "SmallCNN"
    assert cell_number(rows[0][-3]) == 268_650


def test_summary_display_depth_and_repr() -> None:
    report = tt.analyze(SmallCNN(), (1, 3, 32, 32)).with_view(0)
    assert str(report) == report.table(depth=0)
    assert repr(report).startswith("<ModelReport SmallCNN: 268,650 params")


def test_footer_mentions_uncounted_operators_and_the_fallback() -> None:
    class DataDependent(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            positions = x.nonzero()  # shape depends on the values
            q = torch.linalg.qr(x).Q  # a decomposition: no formula
            return q + positions.numel()

    report = tt.analyze(DataDependent(), (1, 1, 4, 4))
    text = str(report)
    assert "Uncounted operators (totals are a lower bound): aten.linalg_qr x1" in text
    assert "Note: ran for real because" in text and "nonzero" in text


def test_to_dict_is_json_and_matches_the_report() -> None:
    report = tt.analyze(SharedConv(), (1, 1, 16, 16))
    data = json.loads(json.dumps(report.to_dict()))
    assert data["schema"] == "torchtally.report/1"
    assert data["totals"]["params"] == 9
    assert data["totals"]["macs"] == 2 * 16 * 16 * 9
    assert [layer["name"] for layer in data["layers"]] == ["", "conv1"]
    assert data["layers"][1]["calls"] == 2
    assert data["layers"][1]["outputs"][0][0] == {"shape": [1, 1, 16, 16], "dtype": "float32", "nbytes": 16 * 16 * 4}
