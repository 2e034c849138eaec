"""The estimate beside the measurement, on a GPU (skipped where there is none)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import torchtally as tt

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _chain() -> nn.Module:
    # 1024-wide layers: every tensor is a multiple of 512 bytes, so the caching allocator's
    # rounding does not separate the measurement from the estimate.
    return nn.Sequential(*(nn.Linear(1024, 1024, bias=False) for _ in range(4))).cuda()


def test_real_cuda_run_reports_the_measured_peak_beside_the_estimate() -> None:
    model = _chain()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    report = tt.analyze(model, (256, 1024), run="real")
    measured = report.memory.measured_peak
    assert measured is not None
    # The measurement also holds what the estimate leaves out (cuBLAS workspaces); it cannot be smaller.
    assert report.memory.peak <= measured <= report.memory.peak * 1.10 + 8 * 2**20


def test_fake_runs_and_known_higher_marks_report_no_measurement() -> None:
    model = _chain()
    assert tt.analyze(model, (256, 1024)).memory.measured_peak is None  # fake: nothing was allocated
    hog = torch.empty(512 * 2**20, dtype=torch.uint8, device="cuda")
    del hog  # a high-water mark above anything the run will reach
    assert tt.analyze(model, (8, 1024), run="real").memory.measured_peak is None
