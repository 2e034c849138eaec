"""The figures golden files hold, derived here without torchtally's engine: resnet18's FLOPs,
activation bytes and peak memory (tests/golden/*resnet18*), and the FLOPs of the compare
table's models (tests/golden/compare_lightweight.txt). A golden file only says the output did
not change; these say the numbers in it are right.

* FLOPs = FlopCounterMode's (2 x MACs of every convolution and matmul: it covers all of them
  in these models) + the vector work of every other operator, by the per-operator table in
  docs/counting.md, summed here from forward hooks on the modules that issue it.
* Activations = the bytes of every leaf module's outputs, per call, from forward hooks on a
  real run.
* Peak = parameters + buffers + inputs + the most bytes of operator results alive at once in
  a real run, followed by a dispatch mode of this file's own that watches storages die.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Iterator
from typing import Any

import pytest
import torch
import torchvision
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode
from torchvision.models.mobilenetv2 import InvertedResidual as V2Block
from torchvision.models.mobilenetv3 import InvertedResidual as V3Block
from torchvision.models.resnet import BasicBlock
from torchvision.ops.misc import SqueezeExcitation

import torchtally as tt

INPUT = (1, 3, 224, 224)
ONE_PER_OUTPUT = (nn.ReLU, nn.ReLU6, nn.Hardswish, nn.Hardsigmoid)  # pointwise: 1 per result element


def _numel(value: Any) -> int:
    return value.numel() if isinstance(value, torch.Tensor) else 0


def _vector_flops(module: nn.Module, inputs: tuple[Any, ...], output: Any) -> int:
    """The vector work a module's forward issues itself (docs/counting.md's table); convolutions
    and matmuls are FlopCounterMode's."""
    out = _numel(output)
    if isinstance(module, nn.BatchNorm2d):
        return 4 * out  # eval batch norm with affine parameters: normalise 2, scale 1, shift 1
    if isinstance(module, ONE_PER_OUTPUT):
        return out
    if isinstance(module, nn.MaxPool2d):
        k = module.kernel_size
        window = k * k if isinstance(k, int) else math.prod(k)
        return window * out  # the window size per output element
    if isinstance(module, nn.AdaptiveAvgPool2d):
        return _numel(inputs[0])  # 1 per input element
    if isinstance(module, BasicBlock):
        return out  # `out += identity`: 1 per element (its ReLU is the block's relu module)
    if isinstance(module, (V2Block, V3Block)) and module.use_res_connect:
        return out  # `x + self.conv(x)`
    if isinstance(module, SqueezeExcitation):
        return out  # `scale * input`
    return 0  # containers, convolutions, Linear, Flatten, Dropout in eval, Identity


def independent_flops(name: str) -> int:
    with torch.device("meta"):
        model = torchvision.models.get_model(name).eval()
    vector = 0

    def hook(module: nn.Module, inputs: tuple[Any, ...], output: Any) -> None:
        nonlocal vector
        vector += _vector_flops(module, inputs, output)

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    if isinstance(model, torchvision.models.MobileNetV2):
        # Its forward pools functionally (F.adaptive_avg_pool2d, no module): 1 per element of
        # what `features` returns (1 x 1280 x 7 x 7).
        handles.append(model.features.register_forward_hook(lambda m, i, out: hook(nn.AdaptiveAvgPool2d(1), (out,), None)))
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.empty(INPUT, device="meta"))
    for handle in handles:
        handle.remove()
    return counter.get_total_flops() + vector


@pytest.mark.parametrize("name", ["resnet18", "squeezenet1_1", "mobilenet_v2", "mobilenet_v3_small"])
def test_flops_of_the_golden_models_by_the_formula_table(name: str) -> None:
    with torch.device("meta"):
        model = torchvision.models.get_model(name)
    report = tt.analyze(model, INPUT)
    assert report.total_flops == independent_flops(name)
    assert not report.uncounted_ops  # every operator has a formula: the total is not a lower bound


@pytest.fixture(scope="module")
def real_resnet18() -> nn.Module:
    torch.manual_seed(0)
    return torchvision.models.resnet18().eval()


def test_resnet18_activation_bytes_by_forward_hooks(real_resnet18: nn.Module) -> None:
    total = 0

    def hook(module: nn.Module, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
        nonlocal total
        total += output.numel() * output.element_size()

    leaves = [m for m in real_resnet18.modules() if not list(m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    try:
        with torch.no_grad():
            real_resnet18(torch.randn(INPUT))
    finally:
        for handle in handles:
            handle.remove()
    report = tt.analyze(real_resnet18, INPUT)
    assert report.memory.activations == total


class _LiveStorages(TorchDispatchMode):  # type: ignore[misc]
    """Bytes of operator results alive: each new storage counts until its last tensor dies."""

    def __init__(self) -> None:
        super().__init__()
        self.alive: dict[int, int] = {}  # storage address -> bytes
        self.holders: dict[int, int] = {}  # storage address -> tensors of ours still alive
        self.peak = 0
        self.known: set[int] = set()  # storages that existed before the run (weights, inputs)

    def _released(self, address: int) -> None:
        self.holders[address] -= 1
        if self.holders[address] == 0:
            self.alive.pop(address, None)

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None) -> Any:
        result = func(*args, **(kwargs or {}))
        for tensor in _tensors(result):
            storage = tensor.untyped_storage()
            address = storage.data_ptr()
            if address in self.known or storage.nbytes() == 0:
                continue
            if address not in self.holders or self.holders[address] == 0:
                self.alive[address] = storage.nbytes()
                self.holders[address] = 0
            self.holders[address] += 1
            weakref.finalize(tensor, self._released, address)
        self.peak = max(self.peak, sum(self.alive.values()))
        return result


def _tensors(value: Any) -> Iterator[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _tensors(item)


def test_resnet18_peak_by_an_allocation_tracker_of_its_own(real_resnet18: nn.Module) -> None:
    x = torch.randn(INPUT)
    held = [*real_resnet18.parameters(), *real_resnet18.buffers(), x]
    tracker = _LiveStorages()
    tracker.known = {t.untyped_storage().data_ptr() for t in held}
    with torch.no_grad(), tracker:
        out = real_resnet18(x)
    del out
    resident = sum(t.untyped_storage().nbytes() for t in held)  # all distinct storages here
    report = tt.analyze(real_resnet18, INPUT)
    assert report.memory.peak == resident + tracker.peak
