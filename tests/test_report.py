"""Invariants of the data model: inclusive figures are the sums of their subtree."""

from __future__ import annotations

import torch
import torchvision

import torchtally as tt


def test_inclusive_values_are_own_plus_children() -> None:
    with torch.device("meta"):
        model = torchvision.models.mobilenet_v3_small()
    report = tt.analyze(model, (2, 3, 96, 96))
    for layer in report.layers:
        children = [report.layers[i] for i in layer.children]
        assert layer.macs == layer.self_macs + sum(child.macs for child in children)
        assert layer.flops == layer.self_flops + sum(child.flops for child in children)
        assert layer.subtree_params == layer.params + sum(child.subtree_params for child in children)
        for name, stats in layer.operators.items():
            below = sum(child.operators[name].calls for child in children if name in child.operators)
            assert stats.calls >= below
    root = report.layers[0]
    assert root.macs == report.total_macs
    assert root.subtree_params == report.total_params
    assert sum(stats.macs for stats in report.operators.values()) == report.total_macs
    assert sum(stats.flops for stats in report.operators.values()) == report.total_flops


def test_layer_fields() -> None:
    report = tt.analyze(torchvision.models.resnet18(), (1, 3, 64, 64))
    layer = report.layers[3]  # pre-order: "", conv1, bn1, relu
    assert (layer.name, layer.type, layer.depth, layer.calls) == ("relu", "ReLU", 1, 1)
    conv = report.layer("layer1.0.conv1")
    assert conv.type == "Conv2d" and conv.depth == 3 and conv.trainable is True
    assert conv.input_shapes == (((1, 64, 16, 16),),)
    assert conv.operators["aten.convolution"].calls == 1
    assert conv.params == 64 * 64 * 9
    assert report.layer("layer1.0").subtree_params == 2 * 64 * 64 * 9 + 2 * 2 * 64  # two convs, two BNs
