"""thop's ``profile`` and ``clever_format``, counted right.

Change ``from thop import profile, clever_format`` to ``from torchtally.compat.thop import
profile, clever_format``: ``macs, params = profile(model, inputs=(x,))`` works as before.

* **macs** are multiply-accumulates (thop's number, which thop calls ops or FLOPs, is meant
  to be this) counted over every aten operator that runs, whatever issued it: modules,
  ``torch.matmul``/``@``, ``F.linear``, ``einsum``, attention. thop only sees the modules
  it has a rule for (a functional ``x @ w`` is 0) and adds normalisation and pooling work
  into the same number. Every call counts (a module called twice, twice). Bias additions and
  vector work (batch norm, activations, pooling) are not MACs: they are in
  ``tt.analyze(...).total_flops``. An exact ``int`` (thop returns floats).
* **params** are all the model's parameters, counted once by tensor identity (tied weights
  once), including those of modules never called. thop counts only the parameters of
  modules that have a rule and ran (an ``nn.Embedding``'s weights are not counted). With
  ``verbose``, a line names the modules never called.
* The model runs on fake tensors (no arithmetic, no memory) unless it needs real values;
  the inputs only give shapes, dtypes and devices.

``custom_ops={ModuleClass: rule}`` takes thop's rules, ``rule(module, inputs, output)``
adding the module's count to ``module.total_ops``. Each rule runs after the analysis, once
per call of every module of exactly that class (as thop matches it), with *meta* tensors of
that call's input and output shapes and dtypes (no values; ``inputs`` is the tuple of tensors
the call received, ``output`` the tensor it returned, or a tuple of them). As in thop, the
rule's count replaces the count of the module and everything below it, except for the model
itself and ``nn.Sequential``/``nn.ModuleList`` (subclasses too), whose rule replaces only the
module's own operators and adds to its children's counts. ``module.total_ops`` exists only
while the rule runs.

``verbose=True`` prints what thop prints for custom rules (``[INFO] Customize rule …``) and,
instead of thop's ``Register count_convNd()`` notices (torchtally has no per-class rules),
a ``[WARN]`` line per operator no formula covers (the MACs are then a lower bound) and an
``[INFO]`` line naming modules never called. ``report_missing=True`` prints the warnings too.
``ret_layer_info=True`` returns ``(macs, params, layers)`` as thop does: ``layers`` maps each
child's name to ``(macs, params, its children's dict)`` (empty below a custom-rule module).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Union

import torch
from torch import nn

from ..errors import InputError, TorchtallyError, describe_module
from ..render.units import with_commas
from ..report.model import ModelReport
from ..engine.run import analyze
from ..report.specs import TensorSpec

Rule = Callable[[nn.Module, tuple[torch.Tensor, ...], Any], Any]
Count = Union[int, float]
LayerInfo = dict[str, tuple[Count, int, "LayerInfo"]]


def _meta(spec: TensorSpec) -> torch.Tensor:
    shape = tuple(max(d, 0) for d in spec.shape)  # ragged (nested) dimensions are shown as -1
    return torch.empty(shape, dtype=getattr(torch, spec.dtype), device="meta")


def _exact(value: float) -> Count:
    return int(value) if float(value).is_integer() else float(value)


def _run_rule(rule: Rule, module: nn.Module, name: str, report: ModelReport, index: int) -> Count:
    """thop's way: ``module.total_ops`` starts at 0, the rule adds each call's count."""
    layer = report.layers[index]
    had = "total_ops" in module._buffers
    saved = module._buffers.get("total_ops")
    if not had and hasattr(module, "total_ops"):
        raise InputError(f"{describe_module(name, layer.type)} has an attribute total_ops, which thop's rules write")
    module.register_buffer("total_ops", torch.zeros(1, dtype=torch.float64), persistent=False)
    try:
        for inputs, outputs in zip(layer.inputs, layer.outputs):
            metas = tuple(_meta(spec) for spec in outputs)
            rule(module, tuple(_meta(spec) for spec in inputs), metas[0] if len(metas) == 1 else metas)
        total = module._buffers.get("total_ops")  # a buffer takes tensors only (thop's rules assign them)
        return _exact(float(total.sum()) if total is not None else 0.0)
    except Exception as exc:
        raise TorchtallyError(
            f"the custom_ops rule {getattr(rule, '__qualname__', rule)!r} failed for {describe_module(name, layer.type)} "
            f"(it gets meta tensors: shapes and dtypes, no values): {type(exc).__name__}: {exc}"
        ) from exc
    finally:
        if had:
            module._buffers["total_ops"] = saved
        else:
            module._buffers.pop("total_ops", None)
            module.__dict__.pop("total_ops", None)


def _custom_counts(
    model: nn.Module, report: ModelReport, custom_ops: Mapping[type, Rule], verbose: bool
) -> tuple[dict[int, Count], dict[int, Count]]:
    """Custom rules' counts by layer index: those that replace a module's whole subtree, and
    those that replace only its own operators (the root, Sequential/ModuleList: thop adds
    their children's counts to the rule's)."""
    if not custom_ops:
        return {}, {}
    modules = dict(model.named_modules())
    subtree: dict[int, Count] = {}
    own: dict[int, Count] = {}
    announced: set[type] = set()
    covered: set[int] = set()  # layers below a module whose rule covers its subtree
    for index, layer in enumerate(report.layers):
        module = modules[layer.name]
        rule = custom_ops.get(type(module))
        if layer.parent in covered:
            covered.add(index)
            continue
        if rule is None:
            continue
        if verbose and type(module) not in announced:
            print(f"[INFO] Customize rule {getattr(rule, '__qualname__', rule)}() {type(module)}.")
            announced.add(type(module))
        count = _run_rule(rule, module, layer.name, report, index)
        if layer.parent is None or isinstance(module, (nn.Sequential, nn.ModuleList)):
            own[index] = count
        else:
            subtree[index] = count
            covered.add(index)
    return subtree, own


def _warnings(report: ModelReport) -> list[str]:
    lines = [
        f"[WARN] Cannot find rule for {name} ({calls} call{'s' if calls > 1 else ''}). "
        "Treat it as zero Macs: the MACs are a lower bound."
        for name, calls in sorted(report.uncounted_ops.items())
    ]
    if report.unused_modules:
        lines.append(
            f"[INFO] Modules never called: {', '.join(report.unused_modules)} "
            f"(params counts their weights: {with_commas(report.unused_params)} of {with_commas(report.total_params)} unused)"
        )
    return lines


def _layer_info(
    report: ModelReport, index: int, subtree: Mapping[int, Count], own: Mapping[int, Count]
) -> tuple[Count, LayerInfo]:
    """The MACs of a layer's subtree (custom rules' counts where they apply) and thop's
    per-child dictionary below it."""
    layer = report.layers[index]
    if index in subtree:
        return subtree[index], {}
    macs: Count = own.get(index, layer.self_macs)
    info: LayerInfo = {}
    for child in layer.children:
        child_macs, below = _layer_info(report, child, subtree, own)
        info[report.layers[child].name.rsplit(".", 1)[-1]] = (child_macs, report.layers[child].subtree_params, below)
        macs += child_macs
    return macs, info


def profile(
    model: nn.Module,
    inputs: Any,
    custom_ops: Mapping[type, Rule] | None = None,
    verbose: bool = True,
    ret_layer_info: bool = False,
    report_missing: bool = False,
) -> tuple[Count, int] | tuple[Count, int, LayerInfo]:
    """``(macs, params)`` of one forward pass ``model(*inputs)``, as thop's ``profile``
    returns them, counted by torchtally (see the module docstring)."""
    if not isinstance(model, nn.Module):
        raise InputError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    if custom_ops is not None and not isinstance(custom_ops, Mapping):
        raise InputError("custom_ops must be a dict {module class: rule(module, inputs, output)}")
    args = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
    report = analyze(model, input_data=args)
    subtree, own = _custom_counts(model, report, custom_ops or {}, bool(verbose))
    if verbose or report_missing:
        for line in _warnings(report):
            print(line)
    macs, info = _layer_info(report, 0, subtree, own)
    if ret_layer_info:
        return macs, report.total_params, info
    return macs, report.total_params


def clever_format(nums: Any, format: str = "%.2f") -> str | tuple[str, ...]:
    """thop's ``clever_format``, to the character: ``1814073344`` -> ``'1.81G'``; a unit is
    used above (not at) its power of 1000 (``1000`` -> ``'1000.00B'``, ``1e6`` ->
    ``'1000.00K'``), negative numbers stay in ``B``; one number gives a string, several a
    tuple."""
    values = list(nums) if isinstance(nums, Iterable) and not isinstance(nums, (str, bytes)) else [nums]
    texts = []
    for value in values:
        for scale, unit in (*_THOP_UNITS, (1, "B")):
            if value > scale or unit == "B":
                texts.append(format % (value / scale) + unit)
                break
    return texts[0] if len(texts) == 1 else tuple(texts)


_THOP_UNITS = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K"))
