"""Analysis changes nothing: capture what a run could change in the user's model and in
torch's global state, and put it back afterwards (also when the run raises).

Captured: every module's own attributes (``training``, plain attributes such as a cached
tensor, and its parameter, buffer and submodule slots, by object identity: a forward that
reassigns ``self.weight`` or creates a submodule is undone), the contents of the containers
its attributes reach and the hooks of its tensors (containers.py: a forward that fills
``self.cache`` or registers a hook is undone), each parameter's and buffer's
``requires_grad``, ``.grad`` and data (a forward assigning ``tensor.data = ...`` bypasses
every operator; the original data is kept by reference and put back), and the process-wide
state a forward can change (global_state.py: RNGs, default dtype, grad mode, autocast,
global hooks, the recursion limit).

Values: a fake run never writes a real tensor (they are converted to fake ones before any
operator sees them). Before a real run the buffers are copied (they are small, and
BatchNorm writes its running statistics without declaring it in its schema); parameters
are protected copy-on-write: the first operator that declares a write into a parameter's
storage first saves a copy of it, and so do plain tensor attributes (a tensor kept in
``self.scale`` or in a list attribute). Writes that bypass PyTorch's dispatcher (through
``.numpy()`` or raw pointers) cannot be seen and are not undone."""

from __future__ import annotations

import operator
from typing import Any

import torch
from torch._ops import OpOverload
from torch._subclasses.fake_tensor import FakeTensor
from torch.nn.parameter import is_lazy
from torch.utils._mode_utils import no_dispatch

from ..errors import TorchtallyError
from .containers import OwnedState
from .global_state import GlobalState
from .tree import ModuleNode


def _written_arguments(func: OpOverload) -> list[tuple[int, str]]:
    return [
        (position, arg.name)
        for position, arg in enumerate(func._schema.arguments)
        if arg.alias_info is not None and arg.alias_info.is_write
    ]


class ModelState:
    def __init__(self, nodes: list[ModuleNode]):
        tree = [node.module for node in nodes]
        # What the module tree reaches beyond its slots: containers, plain tensors, and modules
        # kept outside the tree (in a dict attribute), which are guarded like the tree's own.
        self._owned = OwnedState(tree)
        self._modules = [*tree, *self._owned.hidden_modules]
        self._classes = [(module, type(module)) for module in self._modules]  # `module.__class__ = ...` is undone
        self._training = [module.training for module in self._modules]
        # Every module's own attributes (plain ones too: a forward that caches a tensor in
        # `self.cache`, creates a submodule, or recomputes `self.weight` in a weight-norm hook).
        self._attributes = [dict(module.__dict__) for module in self._modules]
        self._slots = [
            (module, slot, _as_dict(getattr(module, slot)))
            for module in self._modules
            for slot in ("_parameters", "_buffers", "_modules")
        ]
        self._buffers = [buffer for module in self._modules for buffer in module._buffers.values() if buffer is not None]
        params = [param for module in self._modules for param in module._parameters.values() if param is not None]
        held = list({id(t): t for t in (*params, *self._buffers, *self._owned.plain_tensors)}.values())
        self._owned.watch_hooks(held)
        self._requires_grad = [(tensor, tensor.requires_grad) for tensor in held]
        self._grads = [(tensor, tensor.grad) for tensor in held if not is_lazy(tensor)]
        # The data each tensor holds now, by reference (no copy), to undo `tensor.data = ...`.
        self._data = [(tensor, _data_of(tensor), _data_signature(tensor)) for tensor in held if not is_lazy(tensor)]
        self._buffer_copies: list[tuple[torch.Tensor, torch.Tensor, int]] = []  # (buffer, copy, its version then)
        self._globals = GlobalState()
        # What a real run's writes must not keep: parameters, plain tensor attributes and
        # existing gradients. Mapped by storage address in `copy_buffers` (a fake run writes no
        # real tensor, so it never needs the map).
        grads = [grad for _, grad in self._grads if isinstance(grad, torch.Tensor)]
        self._protected = [*params, *self._owned.plain_tensors, *grads]
        self._storages: dict[int, list[torch.Tensor]] | None = None  # storage address -> its tensors
        self._saved: dict[int, list[tuple[torch.Tensor, torch.Tensor]]] = {}
        self._written: dict[OpOverload, list[tuple[int, str]]] = {}

    def _storage_map(self) -> dict[int, list[torch.Tensor]]:
        """Storage address -> the protected real tensors living in it (made once)."""
        if self._storages is None:
            self._storages = {}
            for tensor in self._protected:
                if is_lazy(tensor) or tensor.device.type == "meta" or tensor.numel() == 0 or isinstance(tensor, FakeTensor):
                    continue
                try:
                    address = tensor.untyped_storage().data_ptr()
                except (RuntimeError, NotImplementedError):  # tensors without storage
                    continue
                self._storages.setdefault(address, []).append(tensor)
        return self._storages

    def copy_buffers(self) -> None:
        """Before a real run: keep a copy of every real buffer's values, and map where the
        tensors that copy-on-write protects live."""
        self._storage_map()
        seen: set[int] = set()
        for buffer in self._buffers:
            if id(buffer) in seen or is_lazy(buffer) or buffer.device.type == "meta":
                continue
            seen.add(id(buffer))
            self._buffer_copies.append((buffer, buffer.detach().clone(), _version(buffer)))

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
                storages = self._storage_map()
                address = tensor.untyped_storage().data_ptr()
                if address in storages and address not in self._saved:
                    self._saved[address] = [(t, t.detach().clone()) for t in storages[address]]

    def saved(self, tensor: torch.Tensor) -> bool:
        """Whether ``tensor``'s values were saved before a write (and will be put back)."""
        try:
            return tensor.untyped_storage().data_ptr() in self._saved
        except (RuntimeError, NotImplementedError):
            return False

    def restore(self) -> None:
        """Put everything back. Every step runs even if an earlier one fails (the flags and the
        global state are always restored); the first failure is raised afterwards."""
        failures: list[Exception] = []
        self._globals.drop_stray_modes()
        for step in (
            self._restore_attributes,
            self._owned.restore,
            self._restore_data,
            self._restore_values,
            self._restore_flags,
            self._globals.restore,
        ):
            try:
                step()
            except Exception as exc:  # noqa: BLE001 - collected and raised below
                failures.append(exc)
        if failures:
            raise TorchtallyError(f"could not fully restore the model after the run: {failures[0]}") from failures[0]

    def _restore_attributes(self) -> None:
        for module, cls in self._classes:
            if type(module) is not cls:  # a parametrization registered in the forward swaps the class
                module.__class__ = cls
        attributes = dict(zip(map(id, self._modules), self._attributes))
        for module, before in zip(self._modules, self._attributes):
            _restore_mapping(module.__dict__, before)
        for module, slot, before in self._slots:
            if _restore_mapping(getattr(module, slot), before) and slot == "_parameters":
                # Modules that cache their weights (RNNs keep a flat list) rebuild it from the
                # slots; the lists they had before (holding the same weights) are then put back.
                refresh = getattr(module, "_init_flat_weights", None)
                if callable(refresh):
                    refresh()
                    _restore_mapping(module.__dict__, attributes[id(module)])

    def _restore_data(self) -> None:
        for tensor, data, signature in self._data:
            if _data_signature(tensor) != signature:
                tensor.data = data
        for tensor, grad in self._grads:
            if tensor.grad is not grad:
                tensor.grad = grad

    def _restore_values(self) -> None:
        for saved in self._saved.values():
            for tensor, copy in saved:
                _copy_back(tensor, copy)
        for buffer, copy, version in self._buffer_copies:
            # Only a changed buffer is written back: a write bumps the version counter, which a
            # backward the user built before the analysis checks. (BatchNorm's kernel writes its
            # statistics without bumping it: hence the comparison of values too.)
            if _version(buffer) != version or not _same_values(buffer, copy):
                _copy_back(buffer, copy)
        self._saved.clear()
        self._buffer_copies.clear()

    def _restore_flags(self) -> None:
        for tensor, flag in self._requires_grad:
            if tensor.requires_grad != flag:
                tensor.requires_grad_(flag)
        for module, training in zip(self._modules, self._training):
            if module.training != training:
                module.training = training  # by attribute: a ScriptModule keeps it outside __dict__


def _version(tensor: torch.Tensor) -> int:
    """The version counter (-1 for an inference tensor, which keeps none)."""
    return -1 if tensor.is_inference() else int(tensor._version)


def _same_values(tensor: torch.Tensor, copy: torch.Tensor) -> bool:
    """Bit for bit (NaN included), without dispatching to the analysis's modes."""
    with torch.no_grad():
        if tensor.shape != copy.shape or tensor.dtype != copy.dtype:
            return False
        try:
            return bool(torch.equal(tensor.detach().reshape(-1).view(torch.uint8), copy.reshape(-1).view(torch.uint8)))
        except RuntimeError:  # a layout that cannot be viewed as bytes
            return bool(torch.equal(tensor, copy))


def _copy_back(tensor: torch.Tensor, copy: torch.Tensor) -> None:
    # A model made under torch.inference_mode() holds inference tensors, writable only there.
    with torch.inference_mode() if tensor.is_inference() else torch.no_grad():
        tensor.copy_(copy)


def _as_dict(mapping: Any) -> dict[str, Any]:
    """A plain copy of a module's slot mapping (ScriptModules use a mapping-like wrapper)."""
    if isinstance(mapping, dict):
        return dict(mapping)
    return {key: mapping[key] for key in mapping.keys()}


def _data_of(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor.data``; a fake tensor's is taken without a trip through its fake mode (half a
    millisecond each, seconds for a 7B model's runs): the meta tensor on its storage, which
    `.data = ` accepts back."""
    if isinstance(tensor, FakeTensor):
        with no_dispatch():
            return tensor.data
    return tensor.data


def _data_signature(tensor: torch.Tensor) -> tuple[Any, ...]:
    """What identifies a tensor's data: a `.data` assignment changes at least one of these
    (a fake tensor's data lives on the meta device)."""
    device = tensor.device
    address = 0
    if device.type != "meta" and not isinstance(tensor, FakeTensor):
        try:
            address = tensor.data_ptr()
        except RuntimeError:  # a distributed tensor (DTensor): no data pointer of its own
            pass
    return (device, tensor.dtype, tensor.shape, tensor.stride(), address)


def _restore_mapping(current: Any, before: dict[str, Any]) -> bool:
    """Make ``current`` hold exactly ``before``'s entries (by identity, in their order); True
    if it changed."""
    if type(current) is dict:  # a module's own __dict__ and slots: compared at C speed
        if len(current) == len(before) and all(map(operator.is_, current.values(), before.values())):
            if list(current) == list(before):
                return False
    else:
        keys = list(current.keys())
        if keys == list(before) and all(current[key] is before[key] for key in keys):
            return False
    if isinstance(current, dict):  # a plain mapping: rebuilt in the original order
        current.clear()
        current.update(before)
        return True
    for key in keys:  # a ScriptModule's mapping wrapper: entry by entry
        if key not in before:
            del current[key]
    for key, value in before.items():
        if key not in current or current[key] is not value:
            current[key] = value
    return True
