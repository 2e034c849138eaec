"""Parameter accounting by identity: bare parameters, buffers, modules registered twice,
frozen parameters and lazy modules."""

from __future__ import annotations

import torch
from torch import nn

import torchtally as tt


class BareParameters(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(5))  # not called weight or bias
        self.table = nn.Parameter(torch.zeros(3, 5), requires_grad=False)
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.table.sum(0)


def test_bare_parameters_and_buffers() -> None:
    report = tt.analyze(BareParameters(), (2, 5))
    root = report.layer("")
    assert report.total_params == 5 + 15
    assert report.trainable_params == 5 and report.non_trainable_params == 15
    assert root.trainable is None  # some of its parameters train, some do not
    assert report.total_buffers == 1 and report.buffer_bytes == 8  # one int64
    assert report.used_params == 20


class TwoNamesOneModule(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Linear(4, 4)
        self.decoder = self.encoder  # the same module object, registered twice

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


def test_module_registered_twice_is_one_row() -> None:
    report = tt.analyze(TwoNamesOneModule(), (1, 4))
    assert [layer.name for layer in report.layers] == ["", "encoder"]  # like named_modules()
    assert report.layer("encoder").calls == 2
    assert report.total_params == 4 * 4 + 4
    assert report.total_macs == 2 * 4 * 4


class TiedProjection(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(10, 6)
        self.head = nn.Linear(6, 10, bias=False)
        self.head.weight = self.embed.weight

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(tokens))


def test_tied_weights_counted_once_and_named() -> None:
    report = tt.analyze(TiedProjection(), (2, 3), dtypes=[torch.long])
    assert report.total_params == 10 * 6
    assert report.shared_params == 10 * 6
    assert report.layer("head").params == 0
    assert report.layer("head").shared_from == ("embed",)
    assert report.total_macs == 2 * 3 * 6 * 10  # tokens x in x out for the head


def test_lazy_modules_are_counted_after_materialising_on_a_copy() -> None:
    model = nn.Sequential(nn.LazyLinear(8), nn.ReLU(), nn.LazyLinear(2))
    report = tt.analyze(model, (3, 5))
    assert report.total_params == (5 * 8 + 8) + (8 * 2 + 2)
    assert report.lazy_modules == ("0", "2")
    assert report.execution == "real" and report.fallback_reason and "lazy" in report.fallback_reason
    assert report.total_macs == 3 * 5 * 8 + 3 * 8 * 2
    # the user's model is still lazy: nothing was materialised on it
    assert isinstance(model[0], nn.LazyLinear)
    assert isinstance(model[0].weight, nn.parameter.UninitializedParameter)
