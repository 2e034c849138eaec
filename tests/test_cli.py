"""The command line: every MODEL form, every format (parsed back and checked against the API's
numbers for the same model), budgets and exit codes, the pickle refusal, and the error lines.

Most tests call the entry point in-process (``main(argv)`` with capsys); the few that need a
real process (the ``torchtally`` script, ``python -m torchtally``, exit codes as the shell
sees them) are started together, in parallel, by one fixture."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import torch

import torchtally as tt
from torchtally.cli import main
from torchtally.cli.budgets import parse_bytes, parse_count
from torchtally.cli.errors import EXIT_ANALYSIS_FAILED, EXIT_BUDGET, EXIT_OK, EXIT_USAGE

torchvision = pytest.importorskip("torchvision")

RESNET18_PARAMS = 11_689_512  # torchvision's documented count (ResNet18_Weights.IMAGENET1K_V1.meta["num_params"])

# A tiny model for user-code forms. With width=16 and a 3x4 input, by hand:
#   params = fc1 (4*16 + 16) + fc2 (16*2 + 2) = 80 + 34 = 114
#   MACs   = fc1 3*4*16 + fc2 3*16*2 = 192 + 96 = 288
#   FLOPs  = 2 * 288 + relu on 3*16 elements = 576 + 48 = 624 (bias adds are the matmul's initial value)
NET_SOURCE = textwrap.dedent(
    """
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self, width: int = 8):
            super().__init__()
            self.fc1 = nn.Linear(4, width)
            self.fc2 = nn.Linear(width, 2)

        def forward(self, x):
            return self.fc2(torch.relu(self.fc1(x)))

    def make_net(width: int = 8):
        return Net(width)

    not_a_model = 3
    """
)
NET_PARAMS, NET_MACS, NET_FLOPS = 114, 288, 624


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def error_line(err: str) -> str:
    """The one line an error prints (and check that it is one line)."""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("torchtally: "), err
    return lines[0]


def footer_number(text: str, label: str) -> int:
    """``Total params: 11,689,512 (44.59 MiB)`` -> 11689512 (text and markdown footers)."""
    match = re.search(rf"{label}: (?:[\d.]+ [KMGT] \()?([\d,]+)", text)
    assert match is not None, f"no {label!r} in:\n{text}"
    return int(match.group(1).replace(",", ""))


@pytest.fixture(scope="module")
def resnet18_report() -> tt.ModelReport:
    with torch.device("meta"):
        model = torchvision.models.resnet18()
    return tt.analyze(model, (1, 3, 224, 224))


@pytest.fixture
def net_file(tmp_path: Path) -> Path:
    path = tmp_path / "net.py"
    path.write_text(NET_SOURCE)
    return path


def net_report(width: int = 16, batch: int = 3) -> tt.ModelReport:
    namespace: dict[str, Any] = {}
    exec(NET_SOURCE, namespace)  # the same source, built by the API
    return tt.analyze(namespace["Net"](width), (batch, 4))


# -- real processes, started together -------------------------------------------------------

SCRIPT = Path(sys.executable).with_name("torchtally")


@pytest.fixture(scope="module")
def processes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, subprocess.CompletedProcess[str]]:
    folder = tmp_path_factory.mktemp("cli")
    (folder / "net.py").write_text(NET_SOURCE)
    # Pickles name their classes by module: import net.py as `net`, which the CLI process can
    # import from its working directory.
    spec = importlib.util.spec_from_file_location("net", folder / "net.py")
    assert spec is not None and spec.loader is not None
    net = importlib.util.module_from_spec(spec)
    sys.modules["net"] = net
    try:
        spec.loader.exec_module(net)
        # A whole pickled model whose unpickling would also create a file: the marker proves
        # that nothing in the file ran when the CLI refused it.
        marker = folder / "pickle-ran"
        torch.save({"payload": _Payload(str(marker)), "model": net.Net(16)}, folder / "evil.pt")
        torch.save(net.Net(16), folder / "model.pt")
    finally:
        del sys.modules["net"]
    script = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "torchtally"]
    module = [sys.executable, "-m", "torchtally"]
    commands = {
        "json": script + ["resnet18", "--format", "json"],
        "compare_csv": module + ["compare", "squeezenet1_1", "mobilenet_v2", "--format", "csv", "--progress"],
        "version": script + ["--version"],
        "unknown": script + ["resnet19"],
        "budget": module + ["torchvision:resnet18", "--max-macs", "1G", "--max-params", "20M", "--output", "out.json"],
        "evil": script + ["evil.pt", "--input-size", "3", "4"],
        "trusted": module + ["model.pt", "--trust-pickle", "--input-size", "3", "4", "--format", "markdown"],
        "user_file": script + ["net.py:Net", "--arg", "width=16", "--input-size", "3x4", "--format", "csv"],
    }
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "COLUMNS": "200"}
    started = {
        name: subprocess.Popen(command, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name, command in commands.items()
    }
    done = {}
    for name, process in started.items():
        out, err = process.communicate(timeout=300)
        done[name] = subprocess.CompletedProcess(process.args, process.returncode, out, err)
    done["marker"] = subprocess.CompletedProcess([], int(marker.exists()), "", "")
    done["folder"] = subprocess.CompletedProcess([], 0, str(folder), "")
    return done


class _Payload:
    """Unpickling this opens (creates) a file: what a malicious checkpoint could do."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return open, (self.path, "w")


def test_script_prints_json_with_the_api_numbers(processes: dict[str, Any], resnet18_report: tt.ModelReport) -> None:
    done = processes["json"]
    assert done.returncode == EXIT_OK, done.stderr
    data = json.loads(done.stdout)
    assert data["totals"]["params"] == RESNET18_PARAMS
    assert data["totals"]["macs"] == resnet18_report.total_macs
    assert data["totals"]["flops"] == resnet18_report.total_flops
    assert data["memory"]["peak"] == resnet18_report.memory.peak
    assert [layer["name"] for layer in data["layers"]] == [layer.name for layer in resnet18_report.layers]
    assert data["inputs"][0]["shape"] == [1, 3, 224, 224]  # the weights' transforms: 224 crop


def test_python_m_compare_csv_matches_the_api(processes: dict[str, Any]) -> None:
    done = processes["compare_csv"]
    assert done.returncode == EXIT_OK, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))  # stdout holds the table and nothing else
    assert [row["model"] for row in rows] == ["squeezenet1_1", "mobilenet_v2"]
    for row in rows:
        with torch.device("meta"):
            model = torchvision.models.get_model(row["model"])
        report = tt.analyze(model, (1, 3, 224, 224))
        assert int(row["params"]) == report.total_params
        assert int(row["macs"]) == report.total_macs
        assert int(row["peak_memory"]) == report.memory.peak
    # --progress: one line per model on stderr
    assert re.search(r"\[1/2\] squeezenet1_1 \(\d+\.\d s\)", done.stderr)
    assert re.search(r"\[2/2\] mobilenet_v2", done.stderr)


def test_version(processes: dict[str, Any]) -> None:
    done = processes["version"]
    assert done.returncode == EXIT_OK
    assert done.stdout.strip().startswith(f"torchtally {tt.__version__} (torch ")


def test_unknown_model_is_one_line_with_close_matches(processes: dict[str, Any]) -> None:
    done = processes["unknown"]
    assert done.returncode == EXIT_USAGE
    assert done.stdout == ""
    line = error_line(done.stderr)
    assert line.startswith("torchtally: error: unknown model 'resnet19' (did you mean resnet18")


def test_budget_exceeded_writes_the_report_then_exits_3(processes: dict[str, Any], resnet18_report: tt.ModelReport) -> None:
    done = processes["budget"]
    assert done.returncode == EXIT_BUDGET
    # 1,814,073,344 MACs (README) > 10^9; 11,689,512 params are within 20M
    assert error_line(done.stderr) == "torchtally: budget exceeded: MACs 1.81 G > 1 G"
    written = json.loads((Path(processes["folder"].stdout) / "out.json").read_text())  # format from the suffix
    assert written["totals"]["macs"] == resnet18_report.total_macs


def test_pickled_model_is_refused_without_trust_pickle(processes: dict[str, Any]) -> None:
    done = processes["evil"]
    assert done.returncode == EXIT_USAGE
    line = error_line(done.stderr)
    assert "evil.pt holds pickled Python objects" in line and "--trust-pickle" in line
    assert processes["marker"].returncode == 0, "the refused pickle ran code"


def test_pickled_model_with_trust_pickle(processes: dict[str, Any]) -> None:
    done = processes["trusted"]
    assert done.returncode == EXIT_OK, done.stderr
    assert footer_number(done.stdout, "Total params") == NET_PARAMS
    assert footer_number(done.stdout, "Total MACs") == NET_MACS


def test_user_file_csv(processes: dict[str, Any]) -> None:
    done = processes["user_file"]
    assert done.returncode == EXIT_OK, done.stderr
    rows = {row["name"]: row for row in csv.DictReader(io.StringIO(done.stdout))}
    assert sum(int(row["params"]) for row in rows.values()) == NET_PARAMS
    assert int(rows[""]["macs"]) == NET_MACS  # the root row is inclusive
    assert int(rows[""]["flops"]) == NET_FLOPS
    assert int(rows["fc1"]["macs"]) == 192


# -- formats, in-process --------------------------------------------------------------------


def test_text_is_the_api_table(capsys: pytest.CaptureFixture[str], resnet18_report: tt.ModelReport) -> None:
    code, out, err = run_cli(capsys, "resnet18", "--depth", "1")
    assert code == EXIT_OK and err == ""
    assert out == resnet18_report.table(depth=1) + "\n"
    assert footer_number(out, "Total params") == RESNET18_PARAMS


def test_view_options_reach_the_table(capsys: pytest.CaptureFixture[str], resnet18_report: tt.ModelReport) -> None:
    code, out, _ = run_cli(
        capsys, "torchvision:resnet18", "--depth", "2", "--columns", "output_shape,params", "--columns", "macs_percent",
        "--rows", "collapse_repeats", "--rows", "ascii_only",
    )
    assert code == EXIT_OK
    expected = resnet18_report.table(
        depth=2, columns=["output_shape", "params", "macs_percent"], rows=["collapse_repeats", "ascii_only"]
    )
    assert out == expected + "\n"
    code, out, _ = run_cli(capsys, "resnet18", "--style", "flat")
    assert out == resnet18_report.table(style="flat") + "\n"


def test_markdown_and_html(capsys: pytest.CaptureFixture[str], resnet18_report: tt.ModelReport) -> None:
    code, out, _ = run_cli(capsys, "resnet18", "--format", "markdown", "--depth", "1")
    assert code == EXIT_OK
    assert out == resnet18_report.to_markdown(depth=1) + "\n"
    assert footer_number(out, "- Total params") == RESNET18_PARAMS
    assert footer_number(out, "- Total MACs") == resnet18_report.total_macs
    code, out, _ = run_cli(capsys, "resnet18", "-f", "html", "--depth", "1")
    assert code == EXIT_OK
    assert out == resnet18_report.to_html_page(depth=1)  # the whole page (tests/test_html_page.py)
    assert out.startswith("<!DOCTYPE html>") and '"params":11689512' in out


def test_output_file_and_format_from_its_suffix(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, net_file: Path
) -> None:
    for suffix, check in (
        (".json", lambda text: json.loads(text)["totals"]["macs"] == NET_MACS),
        (".csv", lambda text: int(next(csv.DictReader(io.StringIO(text)))["macs"]) == NET_MACS),
        (".md", lambda text: footer_number(text, "- Total MACs") == NET_MACS),
        (".txt", lambda text: footer_number(text, "Total MACs") == NET_MACS),
    ):
        target = tmp_path / f"report{suffix}"
        code, out, err = run_cli(capsys, f"{net_file}:Net", "--arg", "width=16", "--input-size", "3", "4", "-o", str(target))
        assert (code, out, err) == (EXIT_OK, "", "")
        assert check(target.read_text()), suffix


def test_compare_formats(capsys: pytest.CaptureFixture[str], net_file: Path) -> None:
    narrow, wide = net_report(8), net_report(16)
    code, out, err = run_cli(capsys, "compare", f"{net_file}:Net", f"{net_file}:make_net", "--input-size", "3", "4", "--format", "json")
    assert code == EXIT_OK and err == ""  # not a terminal and no --progress: stderr stays empty
    data = json.loads(out)
    assert data["schema"] == "torchtally.table/1"
    assert [row["params"] for row in data["rows"]] == [narrow.total_params, narrow.total_params]
    code, out, _ = run_cli(capsys, "compare", f"{net_file}:Net", f"{net_file}:Net", "--arg", "width=16", "--input-size", "3", "4")
    assert code == EXIT_OK
    assert str(tt.compare({f"{net_file}:Net": wide, f"{net_file}:Net (2)": wide})) + "\n" == out
    code, out, _ = run_cli(capsys, "compare", "squeezenet1_1", "mobilenet_v3_small", "--format", "markdown")
    assert out.splitlines()[0] == "| model | input | params | macs | flops | param_bytes | peak_memory |"
    assert "| squeezenet1_1 | 1x3x224x224 float32 | 1,235,496 |" in out  # the README's lightweight table


# -- MODEL forms --------------------------------------------------------------------------


def test_user_file_class_and_factory(capsys: pytest.CaptureFixture[str], net_file: Path) -> None:
    for spec in (f"{net_file}:Net", f"{net_file}:make_net"):
        code, out, _ = run_cli(capsys, spec, "--arg", "width=16", "--input-size", "3", "4", "--format", "json")
        assert code == EXIT_OK
        totals = json.loads(out)["totals"]
        assert (totals["params"], totals["macs"], totals["flops"]) == (NET_PARAMS, NET_MACS, NET_FLOPS)


def test_package_module_factory(capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "cli_test_models"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "nets.py").write_text(NET_SOURCE)
    monkeypatch.chdir(tmp_path)  # importable from the working directory, as with `python -m`
    try:
        code, out, _ = run_cli(capsys, "cli_test_models.nets:make_net", "--arg", "width=16", "--input-size", "3", "4", "-f", "json")
    finally:
        for name in ("cli_test_models", "cli_test_models.nets"):
            sys.modules.pop(name, None)
    assert code == EXIT_OK
    assert json.loads(out)["totals"]["params"] == NET_PARAMS


def test_timm_model_with_its_pretrained_input_size(capsys: pytest.CaptureFixture[str]) -> None:
    timm = pytest.importorskip("timm")
    code, out, _ = run_cli(capsys, "timm:resnet18", "--format", "json")
    assert code == EXIT_OK
    data = json.loads(out)
    with torch.device("meta"):
        model = timm.create_model("resnet18", pretrained=False)
    size = model.pretrained_cfg["input_size"]
    assert data["inputs"][0]["shape"] == [1, *size]
    report = tt.analyze(model, (1, *size))
    assert data["totals"]["params"] == report.total_params == RESNET18_PARAMS  # the same architecture as torchvision's
    assert data["totals"]["macs"] == report.total_macs


def test_hf_model_type_with_overrides(capsys: pytest.CaptureFixture[str]) -> None:
    transformers = pytest.importorskip("transformers")
    overrides = dict(n_layer=2, n_embd=64, n_head=4, vocab_size=500, n_positions=64)
    argv = [arg for key, value in overrides.items() for arg in ("--set", f"{key}={value}")]
    code, out, err = run_cli(capsys, "hf:gpt2", *argv, "--format", "json")
    assert code == EXIT_OK, err
    data = json.loads(out)
    # 64 positions < 128: the token batch is 1 x 64, int64
    assert (data["inputs"][0]["shape"], data["inputs"][0]["dtype"]) == ([1, 64], "int64")
    d, layers = 64, 2
    per_layer = 12 * d * d + 13 * d  # ln_1, c_attn, attn c_proj, ln_2, c_fc, mlp c_proj (see test_hf.py)
    assert data["totals"]["params"] == 500 * d + 64 * d + layers * per_layer + 2 * d == 136_192  # lm_head is tied to wte
    with torch.device("meta"):
        model = transformers.GPT2LMHeadModel(transformers.GPT2Config(**overrides))
    report = tt.analyze(model, (1, 64), dtypes=[torch.long])
    assert data["totals"]["macs"] == report.total_macs
    assert data["totals"]["flops"] == report.total_flops


def test_hf_config_file_and_folder(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    config = {"model_type": "llama", "hidden_size": 64, "intermediate_size": 176, "num_hidden_layers": 2,
              "num_attention_heads": 8, "num_key_value_heads": 2, "vocab_size": 300, "tie_word_embeddings": False}
    (tmp_path / "config.json").write_text(json.dumps(config))
    d, inter, kv = 64, 176, 2 * (64 // 8)
    per_layer = d * d + 2 * d * kv + d * d + 3 * d * inter + 2 * d  # q, k, v, o, MLP, two RMSNorms
    expected = 300 * d + 2 * per_layer + d + d * 300  # embeddings, layers, final norm, untied lm_head
    for spec in (str(tmp_path / "config.json"), str(tmp_path), f"hf:{tmp_path / 'config.json'}"):
        code, out, err = run_cli(capsys, spec, "--format", "json", "--batch-size", "2")
        assert code == EXIT_OK, err
        data = json.loads(out)
        assert data["model_type"] == "LlamaForCausalLM"
        assert data["totals"]["params"] == expected
        assert data["inputs"][0]["shape"] == [2, 128]
    code, out, _ = run_cli(capsys, str(tmp_path), "--set", "num_hidden_layers=3", "-f", "json")
    assert json.loads(out)["totals"]["params"] == expected + per_layer


def test_hf_remote_code_is_never_run(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    marker = tmp_path / "remote-code-ran"
    (tmp_path / "config.json").write_text(json.dumps({
        "model_type": "my_custom_arch", "auto_map": {"AutoConfig": "custom.MyConfig", "AutoModel": "custom.MyModel"},
    }))
    (tmp_path / "custom.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    code, _, err = run_cli(capsys, str(tmp_path))
    assert code == EXIT_USAGE
    assert "never runs" in error_line(err)
    assert not marker.exists()
    code, _, err = run_cli(capsys, "hf:someone/some-model")
    assert code == EXIT_USAGE and "never downloads" in error_line(err)


def test_weights_are_loaded_as_tensors_only(capsys: pytest.CaptureFixture[str], tmp_path: Path, net_file: Path) -> None:
    namespace: dict[str, Any] = {}
    exec(NET_SOURCE, namespace)
    torch.save(namespace["Net"](16).state_dict(), tmp_path / "w16.pt")
    torch.save({"state_dict": namespace["Net"](16).state_dict(), "epoch": 3}, tmp_path / "ckpt.pt")
    spec = f"{net_file}:Net"
    for weights in ("w16.pt", "ckpt.pt"):
        code, out, err = run_cli(capsys, spec, "--arg", "width=16", "--weights", str(tmp_path / weights),
                                 "--device", "cpu", "--input-size", "3", "4", "-f", "json")
        assert code == EXIT_OK, err
        assert json.loads(out)["device"] == "cpu"
    code, _, err = run_cli(capsys, spec, "--arg", "width=16", "--weights", str(tmp_path / "w16.pt"), "--input-size", "3", "4")
    assert code == EXIT_USAGE and "--device cpu" in error_line(err)  # meta tensors cannot hold weights
    code, _, err = run_cli(capsys, spec, "--weights", str(tmp_path / "w16.pt"), "--device", "cpu", "--input-size", "3", "4")
    assert code == EXIT_USAGE and "size mismatch for fc1.weight" in error_line(err)
    code, _, err = run_cli(capsys, str(tmp_path / "w16.pt"), "--input-size", "3", "4")
    assert code == EXIT_USAGE and "holds a state dict" in error_line(err)


# -- inputs, training -------------------------------------------------------------------


def test_input_options(capsys: pytest.CaptureFixture[str], net_file: Path) -> None:
    spec = f"{net_file}:Net"
    code, out, _ = run_cli(capsys, spec, "--input-size", "3,4", "--batch-size", "5", "--model-dtype", "bf16", "-f", "json")
    assert code == EXIT_OK
    data = json.loads(out)
    assert data["inputs"][0]["shape"] == [5, 4]
    assert data["inputs"][0]["dtype"] == "bfloat16"  # float inputs follow the model's dtype
    assert data["totals"]["param_bytes"] == 2 * ((4 * 8 + 8) + (8 * 2 + 2))  # Net(8): 58 params, 2 bytes each
    assert data["totals"]["macs"] == 5 * (4 * 8 + 8 * 2)
    code, out, _ = run_cli(capsys, spec, "--input-size", "3", "4", "--dtype", "float64", "-f", "json")
    assert json.loads(out)["inputs"][0]["dtype"] == "float64"


def test_token_inputs_keep_their_dtype(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("transformers")
    small = ["--set", "n_layer=1", "--set", "n_embd=32", "--set", "n_head=2", "--set", "vocab_size=100"]
    code, out, err = run_cli(capsys, "hf:gpt2", *small, "--input-size", "2", "16", "-f", "json")
    assert code == EXIT_OK, err
    first = json.loads(out)["inputs"][0]
    assert (first["shape"], first["dtype"]) == ([2, 16], "int64")  # the usual input's dtype, the given size
    code, out, err = run_cli(capsys, "hf:t5", "--set", "num_layers=1", "--set", "d_model=32", "--set", "d_ff=64",
                             "--set", "num_heads=2", "--set", "d_kv=16", "--set", "vocab_size=100",
                             "--input-size", "input_ids=2", "16", "--input-size", "decoder_input_ids=2", "8", "-f", "json")
    assert code == EXIT_OK, err
    shapes = [(spec["shape"], spec["dtype"]) for spec in json.loads(out)["inputs"]]
    assert shapes == [([2, 16], "int64"), ([2, 8], "int64")]


def test_training_with_an_optimizer(capsys: pytest.CaptureFixture[str], net_file: Path) -> None:
    namespace: dict[str, Any] = {}
    exec(NET_SOURCE, namespace)
    report = tt.analyze(namespace["Net"](16), (3, 4), training=True, optimizer="adam")
    code, out, _ = run_cli(capsys, f"{net_file}:Net", "--arg", "width=16", "--input-size", "3", "4",
                           "--training", "--optimizer", "adam", "-f", "json")
    assert code == EXIT_OK
    data = json.loads(out)
    assert data["training"] is True and data["optimizer"] == "adam"
    assert data["totals"]["backward_macs"] == report.backward_macs > 0
    # Adam: two fp32 moments per parameter, and a 4-byte step counter per tensor (4 tensors)
    assert data["memory"]["optimizer_state"] == report.memory.optimizer_state == 2 * 4 * NET_PARAMS + 4 * 4
    code, out, _ = run_cli(capsys, f"{net_file}:Net", "--arg", "width=16", "--input-size", "3", "4", "--optimizer", "sgd", "-f", "json")
    assert json.loads(out)["training"] is True  # --optimizer implies --training


# -- budgets --------------------------------------------------------------------------


def test_budget_values() -> None:
    assert parse_count("25M", "--max-params") == 25_000_000
    assert parse_count("4G", "--max-macs") == 4_000_000_000
    assert parse_count("1.5e9", "--max-macs") == 1_500_000_000
    assert parse_count("7B", "--max-params") == 7_000_000_000
    assert parse_count("1000", "--max-params") == 1000
    assert parse_bytes("512MiB", "--max-memory") == (512 * 2**20, False)
    assert parse_bytes("8GiB", "--max-memory") == (8 * 2**30, False)
    assert parse_bytes("2GB", "--max-memory") == (2 * 10**9, True)
    assert parse_bytes("123456", "--max-memory") == (123456, False)


def test_budgets_and_exit_codes(capsys: pytest.CaptureFixture[str], net_file: Path) -> None:
    base = [f"{net_file}:Net", "--arg", "width=16", "--input-size", "3", "4", "-f", "json"]
    code, out, err = run_cli(capsys, *base, "--max-params", "114", "--max-macs", "288", "--max-flops", "1K")
    assert (code, err) == (EXIT_OK, "")  # at the limit is within it
    peak = json.loads(out)["memory"]["peak"]
    code, out, err = run_cli(capsys, *base, "--max-params", "113", "--max-macs", "0.2K")
    assert code == EXIT_BUDGET
    assert json.loads(out)["totals"]["params"] == NET_PARAMS  # the report is still written
    assert error_line(err) == "torchtally: budget exceeded: params 114 > 113; MACs 288 > 200"
    code, _, err = run_cli(capsys, *base, f"--max-memory={peak - 1}")
    assert code == EXIT_BUDGET
    assert error_line(err) == f"torchtally: budget exceeded: peak memory {peak} B > {peak - 1} B"
    assert peak < 1000
    code, _, err = run_cli(capsys, *base, "--max-memory", "0.5KB")  # 500 bytes
    assert code == EXIT_BUDGET
    assert error_line(err) == f"torchtally: budget exceeded: peak memory {peak} B > 500 B"
    code, _, err = run_cli(capsys, "compare", f"{net_file}:Net", f"{net_file}:make_net", "--arg", "width=16",
                           "--input-size", "3", "4", "--max-macs", "100")
    assert code == EXIT_BUDGET
    assert err.splitlines() == [
        f"torchtally: budget exceeded: {net_file}:Net: MACs 288 > 100",
        f"torchtally: budget exceeded: {net_file}:make_net: MACs 288 > 100",
    ]
    code, _, err = run_cli(capsys, *base, "--max-memory", "8G")
    assert code == EXIT_USAGE and "GiB" in error_line(err)


# -- errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["resnet18", "--input-size", "1", "3", "22x"], "error: --input-size: '22x' is not a whole number"),
        (["--input-size", "1", "3", "224", "224", "resnet18"], "put MODEL first"),
        (["resnet18", "--input-size", "1", "-3", "224", "224"], "dimensions must be >= 0"),
        (["resnet18", "--columns", "macs,bogus"], "column 'bogus' is not one of: 'input_shape'"),
        (["resnet18", "--rows", "hide_emptyy"], "row setting 'hide_emptyy' is not one of"),
        (["resnet18", "--dtype", "float17"], "--dtype: 'float17' is not a dtype"),
        (["resnet18", "--depth", "-1"], "depth must be a whole number >= 0"),
        (["resnet18", "--format", "yaml"], "invalid choice: 'yaml'"),
        (["resnet18", "--arg", "weights=DEFAULT"], "never does"),
        (["torchvision:resnet1"], "unknown torchvision model 'resnet1' (did you mean resnet18"),
        (["hf:lama"], "unknown Hugging Face model type 'lama' (did you mean hf:llama"),
        (["hf:gpt2", "--set", "n_layr=2"], "GPT2Config has no field 'n_layr' (did you mean n_layer?)"),
        (["resnet18", "--set", "n_layer=2"], "--set changes a Hugging Face config"),
        (["missing.py:Net"], "missing.py: no such file"),
        (["missing.pt"], "missing.pt: no such file"),
        (["no_such_package_xyz.models:make"], "no module named 'no_such_package_xyz'"),
        (["resnet18", "--device", "gpu7"], "--device: 'gpu7' is not a device"),
        ([], "the following arguments are required: MODEL"),
    ],
)
def test_usage_errors_are_one_line_with_exit_code_2(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    code, out, err = run_cli(capsys, *argv)
    assert code == EXIT_USAGE
    assert out == ""
    line = error_line(err)
    assert line.startswith("torchtally: error: ")
    assert message in line


def test_user_file_errors(capsys: pytest.CaptureFixture[str], net_file: Path) -> None:
    cases = {
        f"{net_file}:Nett": "does not define 'Nett' (did you mean Net?)",
        f"{net_file}:not_a_model": "is a int, not an nn.Module class",
        str(net_file): f"name the class or factory that builds the model: {net_file}:ClassName",
    }
    for spec, message in cases.items():
        code, _, err = run_cli(capsys, spec, "--input-size", "3", "4")
        assert code == EXIT_USAGE
        assert message in error_line(err), spec
    code, _, err = run_cli(capsys, f"{net_file}:Net", "--arg", "depth=3", "--input-size", "3", "4")
    assert code == EXIT_USAGE and "unexpected keyword argument 'depth'" in error_line(err)
    code, _, err = run_cli(capsys, f"{net_file}:Net")
    assert code == EXIT_USAGE and "give one, e.g. --input-size" in error_line(err)
    broken = net_file.with_name("broken.py")
    broken.write_text("import torch\nraise RuntimeError('oops')\n")
    code, _, err = run_cli(capsys, f"{broken}:Net")
    assert code == EXIT_USAGE and "importing it failed: RuntimeError: oops" in error_line(err)


def test_analysis_failure_exits_1_naming_the_module(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "resnet18", "--input-size", "1", "3")
    assert code == EXIT_ANALYSIS_FAILED and out == ""
    line = error_line(err)
    assert line.startswith("torchtally: error: analysis failed: forward pass failed in module 'conv1' (Conv2d)")


def test_debug_shows_the_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "resnet18", "--input-size", "1", "3", "--debug")
    assert code == EXIT_ANALYSIS_FAILED
    assert "Traceback (most recent call last)" in err
    assert err.strip().splitlines()[-1].startswith("torchtally: error: analysis failed")


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "--help")
    assert code == EXIT_OK
    assert "torchtally MODEL [options]" in out and "--max-memory" in out and "--trust-pickle" in out
    code, out, _ = run_cli(capsys, "compare", "--help")
    assert code == EXIT_OK and "--progress" in out


# -- review findings: user code, remote code, compare failures, pipes ---------------------


def test_user_code_that_exits_or_prints_cannot_fake_a_result(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "exits.py").write_text("import sys\nsys.exit(0)\n")
    code, out, err = run_cli(capsys, f"{tmp_path / 'exits.py'}:make", "--input-size", "1", "4", "--max-params", "1")
    assert code == EXIT_USAGE and out == "" and "exited (SystemExit 0)" in error_line(err)
    (tmp_path / "noisy.py").write_text(
        "import torch\nprint('hello from import')\n"
        "def make():\n    print('building')\n    return torch.nn.Linear(4, 4)\n"
    )
    code, out, err = run_cli(capsys, f"{tmp_path / 'noisy.py'}:make", "--input-size", "1", "4", "-f", "json")
    assert code == EXIT_OK
    assert json.loads(out)["totals"]["params"] == 4 * 4 + 4  # stdout holds only the result
    assert "hello from import" in err and "building" in err


def test_a_config_naming_custom_code_is_refused_even_with_a_known_type(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    pytest.importorskip("transformers")
    (tmp_path / "config.json").write_text(json.dumps({
        "model_type": "llama", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
        "num_attention_heads": 2, "vocab_size": 100, "auto_map": {"AutoModelForCausalLM": "custom.MyModel"},
    }))
    code, out, err = run_cli(capsys, str(tmp_path))
    assert code == EXIT_USAGE and out == "" and "auto_map" in error_line(err)


def test_keyword_token_ids_of_a_decoder_only_model_stay_integers(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("transformers")
    code, out, err = run_cli(
        capsys, "hf:gpt2", "--set", "n_layer=1", "--set", "n_embd=32", "--set", "n_head=2", "--set", "vocab_size=100",
        "--input-size", "input_ids=1 16", "-f", "json",
    )
    assert code == EXIT_OK, err
    assert json.loads(out)["inputs"][0]["dtype"] == "int64"


def test_compare_reports_the_models_it_could_analyse(capsys: pytest.CaptureFixture[str], net_file: Path) -> None:
    code, out, err = run_cli(
        capsys, "compare", f"{net_file}:Net", "resnet19", f"{net_file}:make_net", "--input-size", "3", "4", "-f", "csv",
    )
    assert code == EXIT_USAGE  # the unknown model's code
    rows = list(csv.DictReader(io.StringIO(out)))
    default = net_report(width=8).total_params  # both built with their default width, 8
    assert [int(row["params"]) for row in rows] == [default, default]
    assert "resnet19: unknown model" in err


def test_output_folders_are_created(capsys: pytest.CaptureFixture[str], tmp_path: Path, net_file: Path) -> None:
    target = tmp_path / "new" / "dir" / "report.json"
    code, _, err = run_cli(capsys, f"{net_file}:Net", "--input-size", "3", "4", "-o", str(target))
    assert code == EXIT_OK, err
    assert json.loads(target.read_text())["totals"]["params"] == net_report(width=8).total_params


def test_a_constructor_missing_an_argument_says_how_to_give_it(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "needs.py").write_text(
        "import torch\nclass NeedsArgs(torch.nn.Module):\n"
        "    def __init__(self, width):\n        super().__init__()\n        self.fc = torch.nn.Linear(4, width)\n"
    )
    code, _, err = run_cli(capsys, f"{tmp_path / 'needs.py'}:NeedsArgs", "--input-size", "3", "4")
    line = error_line(err)
    assert code == EXIT_USAGE and "--arg NAME=VALUE" in line and "--device cpu" not in line


def test_an_unavailable_device_is_one_short_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "resnet18", "--device", "xla")
    line = error_line(err)
    assert code == EXIT_USAGE and len(line) < 200


def test_output_dash_is_stdout(capsys: pytest.CaptureFixture[str], net_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, _ = run_cli(capsys, f"{net_file}:Net", "--input-size", "3", "4", "-o", "-", "-f", "json")
    assert code == EXIT_OK and json.loads(out)["totals"]["params"] == net_report(width=8).total_params
    assert not (tmp_path / "-").exists()


# A forward that reads an input's values: it repeats its linear layer as often as ``counts`` sums to.
# For x of 2 x 4 and counts [[1, 2]], by hand: 3 calls of fc (4 -> 4) on 2 rows: 3 * 2*4*4 = 96 MACs.
READS_VALUES_SOURCE = textwrap.dedent(
    """
    import torch
    from torch import nn

    class Repeats(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x, counts):
            for _ in range(int(counts.sum())):
                x = self.fc(x)
            return x
    """
)


def test_an_input_given_by_its_values_as_hints_write_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "repeats.py"
    path.write_text(READS_VALUES_SOURCE)
    code, out, err = run_cli(
        capsys, f"{path}:Repeats", "--input-size", "x=2x4", "--input-size", "counts=[[1,", "2]]", "--format", "json"
    )
    assert code == EXIT_OK, err
    report = json.loads(out)
    assert report["totals"]["macs"] == 96 and report["execution"] == "fake"
    assert [i["shape"] for i in report["inputs"]] == [[2, 4], [1, 2]]


@pytest.mark.parametrize(
    ("text", "message"),
    [("counts=[[1,2],[3]]", "ragged"), ("counts=[[1.5]]", "not a whole number"), ("counts=[[1,", "not a list of whole numbers"),
     ("2x=[[1]]", "not an argument name")],
)
def test_bad_values_are_one_line(text: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "repeats.py"
    path.write_text(READS_VALUES_SOURCE)
    code, _, err = run_cli(capsys, f"{path}:Repeats", "--input-size", "x=2x4", "--input-size", text)
    assert code == EXIT_USAGE and message in error_line(err)
