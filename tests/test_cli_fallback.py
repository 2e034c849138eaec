"""The command line's real build for a model whose forward reads values its layers compute
(cli/fallback.py): built on the meta device by default, a library model (torchvision, timm,
Hugging Face) is built again on the CPU, seeded, and run for real, when the user chose no
device, run or layout that rules that out and its weights fit. The user-code models here
stand in for library models (``library`` fixture): they build in milliseconds."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from torchtally.cli import fallback, main
from torchtally.cli.errors import EXIT_ANALYSIS_FAILED, EXIT_OK, EXIT_USAGE
from torchtally.cli.models import BuiltModel, ModelOptions, names_library_model
from test_cli import error_line

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


@pytest.fixture
def library(monkeypatch: pytest.MonkeyPatch) -> None:
    """User code taken for a library model, which alone the command line builds twice."""
    monkeypatch.setattr(fallback, "names_library_model", lambda spec, options: True)


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The device of every build the fallback makes."""
    made: list[str] = []
    real_build = fallback.build

    def build(spec: str, options: ModelOptions) -> BuiltModel:
        made.append(options.device.type)
        return real_build(spec, options)

    monkeypatch.setattr(fallback, "build", build)
    return made


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[dict[str, Any], str]:
    code, out, err = _cli(capsys, *argv, "--format", "json")
    assert code == EXIT_OK, err
    return json.loads(out), err


@pytest.mark.usefixtures("library")
def test_a_library_model_reading_computed_values_is_built_again_and_run_for_real(
    gated: str, builds: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    report, err = _json(capsys, gated, "--input-size", "3x4")
    assert builds == ["meta", "cpu"]
    assert "built again on the CPU with random weights (seed 0" in err and gated in err
    assert report["execution"] == "real" and report["device"] == "cpu"
    assert "built it again on the CPU with random weights (seed 0)" in report["fallback_reason"]
    assert report["totals"]["macs"] == GATED_MACS
    assert report["totals"]["params"] == GATED_PARAMS


# The branch taken follows the random weights: positive or not, score's summed weight.
# By hand for a 3 x 4 input: wide 3*4*8 = 96 MACs, narrow 3*4*2 = 24.
SEEDED_SOURCE = GATED_SOURCE.replace("if torch.isfinite(self.score(x).sum()):", "if self.score.weight.sum() > 0:")


@pytest.mark.usefixtures("library")
def test_the_real_build_is_seeded_so_every_run_counts_the_same(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "seeded.py"
    path.write_text(SEEDED_SOURCE)
    namespace: dict[str, Any] = {}
    exec(SEEDED_SOURCE, namespace)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(fallback.SEED)
        expected = 96 if namespace["Gated"]().score.weight.sum() > 0 else 24  # the branch those weights take
    state = torch.get_rng_state()
    runs = [_json(capsys, f"{path}:Gated", "--input-size", "3x4")[0] for _ in range(4)]  # unseeded: 1 in 16 would pass
    assert [run["totals"]["macs"] for run in runs] == [expected] * 4  # score's weight is summed, the layer not run
    assert torch.equal(torch.get_rng_state(), state)  # the seed was the build's, not the process's


def test_user_code_is_not_built_twice(gated: str, builds: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _cli(capsys, gated, "--input-size", "3x4")
    assert code == EXIT_ANALYSIS_FAILED and builds == ["meta"]
    assert "needs real values" in error_line(err) and "--device cpu" in err


@pytest.mark.usefixtures("library")
@pytest.mark.parametrize(
    "flags", [("--device", "meta"), ("--run", "fake"), ("--fsdp", "2")], ids=["device-chosen", "run-fake", "layout"]
)
def test_no_real_build_when_the_user_chose_a_device_a_fake_run_or_a_layout(
    gated: str, flags: tuple[str, str], builds: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _cli(capsys, gated, "--input-size", "3x4", *flags)
    assert code == EXIT_ANALYSIS_FAILED and builds == ["meta"]
    line = error_line(err)
    assert "real values" in line and "built again" not in err
    assert "run='auto'" not in line  # the Python API's words are not the command line's


def test_run_real_without_a_device_says_to_build_real_tensors(gated: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _cli(capsys, gated, "--input-size", "3x4", "--run", "real")
    assert code == EXIT_USAGE and "--device cpu" in error_line(err)


@pytest.mark.usefixtures("library")
def test_weights_past_the_memory_budget_keep_the_error(
    gated: str, builds: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The model's weights: 55 float32 parameters = 220 bytes; a budget of 219 refuses them.
    monkeypatch.setattr(fallback, "memory_budget", lambda: GATED_PARAMS * 4 - 1)
    code, _, err = _cli(capsys, gated, "--input-size", "3x4")
    assert code == EXIT_ANALYSIS_FAILED and builds == ["meta"]
    assert "would hold 220 B of weights, more than the quarter of this machine's memory (219 B)" in error_line(err)


@pytest.mark.usefixtures("library")
def test_a_training_analysis_budgets_gradients_and_optimizer_state(
    gated: str, builds: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # 220 B of weights fit in 500 B, but not with Adam: weights, gradients and two states = 4 * 220 = 880 B.
    monkeypatch.setattr(fallback, "memory_budget", lambda: 500)
    code, _, err = _cli(capsys, gated, "--input-size", "3x4", "--optimizer", "adam")
    assert code == EXIT_ANALYSIS_FAILED and builds == ["meta"]
    assert "880 B of weights and training state" in error_line(err)
    report, _ = _json(capsys, gated, "--input-size", "3x4")
    assert report["execution"] == "real"


@pytest.mark.usefixtures("library")
def test_a_real_build_that_fails_names_both_causes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "picky.py"
    path.write_text(GATED_SOURCE.replace(
        "super().__init__()", "super().__init__()\n        if torch.empty(0).device.type != 'meta': raise RuntimeError('only on meta')"
    ))
    code, _, err = _cli(capsys, f"{path}:Gated", "--input-size", "3x4")
    assert code == EXIT_ANALYSIS_FAILED, err
    line = error_line(err)
    assert "needs real values" in line and "building it on the CPU to run it for real failed" in line and "only on meta" in line
    assert "built again" not in err  # no note for a build that did not happen


def test_a_model_that_runs_on_the_meta_device_is_built_once(
    tmp_path: Path, builds: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "plain.py"
    path.write_text(GATED_SOURCE.replace("if torch.isfinite(self.score(x).sum()):", "if True:"))
    code, _, err = _cli(capsys, f"{path}:Gated", "--input-size", "3x4")
    assert code == EXIT_OK, err
    assert builds == ["meta"] and "built again" not in err


@pytest.mark.parametrize(
    ("spec", "library_model"),
    [("hf:bert", True), ("timm:resnet18", True), ("torchvision:resnet18", True), ("resnet18", True), ("bert", True),
     ("config.json", True), ("net.py:Net", False), ("package.module:make", False), ("model.pt", False), ("prog.pt2", False)],
)
def test_which_models_are_library_models(spec: str, library_model: bool) -> None:
    assert names_library_model(spec, ModelOptions()) is library_model
    assert names_library_model(spec, ModelOptions(weights="w.safetensors")) is False  # loaded weights: not random
    assert names_library_model(spec, ModelOptions(args={"pretrained": True})) is False


def test_weight_bytes_counts_a_shared_tensor_once() -> None:
    shared = nn.Linear(4, 4, bias=False)  # 16 float32 = 64 bytes
    model = nn.Sequential(shared, shared, nn.BatchNorm1d(4))  # + 4 + 4 params, 4 + 4 + 1 buffers
    # 64 + (4 + 4) * 4 (weight, bias) + (4 + 4) * 4 (running mean, var) + 8 (num_batches_tracked: int64)
    assert fallback.weight_bytes(model) == 64 + 32 + 32 + 8


def test_the_budget_is_a_quarter_of_a_container_limit_when_lower(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    limit = tmp_path / "memory.max"
    limit.write_text("4000\n")
    monkeypatch.setattr(fallback, "_CGROUP_LIMITS", (str(tmp_path / "absent"), str(limit)))
    assert fallback.memory_budget() == 1000
    limit.write_text("max\n")  # no limit: the machine's memory
    assert fallback.memory_budget() > 1000


TINY_LM_SOURCE = textwrap.dedent(
    """
    import torch
    from torch import nn
    from transformers import DynamicCache
    from transformers.modeling_outputs import CausalLMOutputWithPast

    class TinyLM(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(32, 8)
            self.k = nn.Linear(8, 8)
            self.out = nn.Linear(8, 32)

        def forward(self, input_ids, past_key_values=None, use_cache=True, **kwargs):
            h = self.emb(input_ids)
            past_key_values = DynamicCache() if past_key_values is None else past_key_values
            keys, _ = past_key_values.update(self.k(h).unsqueeze(1), self.k(h).unsqueeze(1), 0)
            h = h + keys.mean(2)
            if h.sum() > 0:  # reads a computed value
                h = h * 2
            return CausalLMOutputWithPast(logits=self.out(h), past_key_values=past_key_values)
    """
)


@pytest.mark.usefixtures("library")
def test_generate_says_its_runs_are_fake_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("transformers")
    path = tmp_path / "lm.py"
    path.write_text(TINY_LM_SOURCE)
    code, _, err = _cli(capsys, f"{path}:TinyLM", "--generate", "4+2")
    assert code == EXIT_ANALYSIS_FAILED
    line = error_line(err)
    assert "--generate runs prefill and decode on fake tensors only" in line and "TinyLM" in line
    assert "run='auto'" not in line
