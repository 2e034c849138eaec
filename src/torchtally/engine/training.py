"""What a training run adds to a forward: parameters that can take gradients without the
user's parameters ever receiving one, and the tensors the backward pass starts from."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.nn.parameter import is_lazy

from ..errors import InputError
from .fakes import FakeConverter, fake_parameter, is_fake_limitation
from .memory import tensor_bytes
from .params import ParameterIndex
from .tensors import iter_tensors
from .tree import ModuleNode

LossFn = Callable[[Any], torch.Tensor]


def stand_in_parameters(nodes: list[ModuleNode], index: ParameterIndex, fakes: FakeConverter | None) -> list[nn.Parameter]:
    """Put a stand-in in every parameter slot for the run, and return the stand-ins.

    Backward accumulates gradients into the leaf tensors the forward used; if those were the
    user's parameters their ``.grad`` would be written. A stand-in is a fake twin (fake run)
    or a detached alias sharing the data (real run, no copy), a leaf with the parameter's
    ``requires_grad``. A parameter held in two slots (tied weights) gets one stand-in. The
    model state guard puts the user's parameters back in their slots afterwards.

    A lazy (uninitialized) parameter has no data to alias until the forward materialises it,
    in place; it is its own stand-in. That is safe because lazy models only run on a
    throwaway deep copy (see ``analyze``), whose parameters may take gradients."""
    made: dict[int, nn.Parameter] = {}
    for node in nodes:
        slots = node.module._parameters
        for name, param in list(slots.items()):
            if param is None:
                continue
            if is_lazy(param):
                made[id(param)] = param
                continue
            stand_in = made.get(id(param))
            if stand_in is None:
                if fakes is None and param.is_inference() and param.requires_grad:
                    raise InputError(
                        f"parameter {node.name + '.' if node.name else ''}{name} is an inference tensor (made under "
                        "torch.inference_mode()), which autograd cannot differentiate: a real training run is "
                        "impossible; the default fake run (run='auto') works"
                    )
                if fakes is not None:
                    stand_in = fake_parameter(fakes.fake_mode, fakes.tensor(param), param.requires_grad)
                else:
                    stand_in = nn.Parameter(param.detach(), requires_grad=param.requires_grad)
                made[id(param)] = stand_in
                index.add_stand_in(param, stand_in)
            slots[name] = stand_in
        refresh = getattr(node.module, "_init_flat_weights", None)
        if callable(refresh):  # RNNs keep their own list of their weights
            refresh()
    return list(made.values())


def backward_targets(output: Any, loss_fn: LossFn | None) -> list[torch.Tensor]:
    """The tensors backward starts from: ``loss_fn(output)`` when given, else the output's
    ``loss`` (Hugging Face models given labels), else every floating output that requires grad."""
    if loss_fn is not None:
        try:
            loss = loss_fn(output)
        except Exception as exc:
            if is_fake_limitation(exc):  # needs real values: the orchestrator falls back to a real run
                raise
            raise InputError(f"loss_fn raised {type(exc).__name__}: {exc}") from exc
        if not isinstance(loss, torch.Tensor):
            raise InputError(f"loss_fn must return a tensor; it returned {type(loss).__name__}")
        if not loss.requires_grad:
            raise InputError("the tensor loss_fn returned does not require grad: nothing to differentiate")
        return [loss]
    given = output.get("loss") if isinstance(output, dict) else getattr(output, "loss", None)
    if isinstance(given, torch.Tensor) and given.requires_grad and given.dim() == 0:
        return [given]
    unique = {id(t): t for t in iter_tensors(output)}
    targets = [t for t in unique.values() if t.requires_grad and t.is_floating_point()]
    if not targets:
        raise InputError(
            "training=True, but no output of the model requires grad (are all parameters frozen, "
            "and do the inputs not require grad?): there is no backward pass to analyse"
        )
    return targets


def seed_gradients(targets: list[torch.Tensor]) -> list[torch.Tensor | None]:
    """The gradients backward starts with: none for a scalar loss (autograd makes it), ones
    for anything else (what a loss's gradient costs to hold, without assuming a loss)."""
    return [None if t.dim() == 0 else torch.ones_like(t) for t in targets]


class GradientBytes:
    """The bytes of the gradients a backward pass leaves in ``.grad``.

    A sparse gradient (``nn.Embedding(sparse=True)``) is measured as autograd hands it to the
    parameter, by a hook: accumulating it into ``.grad`` clones it, and PyTorch's fake clone
    of a sparse tensor has no entries (nnz 0), so a fake run's ``.grad`` would count nothing."""

    def __init__(self, params: list[nn.Parameter]):
        self._sparse: dict[int, int] = {}  # id(param) -> bytes of its incoming sparse gradient
        self._hooks = [
            param.register_hook(functools.partial(self._note, id(param)))  # type: ignore[no-untyped-call]
            for param in params
            if param.requires_grad and not is_lazy(param)  # lazy ones run for real (no fake clone)
        ]

    def _note(self, key: int, grad: torch.Tensor) -> None:
        if grad.layout != torch.strided:
            self._sparse[key] = tensor_bytes(grad)

    def total(self, grads: list[tuple[torch.Tensor, torch.Tensor]]) -> int:
        """The bytes of ``grads`` (parameter, its ``.grad``); removes the hooks."""
        for hook in self._hooks:
            hook.remove()
        return sum(self._sparse.get(id(param), tensor_bytes(grad)) for param, grad in grads)
