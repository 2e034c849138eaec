"""Quantized modules keep their weights packed outside nn.Parameter: they still count."""

from __future__ import annotations

import warnings

import torch
from torch import nn

import torchtally as tt


def dynamic_int8_model() -> nn.Module:
    float_model = nn.Sequential(nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao announces its own deprecation
        return torch.ao.quantization.quantize_dynamic(float_model, {nn.Linear}, dtype=torch.qint8)


def test_dynamic_quantized_linear_weights_are_parameters() -> None:
    report = tt.analyze(dynamic_int8_model(), (3, 8))
    weights, biases = 8 * 4 + 4 * 2, 4 + 2
    assert report.total_params == weights + biases
    assert report.param_bytes == weights * 1 + biases * 4  # int8 weights, float32 biases
    assert report.trainable_params == 0  # packed weights cannot be trained
    assert report.used_params == weights + biases
    # the packed weights live in each Linear's _packed_params child
    assert report.layer("0._packed_params").params == 8 * 4 + 4
    # same products as float linears: rows x in x out
    assert report.total_macs == 3 * 8 * 4 + 3 * 4 * 2
    assert report.uncounted_ops == {}


def test_unused_quantized_layer_is_reported_unused() -> None:
    class Partly(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.used = nn.Linear(8, 4)
            self.spare = nn.Linear(8, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.used(x)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = torch.ao.quantization.quantize_dynamic(Partly(), {nn.Linear}, dtype=torch.qint8)
    report = tt.analyze(model, (1, 8))
    assert report.total_params == 2 * (8 * 4 + 4)
    assert report.unused_params == 8 * 4 + 4
    assert report.unused_modules == ("spare",)
