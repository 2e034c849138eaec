"""Analysis changes nothing: capture what a run could change in the user's model and in
torch's global state, and put it back afterwards (also when the run raises).

Captured: every module's ``training`` flag and its parameter/buffer slots (the objects,
so a forward that reassigns ``self.weight`` is undone), each parameter's and buffer's
``requires_grad`` and data (a forward assigning ``tensor.data = ...`` bypasses every
operator; the original data is kept by reference and put back), and the global RNG states.

Values: a fake run never writes a real tensor (they are converted to fake ones before any
operator sees them). Before a real run the buffers are copied (they are small, and
BatchNorm writes its running statistics without declaring it in its schema); parameters
are protected copy-on-write: the first operator that declares a write into a parameter's
storage first saves a copy of it. Writes that bypass PyTorch's dispatcher (through
``.numpy()`` or raw pointers) cannot be seen and are not undone."""

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
        held = [t for slots in (*self._param_slots, *self._buffer_slots) for t in slots.values() if t is not None]
        self._requires_grad = [(tensor, tensor.requires_grad) for tensor in held]
        # The data each tensor holds now, by reference (no copy), to undo `tensor.data = ...`.
        self._data = [(tensor, tensor.data, _data_signature(tensor)) for tensor in held if not is_lazy(tensor)]
        self._buffer_copies: list[tuple[torch.Tensor, torch.Tensor]] = []
        self._cpu_rng = torch.random.get_rng_state()
        cuda_ready = torch.cuda.is_initialized()  # type: ignore[no-untyped-call]
        self._cuda_rng = torch.cuda.get_rng_state_all() if cuda_ready else None
        # storage address -> the parameters living in it (real tensors only).
        self._storages: dict[int, list[torch.Tensor]] = {}
        for slots in self._param_slots:
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

    def copy_buffers(self) -> None:
        """Before a real run: keep a copy of every real buffer's values."""
        seen: set[int] = set()
        for slots in self._buffer_slots:
            for buffer in slots.values():
                if buffer is None or id(buffer) in seen or is_lazy(buffer) or buffer.device.type == "meta":
                    continue
                seen.add(id(buffer))
                self._buffer_copies.append((buffer, buffer.detach().clone()))

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
        for tensor, data, signature in self._data:
            if _data_signature(tensor) != signature:
                tensor.data = data
        with torch.no_grad():
            for saved in self._saved.values():
                for tensor, copy in saved:
                    tensor.copy_(copy)
            for buffer, copy in self._buffer_copies:
                buffer.copy_(copy)
        self._saved.clear()
        self._buffer_copies.clear()
        for tensor, flag in self._requires_grad:
            if tensor.requires_grad != flag:
                tensor.requires_grad_(flag)
        for module, flag in zip(self._modules, self._training):
            module.training = flag
        torch.random.set_rng_state(self._cpu_rng)
        if self._cuda_rng is not None:
            torch.cuda.set_rng_state_all(self._cuda_rng)


def _data_signature(tensor: torch.Tensor) -> tuple[Any, ...]:
    """What identifies a tensor's data: a `.data` assignment changes at least one of these."""
    address = 0 if tensor.device.type == "meta" or type(tensor.data) is not torch.Tensor else tensor.data_ptr()
    return (type(tensor.data), tensor.device, tensor.dtype, tuple(tensor.shape), tensor.stride(), address)


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
