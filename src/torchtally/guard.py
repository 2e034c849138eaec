"""Analysis changes nothing: capture what a run could change in the user's model and in
torch's global state, and put it back afterwards (also when the run raises).

Captured: every module's ``training`` flag and its parameter/buffer slots (the objects,
so a forward that reassigns ``self.weight`` is undone), each parameter's
``requires_grad``, and the global RNG states. Values are protected copy-on-write: during a
real run, the first operator that writes into a parameter's or buffer's storage (BatchNorm
running statistics, ``num_batches_tracked``, a forward that updates its own weights) first
saves a copy of that tensor. A fake run never writes to real tensors (they are converted
to fake ones before any operator sees them)."""

from __future__ import annotations

from typing import Any

import torch
from torch._ops import OpOverload
from torch import nn
from torch.nn.parameter import is_lazy

from .tree import ModuleNode


def _written_arguments(func: OpOverload) -> list[tuple[int, str]]:
    return [
        (position, arg.name)
        for position, arg in enumerate(func._schema.arguments)
        if arg.alias_info is not None and arg.alias_info.is_write
    ]


class ModelState:
    def __init__(self, nodes: list[ModuleNode]):
        self._modules = [node.module for node in nodes]
        self._training = [module.training for module in self._modules]
        self._param_slots: list[dict[str, Any]] = [dict(module._parameters) for module in self._modules]
        self._buffer_slots: list[dict[str, Any]] = [dict(module._buffers) for module in self._modules]
        self._requires_grad = [
            (param, param.requires_grad) for slots in self._param_slots for param in slots.values() if param is not None
        ]
        self._cpu_rng = torch.random.get_rng_state()
        cuda_ready = torch.cuda.is_initialized()  # type: ignore[no-untyped-call]
        self._cuda_rng = torch.cuda.get_rng_state_all() if cuda_ready else None
        # storage address -> the model tensors living in it (real tensors only).
        self._storages: dict[int, list[torch.Tensor]] = {}
        for slots in (*self._param_slots, *self._buffer_slots):
            for tensor in slots.values():
                if tensor is None or is_lazy(tensor) or tensor.device.type == "meta" or tensor.numel() == 0:
                    continue
                try:
                    address = tensor.untyped_storage().data_ptr()
                except (RuntimeError, NotImplementedError):  # tensors without storage
                    continue
                self._storages.setdefault(address, []).append(tensor)
        self._saved: dict[int, list[tuple[torch.Tensor, torch.Tensor]]] = {}
        self._written: dict[OpOverload, list[tuple[int, str]]] = {}

    def before_write(self, func: OpOverload, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Called before a mutating operator runs for real: save what it is about to overwrite."""
        written = self._written.get(func)
        if written is None:
            written = self._written[func] = _written_arguments(func)
        for position, name in written:
            value = args[position] if position < len(args) else kwargs.get(name)
            for tensor in value if isinstance(value, (list, tuple)) else (value,):
                if not isinstance(tensor, torch.Tensor) or tensor.device.type == "meta":
                    continue
                address = tensor.untyped_storage().data_ptr()
                if address in self._storages and address not in self._saved:
                    self._saved[address] = [(t, t.detach().clone()) for t in self._storages[address]]

    def restore(self) -> None:
        for module, params, buffers in zip(self._modules, self._param_slots, self._buffer_slots):
            _restore_slots(module, module._parameters, params)
            _restore_slots(module, module._buffers, buffers)
        with torch.no_grad():
            for saved in self._saved.values():
                for tensor, copy in saved:
                    tensor.copy_(copy)
        self._saved.clear()
        for param, flag in self._requires_grad:
            if param.requires_grad != flag:
                param.requires_grad_(flag)
        for module, flag in zip(self._modules, self._training):
            module.training = flag
        torch.random.set_rng_state(self._cpu_rng)
        if self._cuda_rng is not None:
            torch.cuda.set_rng_state_all(self._cuda_rng)


def _restore_slots(module: nn.Module, current: dict[str, Any], before: dict[str, Any]) -> None:
    if len(current) == len(before) and all(current.get(k, _MISSING) is v for k, v in before.items()):
        return
    for name in [k for k in current if k not in before]:
        del current[name]
    for name, value in before.items():
        if current.get(name, _MISSING) is not value:
            current[name] = value
    # Modules that cache their weights (RNNs keep a flat list) rebuild it from the slots.
    refresh = getattr(module, "_init_flat_weights", None)
    if callable(refresh):
        refresh()


_MISSING = object()
