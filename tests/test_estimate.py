"""Roofline time per operator and per layer (``analyze(..., hardware=...)``): single
operators derived by hand, sums over the module tree, the training split, what cannot be
estimated, and the views, exports, schema and command line that carry the estimate."""

from __future__ import annotations

import csv
import io
import json

import pytest
import torch
from torch import nn

import torchtally as tt
from torchtally.cli import main
from torchtally.estimate.roofline import Roofline
from torchtally.render.view import build_rows
from torchtally.report.schema import report_schema
from torchtally.report.settings import ViewOptions

jsonschema = pytest.importorskip("jsonschema")
torchvision = pytest.importorskip("torchvision")


def resnet18() -> nn.Module:
    with torch.device("meta"):  # no memory, no weights
        return torchvision.models.resnet18()

N = 1024
# A made-up chip with round figures: 1 TFLOP/s fp32 matrix, 4 TFLOP/s bf16, 0.5 TFLOP/s
# vector, 100 GB/s, 1 µs per call that works, nothing for a view.
CHIP = tt.Hardware(
    "round", {"fp32": 1e12, "bf16": 4e12}, 1e11, vector_flops={"fp32": 5e11}, call_overhead=1e-6, view_overhead=0.0
)


class MatMul(nn.Module):
    def __init__(self, n: int, dtype: torch.dtype = torch.float32):
        super().__init__()
        self.w = nn.Parameter(torch.empty(n, n, dtype=dtype, device="meta"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.w


class Add(nn.Module):
    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x + y


def test_a_large_matmul_is_compute_bound() -> None:
    report = tt.analyze(MatMul(N), (N, N), hardware=CHIP)
    root = report.layers[0]
    # aten.mm of two 1024x1024 fp32 matrices: 2 * 1024^3 FLOPs at 1e12 FLOP/s = 2.147 ms;
    # it reads x and w and writes the result, 3 * 1024^2 * 4 bytes at 1e11 B/s = 0.126 ms.
    compute = 2 * N**3 / 1e12
    assert compute > 3 * N * N * 4 / 1e11
    assert root.self_estimated_time == pytest.approx(compute + 1e-6)  # plus one call
    assert root.self_bound == root.bound == "compute"
    assert report.estimate is not None and report.estimate.latency == pytest.approx(compute + 1e-6)
    assert report.estimate.by_bound == pytest.approx({"compute": compute, "overhead": 1e-6})
    assert root.arithmetic_intensity == pytest.approx(2 * N**3 / (3 * N * N * 4))  # FLOPs per byte moved


def test_an_elementwise_add_is_memory_bound() -> None:
    elements = 2**20
    report = tt.analyze(Add(), [(elements,), (elements,)], hardware=CHIP)
    # aten.add: 1 FLOP per element at the vector rate, 5e11 FLOP/s = 2.1 µs; it reads two
    # float32 vectors and writes one, 3 * 2^20 * 4 bytes at 1e11 B/s = 125.8 µs.
    memory = 3 * elements * 4 / 1e11
    assert elements / 5e11 < memory
    root = report.layers[0]
    assert root.self_estimated_time == pytest.approx(memory + 1e-6)
    assert root.self_bound == "memory"


def test_a_tiny_operator_is_overhead_bound() -> None:
    report = tt.analyze(Add(), [(4,), (4,)], hardware=CHIP)
    # 4 FLOPs and 48 bytes: 0.5 ns at most, against the 1 µs of the call.
    assert report.layers[0].self_estimated_time == pytest.approx(1e-6 + 48 / 1e11)
    assert report.layers[0].self_bound == "overhead"


def test_bf16_and_fp32_matmuls_use_their_own_peaks() -> None:
    h100 = tt.hardware("h100-sxm")
    n = 4096
    flops = 2 * n**3
    times = {}
    for dtype, size, peak in ((torch.bfloat16, 2, 989.5e12), (torch.float32, 4, 67e12)):
        report = tt.analyze(MatMul(n, dtype), (n, n), hardware=h100)
        # compute-bound on both: 3 * 4096^2 * size bytes at 3.35 TB/s is 15-30 µs, less than
        # the 139 µs (bf16) and 2.05 ms (fp32) of arithmetic; plus one 4 µs launch.
        assert 3 * n * n * size / 3350e9 < flops / peak
        times[dtype] = report.layers[0].self_estimated_time
        assert times[dtype] == pytest.approx(flops / peak + 4e-6)
        assert report.estimate is not None
        assert report.estimate.model_flops_utilization == pytest.approx(flops / times[dtype] / peak)
    assert times[torch.float32] > 10 * times[torch.bfloat16]


def test_compute_efficiency_divides_the_peak() -> None:
    slow = tt.Hardware("half", {"fp32": 1e12}, 1e11, call_overhead=0.0, compute_efficiency=0.5)
    report = tt.analyze(MatMul(N), (N, N), hardware=slow)
    assert report.layers[0].self_estimated_time == pytest.approx(2 * N**3 / 0.5e12)


def test_a_dtype_the_chip_lacks_uses_the_nearest_peak_and_says_so() -> None:
    fp32_only = tt.Hardware("old", {"fp32": 1e12}, 1e11)
    report = tt.analyze(MatMul(N, torch.bfloat16), (N, N), hardware=fp32_only)
    assert report.estimate is not None and report.estimate.substituted == {"bf16": "fp32"}
    assert report.layers[0].self_estimated_time == pytest.approx(2 * N**3 / 1e12)
    assert "No peak on old for: bf16 as fp32" in report.table()


# A CPU-like chip: every module call costs 2 µs, depthwise convolutions 50 µs a call.
CALLING = tt.Hardware("calling", {"fp32": 1e12}, 1e11, call_overhead=1e-6, module_overhead=2e-6,
                      grouped_conv_overhead=50e-6, grouped_conv_efficiency=0.1)


@pytest.mark.parametrize("chip", ["a100-sxm-80gb", CALLING])
def test_layer_times_add_up_to_the_latency_at_every_depth(chip: str | tt.Hardware) -> None:
    report = tt.analyze(resnet18(), (2, 3, 64, 64), hardware=chip)
    assert report.estimate is not None
    latency = report.estimate.latency
    assert report.layers[0].estimated_time == pytest.approx(latency)
    assert sum(layer.self_estimated_time or 0.0 for layer in report.layers) == pytest.approx(latency)
    for layer in report.layers:  # inclusive = own + children's inclusive
        below = sum(report.layers[child].estimated_time or 0.0 for child in layer.children)
        assert layer.estimated_time == pytest.approx((layer.self_estimated_time or 0.0) + below)
    for depth in range(5):
        rows = build_rows(report, ViewOptions.parse(depth=depth))
        assert sum(row.amounts.estimated_time for row in rows) == pytest.approx(latency)
    assert sum(report.estimate.by_bound.values()) == pytest.approx(latency)


def test_every_operator_is_estimated_from_its_own_figures() -> None:
    # Per operator and layer, independently of the package's code: its time on the chip from
    # its FLOPs, bytes and calls (a conv at the matrix peak, the rest at the vector peak).
    chip = tt.Hardware("plain", {"fp32": 2e12}, 2e11, vector_flops={"fp32": 1e12}, call_overhead=3e-6, view_overhead=1e-6)
    report = tt.analyze(resnet18(), (1, 3, 32, 32), hardware=chip)
    for layer in report.layers:
        if layer.children:
            continue  # leaves: their operators are their own
        expected = 0.0
        for stats in layer.operators.values():
            moved = stats.read + stats.written
            if not moved and not stats.flops:
                expected += stats.calls * 1e-6
                continue
            rate = 2e12 if stats.macs else 1e12
            expected += max(stats.flops / rate, moved / 2e11) + stats.calls * 3e-6
        assert layer.self_estimated_time == pytest.approx(expected), layer.name


class Twice(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.act(x))


def test_each_module_call_costs_the_module_overhead_in_its_own_time() -> None:
    report = tt.analyze(Twice(), (4,), hardware=CALLING)
    root, act = report.layers
    # The root: one call, no operators of its own: 2 µs. The ReLU: two calls (2 x 2 µs) and two
    # aten.relu calls of 4 elements (2 x 1 µs, plus 2 x 32 bytes at 1e11 B/s: their 4 FLOPs
    # at 1e12 take less).
    assert root.self_estimated_time == pytest.approx(2e-6)
    assert act.calls == 2 and act.self_estimated_time == pytest.approx(2 * 2e-6 + 2 * 1e-6 + 64 / 1e11)
    assert report.estimate is not None
    assert report.estimate.latency == pytest.approx(3 * 2e-6 + 2 * 1e-6 + 64 / 1e11)
    assert report.estimate.by_bound == pytest.approx({"overhead": 3 * 2e-6 + 2 * 1e-6, "memory": 64 / 1e11})
    assert root.bound == "overhead"


def test_a_depthwise_convolution_has_its_own_rate_and_fixed_cost() -> None:
    channels, side = 8, 16
    depthwise = nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False, device="meta")
    dense = nn.Conv2d(channels, channels, 3, padding=1, bias=False, device="meta")
    found = tt.analyze(depthwise, (1, channels, side, side), hardware=CALLING).layers[0]
    assert set(found.operators) == {"aten.convolution"}
    # 8 x 16 x 16 outputs of 9 MACs: 2 * 18,432 FLOPs at 10% of 1e12 = 368.6 ns, above its bytes
    # (input, 8 x 9 weights, output: (2,048 + 72 + 2,048) x 4 at 1e11 B/s = 166.7 ns); plus one
    # 50 µs grouped call and one 2 µs module call.
    flops = 2 * channels * side * side * 9
    assert flops / 1e11 > (2048 + 72 + 2048) * 4 / 1e11
    assert found.self_estimated_time == pytest.approx(flops / 1e11 + 50e-6 + 2e-6)
    # The same convolution without groups: 8 times the MACs at the full peak, a plain call.
    plain = tt.analyze(dense, (1, channels, side, side), hardware=CALLING).layers[0]
    assert plain.self_estimated_time == pytest.approx(8 * flops / 1e12 + 1e-6 + 2e-6)


def test_a_convolution_runs_at_its_sizes_share_of_the_peak() -> None:
    # 8 -> 8 channels, 3x3 at 16x16: 2 * 8*8*9 * 256 = 294,912 FLOPs a call, 8 times 36,864.
    flops = 2 * 8 * 8 * 9 * 16 * 16
    chip = tt.Hardware("curve", {"fp32": 1e12}, 1e11, conv_efficiency=((flops / 8, 0.25), (flops * 8, 1.0)))
    conv = nn.Conv2d(8, 8, 3, padding=1, bias=False, device="meta")
    found = tt.analyze(conv, (1, 8, 16, 16), hardware=chip).layers[0]
    # Its size is halfway between 8x smaller and 8x larger on the logarithm, so it reaches
    # 0.25 + (1 - 0.25) / 2 = 0.625 of the peak; compute-bound (bytes: (2,048 + 576 + 2,048) x 4
    # at 1e11 B/s = 0.19 µs, FLOPs at 0.625e12 = 0.47 µs).
    assert found.self_estimated_time == pytest.approx(flops / 0.625e12)
    # A matmul is no convolution: the full peak.
    assert tt.analyze(MatMul(N), (N, N), hardware=chip).layers[0].self_estimated_time == pytest.approx(2 * N**3 / 1e12)


class Sigmoid(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(x)


def test_transcendental_functions_run_at_their_own_rate() -> None:
    elements = 2**16
    chip = tt.Hardware("slow-exp", {"fp32": 1e12}, 1e11, vector_flops={"fp32": 5e11},
                       transcendental_flops={"fp32": 1e10})
    report = tt.analyze(Sigmoid(), (elements,), hardware=chip)
    # aten.sigmoid: 1 FLOP per element at 1e10 FLOP/s = 6.55 µs, above its 2 x 2^16 x 4 bytes
    # at 1e11 B/s = 5.24 µs (at the vector rate it would be memory-bound).
    assert elements / 1e10 > 2 * elements * 4 / 1e11 > elements / 5e11
    assert report.layers[0].self_estimated_time == pytest.approx(elements / 1e10)
    assert report.layers[0].self_bound == "compute"
    # A chip without the figure runs them at its vector rate: memory-bound here.
    plain = tt.analyze(Sigmoid(), (elements,), hardware=tt.Hardware("plain", {"fp32": 1e12}, 1e11, vector_flops={"fp32": 5e11}))
    assert plain.layers[0].self_estimated_time == pytest.approx(2 * elements * 4 / 1e11)


def test_windowed_pooling_runs_at_its_own_rate() -> None:
    chip = tt.Hardware("slow-pool", {"fp32": 1e12}, 1e11, vector_flops={"fp32": 5e11}, pooling_flops={"fp32": 1e9})
    pool = nn.MaxPool2d(3, stride=2, padding=1)
    report = tt.analyze(pool, (1, 8, 32, 32), hardware=chip)
    # 8 x 16 x 16 outputs of a 9-element window: 18,432 FLOPs at 1e9 FLOP/s = 18.4 µs, above
    # its bytes (8 x 32 x 32 x 4 read, 8 x 16 x 16 x (4 + 8) written with the indices: 0.57 µs).
    flops = 8 * 16 * 16 * 9
    assert report.layers[0].self_estimated_time == pytest.approx(flops / 1e9)
    # A global mean is a reduction, not a windowed pooling: at the vector rate.
    mean = tt.analyze(nn.AdaptiveAvgPool2d(1), (1, 8, 32, 32), hardware=chip)
    assert mean.layers[0].self_estimated_time < flops / 1e9 / 10


def test_the_backward_calls_no_modules() -> None:
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU())
    free = tt.Hardware("free", {"fp32": 1e12}, 1e11)
    calling = tt.Hardware("calling", {"fp32": 1e12}, 1e11, module_overhead=1e-3)
    first, second = (tt.analyze(model, (8, 64), training=True, hardware=chip).estimate for chip in (free, calling))
    assert first is not None and second is not None and first.backward is not None
    assert second.backward == pytest.approx(first.backward)
    assert second.latency == pytest.approx(first.latency + 3e-3)  # three module calls in the forward


def test_training_splits_forward_backward_and_the_optimizer_step() -> None:
    model = nn.Sequential(nn.Linear(256, 512), nn.ReLU(), nn.Linear(512, 10))
    chip = tt.Hardware("plain", {"fp32": 1e12}, 1e11, call_overhead=0.0)
    report = tt.analyze(model, (64, 256), training=True, optimizer="adam", hardware=chip)
    found = report.estimate
    assert found is not None and found.backward is not None and found.optimizer_step is not None
    assert found.step == pytest.approx(found.latency + found.backward + found.optimizer_step)
    # The backward of each Linear is two matmuls of its forward's size (weight and input
    # gradients; the first layer's input needs none): it takes longer than the forward.
    assert found.backward > found.latency
    # Adam, by its traffic: parameters and state read and written, gradients read, for P
    # parameter bytes: 2*P + P + 2*(2P + 16), its state being two moments and a float32 step
    # counter for each of the 4 tensors; its FLOPs take less time than its bytes.
    params = sum(p.numel() * 4 for p in model.parameters())
    assert found.optimizer_step == pytest.approx((3 * params + 2 * (2 * params + 4 * 4)) / 1e11)


def test_an_operator_with_neither_flops_nor_bytes_is_unestimated_not_free() -> None:
    roofline = Roofline(CHIP)
    assert roofline.op("my.op", tt.OpStats(calls=3, macs=0, flops=0, uncounted=3, read=0, written=0)) is None
    assert roofline.unestimated == {"my.op": 3}
    # Without a formula but with bytes: timed from them alone, and said so.
    found = roofline.op("my.other", tt.OpStats(calls=1, macs=0, flops=0, uncounted=1, read=10**6, written=10**6))
    assert found is not None and found.seconds == pytest.approx(2e6 / 1e11 + 1e-6) and found.bound == "memory"
    assert roofline.bytes_only == {"my.other": 1}


def test_collectives_take_network_time_and_waits_none() -> None:
    chip = tt.hardware("h100-sxm")  # NVLink: 900 GB/s
    roofline = Roofline(chip)
    # an all-reduce reading and writing 1 MB: 2e6 bytes over the link, plus one 4 µs launch
    found = roofline.op("_c10d_functional.all_reduce", tt.OpStats(1, 0, 0, 0, 10**6, 10**6, "float32"))
    assert found is not None and found.bound == "network" and found.seconds == pytest.approx(2e6 / 900e9 + 4e-6)
    wait = roofline.op("_c10d_functional.wait_tensor", tt.OpStats(1, 0, 0, 0, 10**6, 10**6, "float32"))
    assert wait is not None and wait.seconds == 0.0  # the catalog's view_overhead


def test_timing_puts_the_measurement_beside_the_estimate() -> None:
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU())
    chip = tt.hardware("l4")
    report = tt.analyze(model, (8, 64), timing=tt.TimingOptions(warmup=1, repeats=3), hardware=chip)
    assert report.timing is not None and report.estimate is not None
    measured = report.timing.latency_median
    assert report.estimate.measured_latency == measured
    # MFU: forward FLOPs (2 * 8*64*64 for the matmul + 8*64 for the relu) per second, over L4's fp32 peak.
    flops = 2 * 8 * 64 * 64 + 8 * 64
    assert report.total_flops == flops
    assert report.estimate.measured_mfu == pytest.approx(flops / measured / 30.3e12)
    assert "Measured forward here" in report.table()


def test_a_report_with_an_estimate_matches_the_schema() -> None:
    validator = jsonschema.Draft202012Validator(report_schema())
    for report in (
        tt.analyze(resnet18(), (1, 3, 32, 32), hardware="h100-sxm"),
        tt.analyze(nn.Linear(8, 4), (2, 8), training=True, optimizer="sgd", hardware="mi300x"),
        tt.analyze(nn.Linear(8, 4), (2, 8)),
    ):
        data = json.loads(report.to_json())
        validator.validate(data)
        if report.estimate is not None:
            assert data["estimate"]["latency"] == report.estimate.latency
            assert data["layers"][0]["estimated_time"] == report.layers[0].estimated_time


def test_estimate_time_re_estimates_a_report_on_another_chip() -> None:
    report = tt.analyze(MatMul(N), (N, N), hardware=CHIP)
    faster = tt.estimate_time(report, tt.Hardware("x4", {"fp32": 4e12}, 1e11, call_overhead=1e-6))
    assert faster.layers[0].self_estimated_time == pytest.approx(2 * N**3 / 4e12 + 1e-6)
    assert faster.total_flops == report.total_flops
    with pytest.raises(tt.InputError, match="estimate_time\\(\\) takes a ModelReport"):
        tt.estimate_time("report", CHIP)  # type: ignore[arg-type]
    with pytest.raises(tt.InputError, match="hardware must be a name"):
        tt.analyze(MatMul(8), (8, 8), hardware=3)  # type: ignore[arg-type]


def test_columns_csv_and_compare_carry_the_estimate() -> None:
    report = tt.analyze(resnet18(), (1, 3, 32, 32), hardware="h100-sxm")
    text = report.table(depth=1)
    assert "Est. time" in text and "Bound" in text and "Estimated time on h100-sxm" in text
    rows = list(csv.DictReader(io.StringIO(report.to_csv())))
    assert float(rows[0]["estimated_time"]) == report.layers[0].estimated_time
    assert rows[1]["self_bound"] == report.layers[1].self_bound
    table = tt.compare([("resnet18", report), ("resnet18", tt.estimate_time(report, "l4"))])
    assert table.column("hardware") == ["h100-sxm", "l4"]
    assert table.column("est_latency")[1] == tt.estimate_time(report, "l4").estimate.latency  # type: ignore[union-attr]
    plain = tt.compare({"resnet18": tt.analyze(resnet18(), (1, 3, 32, 32))})
    assert "hardware" not in plain.columns


def test_command_line_hardware(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["resnet18", "--input-size", "1", "3", "32", "32", "--depth", "1", "--hardware", "h100-sxm"]) == 0
    out = capsys.readouterr().out
    assert "Est. time" in out and "Estimated time on h100-sxm (datasheet figures" in out
    argv = ["compare", "resnet18", "--input-size", "1", "3", "32", "32", "--hardware", "a100-sxm-80gb", "l4", "-f", "json"]
    assert main(argv) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert [row["hardware"] for row in rows] == ["a100-sxm-80gb", "l4"]
    assert main(["resnet18", "--hardware", "h100"]) == 2
    assert "did you mean 'h100-sxm'" in capsys.readouterr().err
