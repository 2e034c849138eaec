"""torchsummary's ``summary(model, input_size, batch_size=-1, device="cuda")``, counted right.

Change ``from torchsummary import summary`` to ``from torchtally.compat.torchsummary import
summary``: the same arguments print the same table, character for character (a 64-wide
``----`` rule, ``Layer (type)`` / ``Output Shape`` / ``Param #`` right-aligned in columns of
20, 25 and 15, a ``====`` rule, the params footer, the sizes in MB). The rows are
torchsummary's: one per call of every module except the model itself and its
``nn.Sequential`` / ``nn.ModuleList`` containers (these are listed too when they hold
parameters themselves), in the order the calls returned, labelled ``Conv2d-1``,
``Conv2d-2``, …; the first dimension of every output shape is the batch (``-1`` by default).

Where the numbers differ from torchsummary's, torchsummary is wrong:

* **Param #** is what the module holds itself, counted once by tensor identity: a module's
  second call, and a module whose parameters an earlier row holds (tied weights), show 0,
  so the column adds up to Total params. torchsummary repeats them (a conv called twice
  counts twice) and sees only attributes named ``weight`` and ``bias``.
* **Total params** is every parameter of the model, counted once, including those of
  modules never called; when some parameters are unused or shared, lines under the table
  say how many and name the modules never called.
* **Sizes** are in MB of 2**20 bytes from each tensor's real dtype (a float16 model's sizes
  are half of a float32 one's); torchsummary assumes 4 bytes. *Input size*: the inputs'
  bytes. *Forward/backward pass size*: twice the bytes of every leaf module's outputs, all
  calls (each output and its gradient: torchsummary's convention, except that a container's
  output, the same tensor as its last layer's, is not counted again). *Params size*: the
  parameters' bytes. *Estimated Total Size*: the sum of the three. (The same figures as
  ``report.table(style="flat")``.)
* **No GPU needed.** The model runs on fake tensors on its own device: nothing is computed
  and no memory is used. ``device`` is where torchsummary would have put the inputs: it is
  checked to be a device name and not used, so ``device="cuda"`` works on a machine without
  CUDA. ``batch_size=-1`` runs with a batch of 1 (the sizes are one sample's) and shows
  ``-1``; a positive ``batch_size`` is used and shown as it is.
* **The model's own mode**, as torchsummary: a model in train mode runs in train mode (a
  googlenet's auxiliary heads run then). A BatchNorm1d in train mode cannot normalise a
  batch of one: pass ``batch_size=2`` (torchsummary ran a batch of 2 for -1).

Returns the `ModelReport` (torchsummary returns None): ``print(report)`` shows torchtally's
flat table, one row per module with its calls, and its fuller footer. In a notebook the
table is printed as the cell's output, and the returned report, as that cell's value, does
not show a second table.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ..errors import InputError
from ..engine.inputs import DtypeSpec
from ..render.footer import size_lines
from ..render.units import shape_text, with_commas
from ..report.model import LayerReport, ModelReport
from ..engine.run import analyze
from ._common import dims, emit, full_depth, notes

WIDTH = 64  # torchsummary's rules


def _line(label: str, shape: str, params: str) -> str:
    return f"{label:>20}  {shape:>25} {params:>15}"


def _check_device(device: Any) -> None:
    try:
        torch.device(device.lower() if isinstance(device, str) else device)
    except (RuntimeError, TypeError) as exc:
        raise InputError(f"device={device!r} is not a device torch knows (e.g. 'cuda' or 'cpu')") from exc


def _shapes(input_size: Any) -> list[tuple[int, ...]]:
    """torchsummary's input_size: one shape without the batch, or a list of them."""
    single = dims(input_size)
    if single is not None:
        return [single]
    shapes = [dims(item) for item in input_size] if isinstance(input_size, (tuple, list)) and input_size else [None]
    if any(s is None for s in shapes):
        raise InputError(
            "input_size must be one shape without the batch dimension, such as (3, 224, 224), or a list of "
            f"them for several inputs, such as [(1, 16, 16), (28,)]; got {input_size!r}"
        )
    return [s for s in shapes if s is not None]


def _record(finished: list[int], index: int, module: nn.Module, args: Any, output: Any) -> None:
    finished.append(index)


def _restart(finished: list[int], module: nn.Module, args: Any) -> None:
    finished.clear()  # a new run of the model (a fake run that fell back to a real one)


def _calls_in_order(report: ModelReport, finished: list[int]) -> list[tuple[int, int]]:
    """(layer index, call number) of every call, in the order the calls returned. Calls no
    hook saw (a ``forward`` called directly, not through the module) come last."""
    seen = [0] * len(report.layers)
    order = []
    for index in finished:
        if seen[index] < report.layers[index].calls:
            order.append((index, seen[index]))
            seen[index] += 1
    for index, layer in enumerate(report.layers):
        order.extend((index, call) for call in range(seen[index], layer.calls))
    return order


def _output(layer: LayerReport, call: int, batch_size: int) -> str:
    specs = layer.outputs[call] if call < len(layer.outputs) else ()
    shapes = [
        (batch_size, *spec.shape[1:]) if batch_size == -1 and spec.shape else spec.shape for spec in specs
    ]
    if not shapes:
        return "--"
    return shape_text(shapes[0]) if len(shapes) == 1 else "[" + ", ".join(shape_text(s) for s in shapes) + "]"


def render(report: ModelReport, rows: Sequence[tuple[int, int]], batch_size: int) -> str:
    """torchsummary's text for these (layer index, call number) rows."""
    lines = ["-" * WIDTH, _line("Layer (type)", "Output Shape", "Param #"), "=" * WIDTH]
    for number, (index, call) in enumerate(rows, start=1):
        layer = report.layers[index]
        params = layer.params if call == 0 else 0
        lines.append(_line(f"{layer.type}-{number}", _output(layer, call, batch_size), with_commas(params)))
    lines += [
        "=" * WIDTH,
        f"Total params: {with_commas(report.total_params)}",
        f"Trainable params: {with_commas(report.trainable_params)}",
        f"Non-trainable params: {with_commas(report.non_trainable_params)}",
        "-" * WIDTH,
        *size_lines(report),  # Input, Forward/backward pass, Params, Estimated Total (MB)
        "-" * WIDTH,
    ]
    extra = notes(report)
    return "\n".join(lines + (extra + ["-" * WIDTH] if extra else []))


def summary(
    model: nn.Module,
    input_size: Any,
    batch_size: int = -1,
    device: str | torch.device = "cuda",
    dtypes: DtypeSpec = None,
) -> ModelReport:
    """Print torchsummary's table for ``model`` on inputs of ``input_size`` (without the
    batch dimension; a list of shapes for several inputs) and return the report.

    ``dtypes``: the inputs' dtypes (one, or one per input; default: the model's floating
    dtype), as in later torchsummary versions. See the module docstring for the numbers."""
    if not isinstance(model, nn.Module):
        raise InputError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    _check_device(device)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or not (batch_size == -1 or batch_size >= 1):
        raise InputError(f"batch_size must be -1 (shown as -1, run with 1) or a whole number >= 1; got {batch_size!r}")
    batch = 1 if batch_size == -1 else batch_size
    sizes = [(batch, *shape) for shape in _shapes(input_size)]
    modules = list(model.modules())  # named_modules() order, as the report's layers
    finished: list[int] = []
    handles = [model.register_forward_pre_hook(functools.partial(_restart, finished))]
    try:
        handles += [m.register_forward_hook(functools.partial(_record, finished, i)) for i, m in enumerate(modules)]
        report = analyze(model, sizes[0] if len(sizes) == 1 else sizes, dtypes=dtypes, mode="same")
    finally:
        for handle in handles:
            handle.remove()
    rows = [
        (index, call)
        for index, call in _calls_in_order(report, finished)
        if report.layers[index].params
        or (index != 0 and not isinstance(modules[index], (nn.Sequential, nn.ModuleList)))
    ]
    view = report.with_view(full_depth(report), columns=["output_shape", "params"], rows=["type_names"], style="flat")
    return emit(render(report, rows, batch_size), view)
