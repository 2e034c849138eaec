"""Guarantee 5, same numbers everywhere: every summable column of the text table adds up to
its total (every depth, every row setting, both styles); the CSV, DataFrame and JSON views
of a report hold identical numbers, field by field; the per-operator and per-type tables and
`compare()` add up and agree across their own views.

Expected totals are derived by hand (or, for resnet18, by PyTorch's own FlopCounterMode)."""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Callable
from typing import Any

import pytest
import torch
import torchvision

import torchtally as tt
from helpers import flop_counter_macs
from seed_models import SharedConv, SmallCNN, UnusedConv
from test_views import count, footer_value, meta_resnet18, nbytes, parse_table

# ---------------------------------------------------------------------------------------
# The reports, and their totals by hand
# ---------------------------------------------------------------------------------------

# SmallCNN at 1x3x32x32. Params: conv1 16*3*9 + 16 = 448; conv2 32*16*9 + 32 = 4,640;
# fc1 2048*128 + 128 = 262,272; fc2 128*10 + 10 = 1,290; total 268,650.
# MACs: conv1 16*32*32 * 27 = 442,368; conv2 32*16*16 * 144 = 1,179,648; fc1 2048*128 =
# 262,144; fc2 1,280; total 1,885,440.
# FLOPs: 2 x MACs = 3,770,880, + ReLU 1/element (16,384 + 8,192 + 128 = 24,704) + max-pool
# 2x2, 4/output (4,096*4 + 2,048*4 = 24,576) = 3,820,160.
SMALL_CNN_PARAMS = 448 + 4_640 + 262_272 + 1_290
CONV_MACS = (16 * 32 * 32 * 27, 32 * 16 * 16 * 144)
LINEAR_MACS = (2048 * 128, 128 * 10)
SMALL_CNN_MACS = sum(CONV_MACS) + sum(LINEAR_MACS)
RELU_FLOPS = 16 * 32 * 32 + 32 * 16 * 16 + 128
POOL_FLOPS = 4 * (16 * 16 * 16) + 4 * (32 * 8 * 8)
SMALL_CNN_FLOPS = 2 * SMALL_CNN_MACS + RELU_FLOPS + POOL_FLOPS
# Backward MACs: conv1 only its weight gradient (its input needs none) 442,368; conv2 input and
# weight gradients 2 * 1,179,648; fc1 and fc2 input and weight gradients 2 * (262,144 + 1,280).
SMALL_CNN_BACKWARD_MACS = CONV_MACS[0] + 2 * CONV_MACS[1] + 2 * sum(LINEAR_MACS)


def gpt2_tiny() -> torch.nn.Module:
    transformers = pytest.importorskip("transformers")
    config = transformers.GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=100, n_positions=32)
    return transformers.GPT2LMHeadModel(config)


# GPT-2 (2 layers, width 32, vocabulary 100, 32 positions), lm_head tied to wte:
# wte 100*32 = 3,200; wpe 32*32 = 1,024; per block: 2 layer norms 2*64, c_attn 32*96 + 96 =
# 3,168, attn c_proj 32*32 + 32 = 1,056, c_fc 32*128 + 128 = 4,224, mlp c_proj 128*32 + 32 =
# 4,128 -> 12,704; ln_f 64. Total 3,200 + 1,024 + 2 * 12,704 + 64 = 29,696 (lm_head counted once).
GPT2_PARAMS = 3_200 + 1_024 + 2 * (2 * 64 + 3_168 + 1_056 + 4_224 + 4_128) + 64

MODELS: dict[str, Callable[[], tt.ModelReport]] = {
    "small_cnn": lambda: tt.analyze(SmallCNN(), (1, 3, 32, 32)),
    "shared_conv": lambda: tt.analyze(SharedConv(), (1, 1, 16, 16)),
    "unused_conv": lambda: tt.analyze(UnusedConv(), (1, 1, 16, 16)),
    "resnet18": lambda: tt.analyze(meta_resnet18(), (1, 3, 224, 224)),
    "gpt2": lambda: tt.analyze(gpt2_tiny(), (1, 8), dtypes=[torch.long]),
    "small_cnn_training": lambda: tt.analyze(SmallCNN(), (1, 3, 32, 32), training=True, optimizer="sgd"),
}

_CACHE: dict[str, tt.ModelReport] = {}


def report_of(name: str) -> tt.ModelReport:
    if name not in _CACHE:
        torch.manual_seed(0)
        _CACHE[name] = MODELS[name]()
    return _CACHE[name]


def test_the_reports_hold_the_totals_derived_by_hand() -> None:
    small = report_of("small_cnn")
    assert (small.total_params, small.total_macs, small.total_flops) == (268_650, 1_885_440, 3_820_160)
    assert (small.total_params, small.total_macs, small.total_flops) == (SMALL_CNN_PARAMS, SMALL_CNN_MACS, SMALL_CNN_FLOPS)
    training = report_of("small_cnn_training")
    assert (training.total_macs, training.backward_macs) == (SMALL_CNN_MACS, SMALL_CNN_BACKWARD_MACS)
    # SharedConv: one 3x3 weight (9), called twice on 16x16: 2 * 256 * 9 MACs
    assert (report_of("shared_conv").total_params, report_of("shared_conv").total_macs) == (9, 2 * 256 * 9)
    # UnusedConv: two 3x3 weights (18), only conv1 runs: 256 * 9 MACs
    assert (report_of("unused_conv").total_params, report_of("unused_conv").total_macs) == (18, 256 * 9)
    resnet = report_of("resnet18")
    assert resnet.total_params == 11_689_512  # torchvision's published figure
    with torch.device("meta"):
        assert resnet.total_macs == flop_counter_macs(torchvision.models.resnet18(), torch.empty(1, 3, 224, 224))
    assert report_of("gpt2").total_params == GPT2_PARAMS == 29_696


# ---------------------------------------------------------------------------------------
# 5a. The text table: every summable column adds up to its total
# ---------------------------------------------------------------------------------------

SUMMABLE = [
    "params", "params_percent", "macs", "macs_percent", "flops", "backward_macs", "backward_flops",
    "activation_bytes", "memory_read", "memory_write",
]
ROW_SETTINGS: list[list[str]] = [[], ["type_names"], ["ascii_only"], ["hide_empty"], ["collapse_repeats"], [s.value for s in tt.RowSetting]]


def totals(report: tt.ModelReport, text: str) -> dict[str, int]:
    """Each summable column's total, from the footer where it is printed, else from the report."""
    forward = "Forward" if report.training else "Total"
    root = report.layers[0]
    expected = {
        "Param #": footer_value(text, "Total params"),
        "MACs": footer_value(text, f"{forward} MACs"),
        "FLOPs": footer_value(text, f"{forward} FLOPs"),
        "Bwd MACs": footer_value(text, "Backward MACs") if report.training else 0,
        "Bwd FLOPs": footer_value(text, "Backward FLOPs") if report.training else 0,
        "Activations": report.memory.activations,
        "Mem Read": root.memory_read,  # the root's inclusive traffic: everything the run moved
        "Mem Write": root.memory_write,
    }
    assert expected["Param #"] == report.total_params
    assert (expected["MACs"], expected["FLOPs"]) == (report.total_macs, report.total_flops)
    assert (expected["Bwd MACs"], expected["Bwd FLOPs"]) == (report.backward_macs, report.backward_flops)
    return expected


def assert_table_adds_up(report: tt.ModelReport, depth: int, rows: list[str], style: str) -> None:
    text = report.table(depth=depth, columns=SUMMABLE, rows=rows, style=style)
    where = f"depth={depth} rows={rows} style={style}"
    headers, body = parse_table(text)
    cells = [dict(zip(headers, row)) for _, row in body]
    expected = totals(report, text)
    for header in ("Param #", "MACs", "FLOPs", "Bwd MACs", "Bwd FLOPs"):
        assert sum(count(row[header]) for row in cells) == expected[header], f"{header} at {where}"
    for header in ("Activations", "Mem Read", "Mem Write"):  # shown rounded: within each cell's rounding
        values = [nbytes(row[header]) for row in cells]
        assert abs(sum(v for v, _ in values) - expected[header]) <= sum(t for _, t in values) + 1e-9, f"{header} at {where}"
    for header, whole in (("Param %", report.total_params), ("MAC %", report.total_macs)):
        shown = [float(row[header].rstrip("%")) for row in cells if row[header] != "--"]
        if whole:  # each cell is rounded to 0.005
            assert abs(sum(shown) - 100) <= 0.005 * len(shown) + 1e-9, f"{header} at {where}"


@pytest.mark.parametrize("style", ["tree", "flat"])
@pytest.mark.parametrize("name", list(MODELS))
def test_every_summable_column_of_the_table_adds_up(name: str, style: str) -> None:
    report = report_of(name)
    for depth in (0, 1, 2, 10):
        for rows in ROW_SETTINGS:
            assert_table_adds_up(report, depth, rows, style)


# ---------------------------------------------------------------------------------------
# 5b. JSON, CSV and DataFrame: identical numbers, field by field, adding up to the totals
# ---------------------------------------------------------------------------------------


def expected_records(data: dict[str, Any]) -> list[dict[str, Any]]:
    """From the JSON view alone, what each per-layer export column should hold."""
    layers = data["layers"]
    unused_tops = set(data["unused_modules"])
    records = []
    for layer in layers:
        record: dict[str, Any] = {key: value for key, value in layer.items() if not isinstance(value, (list, dict))}
        record["input_shapes"] = [[spec["shape"] for spec in call] for call in layer["inputs"]]
        record["output_shapes"] = [[spec["shape"] for spec in call] for call in layer["outputs"]]
        record["shared_from"] = layer["shared_from"]
        record["kernel_size"] = layer["kernel_size"]
        path = layer["name"]
        record["unused"] = any(path == top or path.startswith(top + ".") for top in unused_tops)
        records.append(record)
    return records


LIST_COLUMNS = {"input_shapes", "output_shapes", "kernel_size", "shared_from"}  # JSON text in CSV and DataFrame


def csv_matches(column: str, text: str, expected: Any) -> bool:
    if column in LIST_COLUMNS:
        return (json.loads(text) if text else None) == expected
    if expected is None:
        return text == ""
    if isinstance(expected, bool):
        return text == str(expected)
    if isinstance(expected, int):
        return int(text) == expected
    if isinstance(expected, float):  # written with repr(): read back exactly
        return float(text) == expected
    return text == expected


def is_missing(value: Any) -> bool:
    """None, NaN, or pandas' missing value in a nullable column (whole numbers with gaps)."""
    pandas = pytest.importorskip("pandas")
    return value is None or value is pandas.NA or (isinstance(value, float) and math.isnan(value))


def dataframe_matches(column: str, value: Any, expected: Any) -> bool:
    if column in LIST_COLUMNS:
        return (None if is_missing(value) else json.loads(value)) == expected
    if expected is None:
        return is_missing(value)
    if isinstance(expected, bool):
        return bool(value) is expected and str(value) == str(expected)
    if isinstance(expected, int):
        return float(value).is_integer() and int(value) == expected
    return bool(value == expected)


def test_dataframe_keeps_whole_numbers_with_gaps_whole() -> None:
    """``parent`` (None for the root) and ``groups`` (None where a module has none) stay integers."""
    frame = report_of("small_cnn").to_dataframe()
    assert str(frame["parent"].dtype) == "Int64" and str(frame["groups"].dtype) == "Int64"


@pytest.mark.parametrize("name", list(MODELS))
def test_json_csv_and_dataframe_hold_identical_numbers(name: str) -> None:
    report = report_of(name)
    data = json.loads(report.to_json())
    expected = expected_records(data)
    parsed = list(csv.DictReader(io.StringIO(report.to_csv())))
    frame = report.to_dataframe()
    columns = list(frame.columns)
    assert parsed and list(parsed[0]) == columns
    assert len(parsed) == len(frame) == len(expected) == len(report.layers)
    covered = set(expected[0]) | {"unused"}
    assert set(columns) <= covered, f"export columns with no JSON field to compare with: {set(columns) - covered}"
    for numeric in ("params", "macs", "flops", "self_macs", "self_flops", "memory_read", "self_memory_write"):
        assert numeric in columns
    for index, (want, row) in enumerate(zip(expected, parsed)):
        frame_row = frame.iloc[index]
        for column in columns:
            where = f"layer {want['name']!r}, column {column}"
            assert csv_matches(column, row[column], want[column]), f"CSV {row[column]!r} != JSON {want[column]!r} ({where})"
            value = frame_row[column]
            assert dataframe_matches(column, value, want[column]), f"DataFrame {value!r} != JSON {want[column]!r} ({where})"


@pytest.mark.parametrize("name", list(MODELS))
def test_the_self_columns_of_every_export_sum_to_the_totals(name: str) -> None:
    report = report_of(name)
    data = json.loads(report.to_json())
    json_totals = data["totals"]
    parsed = list(csv.DictReader(io.StringIO(report.to_csv())))
    frame = report.to_dataframe()
    sums = {
        "params": ("params", report.total_params),
        "trainable_params": ("trainable_params", report.trainable_params),
        "param_bytes": ("param_bytes", report.param_bytes),
        "self_macs": ("macs", report.total_macs),
        "self_flops": ("flops", report.total_flops),
        "self_backward_macs": ("backward_macs", report.backward_macs),
        "self_backward_flops": ("backward_flops", report.backward_flops),
    }
    for column, (total_name, total) in sums.items():
        in_json = sum(layer[column] for layer in data["layers"])
        in_csv = sum(int(row[column]) for row in parsed)
        in_frame = int(frame[column].sum())
        assert in_json == in_csv == in_frame == json_totals[total_name] == total, column
    root = data["layers"][0]
    # the root's inclusive numbers are the whole run: the sum of every row's own
    assert root["macs"] == json_totals["macs"] and root["flops"] == json_totals["flops"]
    assert root["backward_macs"] == json_totals["backward_macs"]
    assert root["subtree_params"] == json_totals["params"]
    assert root["memory_read"] == sum(layer["self_memory_read"] for layer in data["layers"])
    assert root["memory_write"] == sum(layer["self_memory_write"] for layer in data["layers"])
    # and at every layer: inclusive = own + children's inclusive
    layers = data["layers"]
    for layer in layers:
        for inclusive, own in (
            ("macs", "self_macs"), ("flops", "self_flops"), ("backward_macs", "self_backward_macs"),
            ("backward_flops", "self_backward_flops"), ("memory_read", "self_memory_read"),
            ("memory_write", "self_memory_write"), ("subtree_params", "params"),
        ):
            children = sum(layers[child][inclusive] for child in layer["children"])
            assert layer[inclusive] == layer[own] + children, (layer["name"], inclusive)


def test_exports_of_small_cnn_by_hand() -> None:
    report = report_of("small_cnn")
    rows = {row["name"]: row for row in csv.DictReader(io.StringIO(report.to_csv()))}
    assert [int(rows[n]["params"]) for n in ("conv1", "conv2", "fc1", "fc2")] == [448, 4_640, 262_272, 1_290]
    assert [int(rows[n]["macs"]) for n in ("conv1", "conv2", "fc1", "fc2")] == [*CONV_MACS, *LINEAR_MACS]
    assert int(rows[""]["self_flops"]) == RELU_FLOPS + POOL_FLOPS  # the functional ReLUs and pools
    assert json.loads(rows["conv2"]["output_shapes"]) == [[[1, 32, 16, 16]]]
    assert json.loads(rows["conv1"]["kernel_size"]) == [3, 3] and rows["conv1"]["groups"] == "1"
    assert int(rows["conv1"]["output_bytes"]) == 16 * 32 * 32 * 4
    # fc1 reads its input 2048, weight 2048*128 and bias 128 floats; writes 128
    assert int(rows["fc1"]["memory_read"]) == 4 * (2048 + 2048 * 128 + 128)
    assert int(rows["fc1"]["memory_write"]) == 4 * 128
    unused = {row["name"]: row["unused"] for row in csv.DictReader(io.StringIO(report_of("unused_conv").to_csv()))}
    assert unused == {"": "False", "conv1": "False", "conv2": "True"}


# ---------------------------------------------------------------------------------------
# 5c. By operator and by module type
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(MODELS))
def test_by_operator_adds_up_to_each_pass(name: str) -> None:
    report = report_of(name)
    table = report.by_operator()
    records = table.records()
    for phase, macs, flops in (
        ("forward", report.total_macs, report.total_flops),
        ("backward", report.backward_macs, report.backward_flops),
    ):
        rows = [row for row in records if row["pass"] == phase]
        assert sum(row["macs"] for row in rows) == macs, phase
        assert sum(row["flops"] for row in rows) == flops, phase
    assert json.loads(table.to_json())["rows"] == records
    assert [{k: str(v) for k, v in row.items()} for row in records] == list(csv.DictReader(io.StringIO(table.to_csv())))


def test_by_operator_of_small_cnn_by_hand() -> None:
    forward = {row["operator"]: row for row in report_of("small_cnn").by_operator().records() if row["pass"] == "forward"}
    assert forward["aten.convolution"]["calls"] == 2  # conv1, conv2
    assert forward["aten.convolution"]["macs"] == sum(CONV_MACS)
    assert forward["aten.addmm"]["calls"] == 2  # fc1, fc2
    assert forward["aten.addmm"]["macs"] == sum(LINEAR_MACS)
    assert forward["aten.relu"]["calls"] == 3 and forward["aten.relu"]["flops"] == RELU_FLOPS
    assert forward["aten.max_pool2d_with_indices"]["calls"] == 2
    assert forward["aten.max_pool2d_with_indices"]["flops"] == POOL_FLOPS
    backward = {row["operator"]: row for row in report_of("small_cnn_training").by_operator().records() if row["pass"] == "backward"}
    assert backward["aten.convolution_backward"]["calls"] == 2
    assert backward["aten.convolution_backward"]["macs"] == CONV_MACS[0] + 2 * CONV_MACS[1]


@pytest.mark.parametrize("name", list(MODELS))
def test_by_type_adds_up_to_the_totals(name: str) -> None:
    report = report_of(name)
    records = report.by_type().records()
    assert sum(row["modules"] for row in records) == len(report.layers)
    for column, total in (
        ("params", report.total_params), ("macs", report.total_macs), ("flops", report.total_flops),
        ("backward_macs", report.backward_macs), ("backward_flops", report.backward_flops),
    ):
        # (a report without a backward pass has no backward columns)
        assert sum(row.get(column, 0) for row in records) == total, column


def test_by_type_counts_modules_by_hand() -> None:
    small = {row["type"]: row for row in report_of("small_cnn").by_type().records()}
    assert {t: row["modules"] for t, row in small.items()} == {"SmallCNN": 1, "Conv2d": 2, "Linear": 2}
    assert small["Conv2d"]["params"] == 448 + 4_640 and small["Linear"]["macs"] == sum(LINEAR_MACS)
    resnet = {row["type"]: row for row in report_of("resnet18").by_type().records()}
    # the stem conv, 2 per block in 8 blocks, and 3 downsampling 1x1 convs; a batch norm after each
    assert resnet["Conv2d"]["modules"] == 1 + 8 * 2 + 3 == 20
    assert resnet["BatchNorm2d"]["modules"] == 20
    assert resnet["BasicBlock"]["modules"] == 8
    assert resnet["Sequential"]["modules"] == 4 + 3  # layer1..4 and the 3 downsample paths
    # one ReLU module in the stem and one per block, each block's called twice
    assert (resnet["ReLU"]["modules"], resnet["ReLU"]["calls"]) == (9, 1 + 8 * 2)
    assert resnet["Linear"]["params"] == 512 * 1000 + 1000
    shared = {row["type"]: row for row in report_of("shared_conv").by_type().records()}
    assert (shared["Conv2d"]["modules"], shared["Conv2d"]["calls"]) == (1, 2)


# ---------------------------------------------------------------------------------------
# 6. compare()
# ---------------------------------------------------------------------------------------

DECIMAL = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}


def shown_value(cell: str, kind: str) -> tuple[float, float]:
    """A displayed compare cell as (value, rounding tolerance)."""
    if kind == "count":
        return float(cell.replace(",", "")), 0.0
    if kind == "bytes":
        return nbytes(cell)
    number, _, unit = cell.partition(" ")
    return float(number) * DECIMAL[unit], 0.005 * DECIMAL[unit] if unit else 0.0


def markdown_cells(text: str) -> list[list[str]]:
    lines = [line for line in text.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in line.strip("|").split(" | ")] for line in lines[2:]]


def html_cells(text: str) -> list[list[str]]:
    import html

    rows = [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in re.findall(r"<tr>(.*?)</tr>", text)]
    return [[html.unescape(cell) for cell in row] for row in rows if row]  # the header row has no <td>


def text_cells(text: str) -> list[list[str]]:
    return [cells for _, cells in parse_table(text)[1]]


def test_compare_holds_each_reports_totals_in_every_view() -> None:
    reports = {"cnn": report_of("small_cnn"), "shared": report_of("shared_conv"), "resnet18": report_of("resnet18")}
    table = tt.compare(reports)
    kinds = dict(zip(table.columns, table.kinds))
    records = table.records()
    assert [row["model"] for row in records] == list(reports)
    for row, report in zip(records, reports.values()):
        assert row["params"] == report.total_params
        assert row["macs"] == report.total_macs
        assert row["flops"] == report.total_flops
        assert row["param_bytes"] == report.param_bytes
        assert row["peak_memory"] == report.memory.peak
    assert records[0]["params"] == 268_650 and records[0]["macs"] == 1_885_440  # by hand, above
    assert records[0]["param_bytes"] == 268_650 * 4
    assert records[0]["input"] == "1x3x32x32 float32"
    # JSON, CSV and DataFrame: exactly the same values
    assert json.loads(table.to_json())["rows"] == records
    parsed = list(csv.DictReader(io.StringIO(table.to_csv())))
    frame = table.to_dataframe()
    assert list(frame.columns) == list(table.columns) == list(parsed[0])
    for index, row in enumerate(records):
        for column, value in row.items():
            assert parsed[index][column] == str(value), column
            assert frame.iloc[index][column] == value, column
    # text, Markdown and HTML: the same numbers, as rounded for display
    for view, cells in (("str", text_cells(str(table))), ("markdown", markdown_cells(table.to_markdown())), ("html", html_cells(table.to_html()))):
        assert len(cells) == len(records), view
        for shown, row in zip(cells, records):
            assert dict(zip(table.columns, shown))["model"] == row["model"], view
            for column, cell in zip(table.columns, shown):
                if kinds[column] == "text":
                    assert cell == row[column], (view, column)
                    continue
                value, tolerance = shown_value(cell, kinds[column])
                assert abs(value - row[column]) <= tolerance + 1e-9, (view, column, cell, row[column])


def test_compare_of_an_iterable_names_rows_by_model_class() -> None:
    table = tt.compare([report_of("small_cnn"), report_of("shared_conv")])
    assert table.column("model") == ["SmallCNN", "SharedConv"]
    assert table.column("params") == [268_650, 9]


NOT_REPORTS = [3, "report", None, torch.nn.Linear(2, 2)]


@pytest.mark.parametrize("bad", NOT_REPORTS)
def test_compare_rejects_what_is_not_a_report(bad: object) -> None:
    with pytest.raises(tt.InputError, match="'b'"):
        tt.compare({"a": report_of("shared_conv"), "b": bad})  # type: ignore[dict-item]


@pytest.mark.parametrize("bad", NOT_REPORTS)
def test_compare_of_an_iterable_rejects_what_is_not_a_report(bad: object) -> None:
    with pytest.raises(tt.InputError):
        tt.compare([report_of("shared_conv"), bad])  # type: ignore[list-item]


def test_sharing_with_the_root_survives_the_csv() -> None:
    class RootHolds(torch.nn.Module):
        """The root owns a 4x4 weight that its child Linear also holds."""

        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(4, 4))
            self.lin = torch.nn.Linear(4, 4, bias=False)
            self.lin.weight = self.w

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.lin(x) @ self.w

    report = tt.analyze(RootHolds(), (2, 4))
    rows = {row["name"]: row for row in csv.DictReader(io.StringIO(report.to_csv()))}
    assert json.loads(rows["lin"]["shared_from"]) == [""]  # "" names the root, as in to_dict()
    assert report.layer("lin").shared_from == ("",)
    assert "shared: RootHolds" in report.table()


def test_empty_tables_render() -> None:
    class Noop(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

    table = tt.analyze(Noop(), (2, 4)).by_operator()
    assert table.rows == () and "operator" in str(table)
    assert "model" in str(tt.compare([]))


def test_compare_names_are_text() -> None:
    table = tt.compare({("a", 1): report_of("shared_conv")})  # type: ignore[dict-item]
    assert table.records()[0]["model"] == "('a', 1)"
