"""The hardware catalog (dense datasheet figures), `tt.Hardware` validation, and
`tt.calibrate` on the machine at hand."""

from __future__ import annotations

import math

import pytest

import torchtally as tt

T = 1e12
GB = 1e9

NAMED_IN_THE_ISSUE = (
    "a100-sxm-40gb", "a100-sxm-80gb", "a100-pcie-80gb", "h100-sxm", "h100-pcie", "h200", "b200", "l4", "l40s",
    "rtx-4090", "rtx-3090", "mi300x",
)


def test_the_catalog_has_every_chip_the_issue_names() -> None:
    names = tt.hardware_names()
    assert set(NAMED_IN_THE_ISSUE) <= set(names)
    assert "local" in names  # this machine, calibrated
    for name in NAMED_IN_THE_ISSUE:
        chip = tt.hardware(name)
        assert chip.name == name and chip.source == "datasheet"
        assert chip.memory_bandwidth > 0 and chip.memory_bytes is not None and chip.pcie_bandwidth is not None
        assert {"fp32", "bf16", "fp16"} <= set(chip.peak_flops)


@pytest.mark.parametrize(
    ("name", "dtype", "sparse_datasheet_figure"),
    [
        # The datasheets' tensor-core figures "with sparsity" are twice the dense ones.
        ("h100-sxm", "bf16", 1979 * T),  # H100 SXM: 1,979 TFLOP/s with sparsity -> 989 dense
        ("h100-sxm", "fp8", 3958 * T),
        ("h100-sxm", "tf32", 989 * T),
        ("h100-pcie", "bf16", 1513 * T),
        ("h200", "bf16", 1979 * T),
        ("a100-sxm-80gb", "bf16", 624 * T),  # A100: 312 dense, 624 sparse
        ("a100-sxm-80gb", "int8", 1248 * T),
        ("l4", "fp16", 242 * T),
        ("l40s", "bf16", 733 * T),
        ("b200", "bf16", 4500 * T),
        ("mi300x", "bf16", 2614.9 * T),  # AMD prints both: 1,307.4 dense, 2,614.9 with sparsity
    ],
)
def test_peaks_are_dense_figures(name: str, dtype: str, sparse_datasheet_figure: float) -> None:
    assert tt.hardware(name).peak_flops[dtype] == pytest.approx(sparse_datasheet_figure / 2, rel=0.01)


def test_h100_sxm_figures() -> None:
    chip = tt.hardware("h100-sxm")
    assert chip.peak_flops["bf16"] == pytest.approx(989e12, rel=0.001)  # never 1,979 (sparsity)
    assert chip.peak_flops["fp32"] == 67 * T  # plain FP32 (PyTorch's default: no TF32)
    assert chip.memory_bandwidth == 3350 * GB
    assert chip.memory_bytes == 80 * 2**30
    assert chip.interconnect_bandwidth == 900 * GB  # NVLink
    assert chip.pcie_bandwidth == 128 * GB  # PCIe Gen5


def test_chips_without_a_dtype_leave_it_out() -> None:
    assert "fp8" not in tt.hardware("a100-sxm-80gb").peak_flops  # Ampere has no FP8 tensor cores
    assert "fp8" not in tt.hardware("rtx-3090").peak_flops


def test_names_are_forgiving_about_case_and_separators() -> None:
    assert tt.hardware("H100_SXM").name == "h100-sxm"


@pytest.mark.parametrize(("wrong", "suggested"), [("h100", "h100-sxm"), ("a100-80gb", "a100-sxm-80gb"), ("mi300", "mi300x")])
def test_unknown_names_get_close_matches(wrong: str, suggested: str) -> None:
    with pytest.raises(tt.InputError, match=rf"unknown hardware '{wrong}'.*did you mean.*'{suggested}'"):
        tt.hardware(wrong)


def test_a_name_must_be_a_string() -> None:
    with pytest.raises(tt.InputError, match="hardware name must be a string"):
        tt.hardware(3)  # type: ignore[arg-type]


def test_efficiency_scales_the_rates() -> None:
    chip = tt.hardware("a100-sxm-80gb", compute_efficiency=0.5, memory_efficiency=0.8)
    assert chip.matrix_rate("bf16") == 156 * T  # 312 x 0.5
    assert chip.vector_rate("bf16") == 19.5 * T  # the non-tensor 39 x 0.5
    assert chip.bandwidth == pytest.approx(2039 * GB * 0.8)
    assert chip.peak_flops["bf16"] == 312 * T  # the datasheet figure itself is kept


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"peak_flops": {}}, "peak_flops needs at least one"),
        ({"peak_flops": {"float32": 1e12}}, "'float32' is not a dtype name"),
        ({"peak_flops": {"fp32": -1.0}}, r"peak_flops\['fp32'\] must be a positive number"),
        ({"memory_bandwidth": 0}, "memory_bandwidth must be a positive number"),
        ({"call_overhead": -1e-6}, "call_overhead must be a number of seconds >= 0"),
        ({"module_overhead": -1e-6}, "module_overhead must be a number of seconds >= 0"),
        ({"grouped_conv_overhead": math.inf}, "grouped_conv_overhead must be a number of seconds >= 0"),
        ({"grouped_conv_efficiency": 2.0}, r"grouped_conv_efficiency is the fraction of the peak reached"),
        ({"transcendental_flops": {"fp32": 0}}, r"transcendental_flops\['fp32'\] must be a positive number"),
        ({"pooling_flops": {"int4": 1e9}}, "pooling_flops: 'int4' is not a dtype name"),
        ({"conv_efficiency": ((1e6, 1.5),)}, r"conv_efficiency must be pairs \(FLOPs per call, fraction"),
        ({"conv_efficiency": ((0, 0.5),)}, "conv_efficiency size must be a positive number"),
        ({"compute_efficiency": 1.5}, r"compute_efficiency is the fraction of the peak reached, in \(0, 1\]"),
        ({"memory_efficiency": math.nan}, "memory_efficiency must be a positive number"),
        ({"name": ""}, "name must be a non-empty string"),
    ],
)
def test_hardware_rejects_bad_figures(changes: dict[str, object], message: str) -> None:
    figures: dict[str, object] = {"name": "mine", "peak_flops": {"fp32": 1e12}, "memory_bandwidth": 1e11}
    figures.update(changes)
    with pytest.raises(tt.InputError, match=message):
        tt.Hardware(**figures)  # type: ignore[arg-type]


def test_a_convolution_reaches_the_share_of_the_peak_its_size_does() -> None:
    chip = tt.Hardware("curve", {"fp32": 1e12}, 1e11, conv_efficiency=((1e6, 0.5), (1e8, 0.9)))
    assert chip.conv_fraction(1e5) == 0.5  # held below the smallest size measured
    assert chip.conv_fraction(1e6) == 0.5
    assert chip.conv_fraction(1e7) == pytest.approx(0.7)  # halfway on the logarithm: 0.5 + (0.9 - 0.5) / 2
    assert chip.conv_fraction(1e8) == 0.9
    assert chip.conv_fraction(1e10) == 0.9  # held above the largest


def test_gpus_charge_kernel_launches_not_python() -> None:
    for name in NAMED_IN_THE_ISSUE:
        chip = tt.hardware(name)
        # The module's Python runs on the CPU while queued kernels run: not charged on a GPU.
        assert chip.module_overhead == 0
        # A depthwise convolution is one more kernel launch, at the matrix peak (memory-bound there anyway).
        assert chip.grouped_conv_call == chip.call_overhead == 4e-6 and chip.grouped_conv_efficiency == 1
        # Transcendentals at the vector rate: H100's 3.35 TB/s moves 0.42 T fp32 elements/s
        # (read and write), far below even a quarter of its vector FLOP/s.
        assert chip.transcendental_rate("fp32") == chip.vector_rate("fp32")
        assert chip.pooling_rate("fp32") == chip.vector_rate("fp32")  # a few FLOPs per byte: memory-bound
        assert chip.conv_efficiency == () and chip.conv_fraction(1e3) == 1.0  # no size curve measured


def test_own_hardware_round_trips_through_to_dict() -> None:
    chip = tt.Hardware("mine", {"fp32": 2e12, "bf16": 8e12}, 5e11, memory_bytes=2**34, call_overhead=2e-6,
                       module_overhead=3e-6, transcendental_flops={"fp32": 1e9}, pooling_flops={"bf16": 2e9},
                       conv_efficiency=[(1e8, 0.9), (1e6, 0.5)],
                       grouped_conv_overhead=5e-5,
                       grouped_conv_efficiency=0.2)
    data = chip.to_dict()
    assert data["peak_flops"] == {"fp32": 2e12, "bf16": 8e12}
    assert data["memory_bandwidth"] == 5e11 and data["call_overhead"] == 2e-6 and data["source"] == "user"
    assert data["module_overhead"] == 3e-6 and data["transcendental_flops"] == {"fp32": 1e9}
    assert data["pooling_flops"] == {"bf16": 2e9}
    assert data["conv_efficiency"] == [[1e6, 0.5], [1e8, 0.9]]  # sorted by size
    assert data["grouped_conv_overhead"] == 5e-5 and data["grouped_conv_efficiency"] == 0.2
    assert tt.Hardware(**{k: v for k, v in data.items()}).to_dict() == data


def test_calibrate_measures_this_machine() -> None:
    chip = tt.calibrate("cpu", quick=True)
    assert chip.source == "calibrated" and chip.name == "local (cpu)"
    # Sane, not exact: any CPU that runs the suite does more than 10 MFLOP/s and moves more
    # than 10 MB/s; one tiny operator call costs less than a millisecond.
    assert chip.peak_flops["fp32"] > 1e7 and chip.vector_flops["fp32"] > 1e7
    assert chip.memory_bandwidth > 1e7
    assert 0 < chip.call_overhead < 1e-3 and 0 < chip.view_overhead < 1e-3
    # A module call costs Python beyond its operator; a depthwise convolution a fixed cost and
    # some fraction of the peak; exp and its kin some positive rate (each CPU its own).
    assert 0 < chip.module_overhead < 1e-3 and 0 < chip.grouped_conv_call < 0.1
    assert 0 < chip.grouped_conv_efficiency <= 1 and chip.transcendental_flops["fp32"] > 1e6
    assert chip.pooling_flops["fp32"] > 1e6
    # Two convolution sizes at least (quick: the 3x3 and the small 1x1), each a share of the peak.
    assert len(chip.conv_efficiency) >= 2 and all(0 < fraction <= 1 for _, fraction in chip.conv_efficiency)
    assert tt.calibrate("cpu", quick=True) is chip  # kept for the process


def test_calibrate_rejects_devices_it_cannot_measure() -> None:
    with pytest.raises(tt.InputError, match="measures a CPU or a CUDA device"):
        tt.calibrate("meta")
    with pytest.raises(tt.InputError, match="not a device torch knows"):
        tt.calibrate("nowhere")
