"""Models that went through PyTorch's compilers and exporters: torch.export programs (and
their saved .pt2 archives on the command line), torch.compile'd, scripted and FX-traced
modules. Expected MACs come from FlopCounterMode on the plain eager model."""

from __future__ import annotations

import io
import json
import pickle
import zipfile
from pathlib import Path

import pytest
import torch
from torch import nn

import torchtally as tt
from helpers import flop_counter_macs
from torchtally.cli import main
from torchtally.cli.errors import EXIT_OK, EXIT_USAGE


def small_cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 10)).eval()


X = (2, 3, 8, 8)


def test_an_exported_program_runs_with_its_example_inputs_and_is_left_alone() -> None:
    model = small_cnn()
    program = torch.export.export(model, (torch.randn(*X),))
    state = {name: (tensor, tensor.clone()) for name, tensor in program.state_dict.items()}
    report = tt.analyze(program)
    assert report.total_macs == flop_counter_macs(model, torch.randn(*X))
    assert report.inputs[0].shape == X
    assert report.mode == "fixed"
    assert "mode fixed at export" in str(report)
    for name, (tensor, values) in state.items():  # the program's own tensors, unchanged
        assert program.state_dict[name] is tensor and torch.equal(tensor, values)


def test_an_exported_programs_module_is_not_switched_to_eval() -> None:
    """Its train()/eval() raise "not supported yet": the run must not call them (it once did,
    and the error blamed the inputs)."""
    model = small_cnn()
    module = torch.export.export(model, (torch.randn(*X),)).module()
    report = tt.analyze(module, input_size=X)
    assert report.total_macs == flop_counter_macs(model, torch.randn(*X))
    assert report.mode == "fixed"
    with pytest.raises(tt.InputError, match=r"mode='train'.*torch\.export"):
        tt.analyze(module, input_size=X, mode="train")


def test_a_model_holding_an_exported_module_keeps_its_mode_too() -> None:
    inner = torch.export.export(nn.Linear(4, 3), (torch.randn(2, 4),)).module()
    outer = nn.Sequential(inner, nn.ReLU())
    report = tt.analyze(outer, input_size=(2, 4))
    assert report.total_macs == 2 * 4 * 3  # the exported linear, 2 rows
    assert report.mode == "fixed"


def test_an_exported_program_with_keyword_example_inputs() -> None:
    class Pair(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Linear(4, 2), nn.Linear(6, 2)

        def forward(self, x: torch.Tensor, *, y: torch.Tensor) -> torch.Tensor:
            return self.a(x) + self.b(y)

    program = torch.export.export(Pair(), (torch.randn(5, 4),), {"y": torch.randn(5, 6)})
    report = tt.analyze(program)
    assert report.total_macs == 5 * 4 * 2 + 5 * 6 * 2  # both linears over 5 rows


def test_anything_else_is_refused_by_name() -> None:
    with pytest.raises(tt.InputError, match="torch.nn.Module or a torch.export.ExportedProgram; got str"):
        tt.analyze("resnet18", input_size=X)  # type: ignore[arg-type]


@pytest.mark.parametrize("wrap", ["compile", "script", "fx"])
def test_compiled_scripted_and_traced_modules_are_counted(wrap: str) -> None:
    model = small_cnn()
    wrapped = {
        "compile": lambda: torch.compile(model),
        "script": lambda: torch.jit.script(model),
        "fx": lambda: torch.fx.symbolic_trace(model),
    }[wrap]()
    report = tt.analyze(wrapped, input_size=X)
    assert report.total_macs == flop_counter_macs(model, torch.randn(*X))
    assert report.total_params == sum(p.numel() for p in model.parameters())


# -- the command line: a saved program (.pt2) --------------------------------------------------


def _saved(tmp_path: Path) -> Path:
    path = tmp_path / "model.pt2"
    torch.export.save(torch.export.export(small_cnn(), (torch.randn(*X),)), str(path))
    return path


class _Payload:
    """Unpickling it creates a file: what code hidden in an archive could do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return (Path.touch, (self.marker,))


def _with_payload(path: Path, marker: Path) -> Path:
    """The archive with its example inputs replaced by the payload (torch.export.load falls
    back to an unsafe load when the safe one refuses them)."""
    hostile = path.with_name("hostile.pt2")
    buffer = io.BytesIO()
    torch.save(_Payload(marker), buffer, pickle_protocol=pickle.DEFAULT_PROTOCOL)
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(hostile, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            target.writestr(item, buffer.getvalue() if item.filename.endswith("sample_inputs/model.pt") else data)
    return hostile


def test_a_saved_program_needs_trust_pickle_and_runs_with_its_example_inputs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _saved(tmp_path)
    assert main([str(path)]) == EXIT_USAGE
    assert "--trust-pickle" in capsys.readouterr().err
    assert main([str(path), "--trust-pickle", "--format", "json"]) == EXIT_OK
    data = json.loads(capsys.readouterr().out)
    assert data["totals"]["macs"] == flop_counter_macs(small_cnn(), torch.randn(*X))
    assert data["mode"] == "fixed"


def test_a_saved_program_with_a_payload_is_not_opened_without_trust_pickle(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "payload-ran"
    hostile = _with_payload(_saved(tmp_path), marker)
    assert main([str(hostile)]) == EXIT_USAGE
    assert not marker.exists()
    err = capsys.readouterr().err
    assert err.startswith("torchtally: error: ") and err.count("\n") == 1
    # The payload is real: trusting the file runs it (which is why trust is asked for).
    main([str(hostile), "--trust-pickle"])
    assert marker.exists()


def test_an_exported_program_under_a_parallel_layout() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.ReLU(), torch.nn.Linear(8, 4))
    program = torch.export.export(model, (torch.randn(2, 8),))
    report = tt.analyze(program, parallel=tt.Parallel(fsdp=2))  # its example inputs, one rank of FSDP x2
    # FSDP gathers the weights before each forward: every rank computes the whole batch, 2x8x8 + 2x8x4.
    assert report.total_macs == 2 * 8 * 8 + 2 * 8 * 4
    assert report.parallel is not None and report.parallel.communication
