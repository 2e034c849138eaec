"""Property tests: random compositions of common modules and functional operators (drawn by
hypothesis), each analysed fake and real, in inference and training. For every one:

* guarantee 1, by tests/model_state.py: the model and the process are exactly as before;
* MACs of the forward = FlopCounterMode's FLOPs / 2 (every MAC-bearing operator these
  models use, convolution and the matmul family, is one FlopCounterMode counts too);
* backward MACs of a training run = FlopCounterMode's FLOPs of the same backward / 2 (where
  its formulas are right: dense convolutions);
* guarantee 5: each layer's inclusive MACs are its own plus its children's, and the
  rows' own MACs add up to the total.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

import torchtally as tt
from model_state import capture, differences

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "hardswish": nn.Hardswish, "tanh": nn.Tanh}


@dataclass(frozen=True)
class Step:
    kind: str
    width: int = 0  # output channels of a convolution
    kernel: int = 1
    groups: int = 1
    bias: bool = True
    name: str = ""


class Composed(nn.Module):
    """A 4-D feature map through ``steps``, then a head of functional matmuls."""

    def __init__(self, channels: int, size: int, steps: list[Step], classes: int):
        super().__init__()
        self.steps = steps
        self.layers = nn.ModuleList()
        for step in steps:
            if step.kind == "conv":
                self.layers.append(nn.Conv2d(channels, step.width, step.kernel, padding=step.kernel // 2, groups=step.groups, bias=step.bias))
                channels = step.width
            elif step.kind == "residual_conv":  # x + conv(x), the conv keeping the shape
                self.layers.append(nn.Conv2d(channels, channels, 3, padding=1, groups=step.groups, bias=step.bias))
            elif step.kind == "batchnorm":
                self.layers.append(nn.BatchNorm2d(channels))
            elif step.kind == "activation":
                self.layers.append(ACTIVATIONS[step.name]())
            elif step.kind == "pool":
                self.layers.append(nn.MaxPool2d(2) if step.name == "max" else nn.AvgPool2d(2))
                size //= 2
            else:  # a functional convolution with a bare parameter
                self.layers.append(nn.ParameterList([nn.Parameter(torch.randn(channels, 1, 3, 3) * 0.1)]))
        self.features = channels * size * size
        self.proj = nn.Parameter(torch.randn(classes, self.features) * 0.01)  # x @ w.T
        self.mix = nn.Linear(classes, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for step, layer in zip(self.steps, self.layers):
            if step.kind == "residual_conv":
                x = x + layer(x)
            elif step.kind == "functional_conv":
                weight = layer[0]
                x = F.conv2d(x, weight, padding=1, groups=weight.shape[0])
            else:
                x = layer(x)
        h = x.flatten(1) @ self.proj.t()
        h = torch.einsum("bc,dc->bd", torch.softmax(h, dim=-1), self.mix.weight) + self.mix.bias
        return h


@st.composite
def models(draw: st.DrawFn) -> tuple[Composed, tuple[int, ...]]:
    channels = draw(st.sampled_from([1, 2, 4, 6]))
    size = draw(st.sampled_from([4, 6, 8]))
    steps: list[Step] = []
    current, current_size = channels, size
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["conv", "residual_conv", "batchnorm", "activation", "pool", "functional_conv"]))
        if kind == "conv":
            width = draw(st.sampled_from([1, 2, 4, 8]))
            groups = draw(st.sampled_from([g for g in (1, 2, 4) if current % g == 0 and width % g == 0]))
            steps.append(Step("conv", width, draw(st.sampled_from([1, 3])), groups, draw(st.booleans())))
            current = width
        elif kind == "residual_conv":
            groups = draw(st.sampled_from([g for g in (1, current) if current % g == 0]))
            steps.append(Step("residual_conv", groups=groups, bias=draw(st.booleans())))
        elif kind == "activation":
            steps.append(Step("activation", name=draw(st.sampled_from(sorted(ACTIVATIONS)))))
        elif kind == "pool":
            if current_size < 4:
                continue
            steps.append(Step("pool", name=draw(st.sampled_from(["max", "avg"]))))
            current_size //= 2
        else:
            steps.append(Step(kind))
    batch = draw(st.integers(1, 3))
    model = Composed(channels, size, steps, classes=draw(st.sampled_from([3, 5])))
    return model, (batch, channels, size, size)


def _flop_counter_macs(model: nn.Module, shape: tuple[int, ...], training: bool) -> tuple[int, int]:
    """FlopCounterMode's forward and backward FLOPs / 2, on a real run of a copy's twin."""
    x = torch.randn(shape)
    model.train(training)
    forward = FlopCounterMode(display=False)
    with forward, torch.set_grad_enabled(training):
        out = model(x)
    if not training:
        return forward.get_total_flops() // 2, 0
    backward = FlopCounterMode(display=False)
    with backward:
        out.backward(torch.ones_like(out))
    return forward.get_total_flops() // 2, backward.get_total_flops() // 2


def _check_sums(report: tt.ModelReport) -> None:
    by_index = report.layers
    assert sum(layer.self_macs for layer in by_index) == report.total_macs
    children: dict[str, list[tt.LayerReport]] = {}
    for layer in by_index:
        if layer.name:
            parent = layer.name.rsplit(".", 1)[0] if "." in layer.name else ""
            children.setdefault(parent, []).append(layer)
    for layer in by_index:
        assert layer.macs == layer.self_macs + sum(child.macs for child in children.get(layer.name, []))


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(models(), st.sampled_from(["auto", "real"]), st.booleans())
def test_random_compositions(drawn: tuple[Composed, tuple[int, ...]], run: str, training: bool) -> None:
    model, shape = drawn
    model.eval()
    before = capture(model)
    report = tt.analyze(model, shape, run=run, training=training)
    assert differences(before, capture(model)) == []
    _check_sums(report)
    # The reference run is on a copy: the model itself must stay as it was.
    twin = Composed(shape[1], shape[2], model.steps, model.mix.out_features)
    twin.load_state_dict(model.state_dict())
    forward_macs, backward_macs = _flop_counter_macs(twin, shape, training)
    assert report.total_macs == forward_macs
    # FlopCounterMode's weight gradient of a grouped convolution ignores the groups (it counts
    # the dense one; tests/test_backward_formulas.py derives grouped ones by hand), so the
    # backward is compared where every convolution is dense.
    dense = all(step.groups == 1 for step in model.steps) and not any(step.kind == "functional_conv" for step in model.steps)
    if training and dense:
        assert report.backward_macs == backward_macs


def test_the_sum_check_sees_a_wrong_total() -> None:
    # _check_sums is not vacuous: a report whose root claims MACs its rows do not hold fails it.
    model = Composed(2, 4, [Step("conv", 2, 3)], classes=3)
    report = tt.analyze(model, (1, 2, 4, 4))
    broken = dataclasses.replace(report.layers[0], macs=report.layers[0].macs + 1)
    fake = type("R", (), {"layers": [broken, *report.layers[1:]], "total_macs": report.total_macs})()
    try:
        _check_sums(fake)  # type: ignore[arg-type]
    except AssertionError:
        return
    raise AssertionError("the sum check accepted a root whose MACs are not its own plus its children's")
