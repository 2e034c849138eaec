"""A model built on the meta device runs "as if on the CPU" (fake CPU tensors). Its own code
sees that too: a forward that reads a parameter's, a buffer's or a plain tensor attribute's
``.device`` gets the CPU, as in a real CPU run, and after the run the model holds its own
meta tensors again (the suite's guard fixture checks every analysis as well)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import torchtally as tt


class ReadsParameterDevice(nn.Module):
    """The issue's repro: a constant made on the parameter's device."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x + torch.ones(4, device=self.lin.weight.device))


class ReadsBufferAndAttributeDevice(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 6)
        self.register_buffer("scale", torch.ones(6))
        self.offset = torch.zeros(6)  # a plain attribute, not registered

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        steps = torch.arange(6, device=self.scale.device)
        return self.lin(x) * self.scale + self.offset.to(self.offset.device) + steps


class UsesSelfDevice(nn.Module):
    """Hugging Face style: ``self.device`` is the first parameter's device."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(10, 8)
        self.lin = nn.Linear(8, 8)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(ids.shape[1], device=self.device)
        return self.lin(self.emb(ids) + self.emb(positions))


def _meta(cls: type[nn.Module]) -> nn.Module:
    with torch.device("meta"):
        return cls()


@pytest.mark.parametrize("training", [False, True])
def test_a_meta_model_reading_its_parameters_device_runs(training: bool) -> None:
    model = _meta(ReadsParameterDevice)
    weight = model.lin.weight
    report = tt.analyze(model, input_size=(2, 4), training=training)
    assert report.total_macs == 2 * 4 * 4  # one linear 4 -> 4 over 2 rows
    assert report.used_params == report.total_params == 4 * 4 + 4
    assert model.lin.weight is weight and weight.device.type == "meta"  # the user's own tensor again
    if training:  # the input takes no gradient: only the weight's, grad_out^T (4x2) @ x (2x4)
        assert report.backward_macs == 4 * 2 * 4


def test_a_meta_models_buffers_and_tensor_attributes_read_as_cpu() -> None:
    model = _meta(ReadsBufferAndAttributeDevice)
    scale, offset = model.scale, model.offset
    report = tt.analyze(model, input_size=(3, 4))
    assert report.total_macs == 3 * 4 * 6  # linear 4 -> 6 over 3 rows
    assert report.total_buffers == 6
    assert model.scale is scale and model.offset is offset and scale.is_meta and offset.is_meta


def test_a_meta_model_using_self_device_runs() -> None:
    model = _meta(UsesSelfDevice)
    report = tt.analyze(model, input_size=(1, 5), dtypes=[torch.long])
    assert report.total_macs == 5 * 8 * 8  # linear 8 -> 8 over 5 tokens; embeddings are lookups
    assert report.used_params == 10 * 8 + 8 * 8 + 8
    assert all(p.is_meta for p in model.parameters())


def test_a_meta_lstm_runs_and_keeps_its_flat_weights() -> None:
    """An LSTM keeps a flat list of its weights beside the slots; its checks compare devices."""
    with torch.device("meta"):
        lstm = nn.LSTM(4, 3, batch_first=True)
    flat = list(lstm._flat_weights)
    report = tt.analyze(lstm, input_size=(1, 5, 4))
    # per step: 4 gates x (input 4 -> 3 and hidden 3 -> 3) = 4*(4*3 + 3*3) = 84 MACs; 5 steps
    assert report.total_macs == 5 * 84
    assert all(a is b for a, b in zip(lstm._flat_weights, flat))


class CastsItsLayerInForward(nn.Module):
    """A router that casts its classifier to its dtype on every call (as switch_transformers' does)."""

    def __init__(self) -> None:
        super().__init__()
        self.classifier = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.classifier = self.classifier.to(torch.float32)
        return self.classifier(x)


def test_a_meta_model_that_casts_a_layer_in_its_forward_runs() -> None:
    # Module.to() swaps a fake parameter for its converted copy (torch.utils.swap_tensors), which
    # refuses a tensor that has a weak reference: the stand-ins nn.Parameter(twin) made (their
    # detach went through FakeTensorMode, which keeps one) could not be swapped.
    model = _meta(CastsItsLayerInForward)
    weight = model.classifier.weight
    report = tt.analyze(model, input_size=(2, 4))
    assert report.total_macs == 2 * 4 * 4  # linear 4 -> 4 over 2 rows
    assert model.classifier.weight is weight and weight.is_meta
