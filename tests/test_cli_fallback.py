"""The command line's real build for a model whose forward reads values its layers compute
(cli/fallback.py): built on the meta device by default, such a model is built again on the
CPU and run for real, when the user chose no device, allowed a real run and its weights fit."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from torchtally.cli import fallback, main
from torchtally.cli.errors import EXIT_ANALYSIS_FAILED, EXIT_OK

# The branch depends on a value the model computes (finite on any real weights), so a fake
# run cannot take it. For a 3 x 4 input, by hand:
#   MACs = score 3*4*1 + wide 3*4*8 = 12 + 96 = 108 (the narrow branch, 3*4*2 = 24, is not run)
#   params = score (4 + 1) + wide (32 + 8) + narrow (8 + 2) = 5 + 40 + 10 = 55
GATED_SOURCE = textwrap.dedent(
    """
    import torch
    from torch import nn

    class Gated(nn.Module):
        def __init__(self):
            super().__init__()
            self.score = nn.Linear(4, 1)
            self.wide = nn.Linear(4, 8)
            self.narrow = nn.Linear(4, 2)

        def forward(self, x):
            if torch.isfinite(self.score(x).sum()):
                return self.wide(x)
            return self.narrow(x)
    """
)
GATED_MACS, GATED_PARAMS = 108, 55


@pytest.fixture
def gated(tmp_path: Path) -> str:
    path = tmp_path / "gated.py"
    path.write_text(GATED_SOURCE)
    return f"{path}:Gated"


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_a_model_reading_computed_values_is_built_again_and_run_for_real(
    gated: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "report.json"
    code, _, err = _cli(capsys, gated, "--input-size", "3x4", "--output", str(output))
    assert code == EXIT_OK, err
    assert "built again on the CPU with random weights" in err and gated in err
    report = json.loads(output.read_text())
    assert report["execution"] == "real" and report["device"] == "cpu"
    assert report["totals"]["macs"] == GATED_MACS
    assert report["totals"]["params"] == GATED_PARAMS


@pytest.mark.parametrize("flags", [("--device", "meta"), ("--run", "fake")], ids=["device-chosen", "run-fake"])
def test_no_real_build_when_the_user_chose_the_device_or_a_fake_run(
    gated: str, flags: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _cli(capsys, gated, "--input-size", "3x4", *flags)
    assert code == EXIT_ANALYSIS_FAILED
    assert "needs real values" in err and "built again" not in err
    assert len(err.strip().splitlines()) == 1, err


def test_weights_past_the_memory_budget_keep_the_error(
    gated: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The model's weights: 55 float32 parameters = 220 bytes; a budget of 219 refuses them.
    monkeypatch.setattr(fallback, "memory_budget", lambda: GATED_PARAMS * 4 - 1)
    code, _, err = _cli(capsys, gated, "--input-size", "3x4")
    assert code == EXIT_ANALYSIS_FAILED
    assert "220 B of weights, more than a quarter of this machine's memory" in err
    assert "--device cpu" in err and "built again" not in err


def test_a_model_that_runs_on_the_meta_device_is_built_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    builds = []
    real_build = fallback.build
    monkeypatch.setattr(fallback, "build", lambda spec, options: builds.append(options.device.type) or real_build(spec, options))
    path = tmp_path / "plain.py"
    path.write_text(GATED_SOURCE.replace("if torch.isfinite(self.score(x).sum()):", "if True:"))
    code, _, err = _cli(capsys, f"{path}:Gated", "--input-size", "3x4")
    assert code == EXIT_OK, err
    assert builds == ["meta"] and "built again" not in err


def test_weight_bytes_counts_a_shared_tensor_once() -> None:
    from torch import nn

    shared = nn.Linear(4, 4, bias=False)  # 16 float32 = 64 bytes
    model = nn.Sequential(shared, shared, nn.BatchNorm1d(4))  # + 4 + 4 params, 4 + 4 + 1 buffers
    # 64 + (4 + 4) * 4 (weight, bias) + (4 + 4) * 4 (running mean, var) + 8 (num_batches_tracked: int64)
    assert fallback.weight_bytes(model) == 64 + 32 + 32 + 8
