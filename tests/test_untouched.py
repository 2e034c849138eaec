"""Guarantee 1 beyond parameters and buffers: plain attributes, submodules created in
forward, gradients, the user's inputs, inference tensors and TorchScript modules."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import torchtally as tt
from helpers import DataDependent

RUNS = ("auto", "real")


class CachesATensor(nn.Module):
    """The lazy-cache pattern (rotary tables): fill `self.cached` on the first call."""

    def __init__(self) -> None:
        super().__init__()
        self.cached: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.cached is None:
            self.cached = torch.arange(x.shape[-1], dtype=x.dtype).cos()
        return x * self.cached


class GrowsASubmodule(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not hasattr(self, "head"):
            self.head = nn.Linear(x.shape[-1], 2)
        return self.head(x)


class CallsBackward(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            self.lin(x).sum().backward()
        return self.lin(x)


@pytest.mark.parametrize("run", RUNS)
def test_cached_attribute_is_put_back(run: str) -> None:
    model = CachesATensor()
    tt.analyze(model, (1, 4, 8), run=run)
    assert model.cached is None
    assert type(model(torch.ones(1, 4, 8))) is torch.Tensor  # still a working, real model


@pytest.mark.parametrize("run", RUNS)
def test_submodule_created_in_forward_is_removed(run: str) -> None:
    model = GrowsASubmodule()
    report = tt.analyze(model, (2, 5), run=run)
    assert [name for name, _ in model.named_modules()] == [""]
    assert report.total_macs == 2 * 5 * 2  # the head did run


@pytest.mark.parametrize("run", RUNS)
def test_gradients_are_put_back(run: str) -> None:
    model = CallsBackward()
    tt.analyze(model, (2, 3), run=run)
    assert model.lin.weight.grad is None


@pytest.mark.parametrize("run", RUNS)
def test_old_style_weight_norm_keeps_a_real_weight(run: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # weight_norm is deprecated in favour of parametrizations
        model = nn.utils.weight_norm(nn.Linear(4, 4))
    weight = model.weight
    tt.analyze(model, (1, 4), run=run)
    assert model.weight is weight and type(model.weight) is torch.Tensor


def test_inputs_are_not_written_by_an_in_place_forward() -> None:
    x = torch.tensor([[-1.0, 2.0, -3.0, 4.0]])
    before = x.clone()
    tt.analyze(nn.Sequential(nn.ReLU(inplace=True), DataDependent()), input_data=x)  # falls back to real
    assert torch.equal(x, before)


class Cache:
    """A stand-in for a Hugging Face cache: an object the forward appends to."""

    def __init__(self) -> None:
        self.keys = [torch.zeros(1, 3)]


class AppendsToCache(nn.Module):
    def forward(self, x: torch.Tensor, cache: Cache) -> torch.Tensor:
        cache.keys.append(x)
        return torch.cat(cache.keys)


@pytest.mark.parametrize("run", ("fake", "real"))
def test_objects_passed_as_inputs_are_copied(run: str) -> None:
    cache = Cache()
    report = tt.analyze(AppendsToCache(), input_data=(torch.ones(1, 3), cache), run=run)
    assert len(cache.keys) == 1 and type(cache.keys[0]) is torch.Tensor
    assert report.layer("").output_shapes == (((2, 3),),)  # the forward saw the copy: its key and x


def test_model_built_under_inference_mode() -> None:
    with torch.inference_mode():
        model = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4))
    mean = model[1].running_mean.clone()
    report = tt.analyze(model, (3, 4), run="real")
    assert report.total_macs == 3 * 4 * 4
    assert model.training is True and torch.equal(model[1].running_mean, mean)


@pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning")
@pytest.mark.parametrize("run", ("fake", "real"))
def test_traced_module(run: str) -> None:
    model = torch.jit.trace(nn.Sequential(nn.Linear(4, 2), nn.ReLU()), torch.ones(1, 4))
    report = tt.analyze(model, (5, 4), run=run)
    assert report.total_params == 4 * 2 + 2
    assert report.total_macs == 5 * 4 * 2
    assert model.training is True


def test_a_failing_analysis_writes_nothing_to_the_terminal(capfd: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(tt.ForwardError):
        tt.analyze(nn.Linear(4, 5), (2, 3))  # FakeTensorMode would log a traceback to stderr
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == ""
