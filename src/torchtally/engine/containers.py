"""The mutable Python state a model owns beyond its parameter, buffer and submodule slots:
containers reached from its modules' attributes (dicts, lists, sets, deques, tuples, and the
attributes of plain data objects: dataclass instances and namespaces; nested), the plain
tensors found there, and the hook dicts of its tensors. Captured before a run and put back, in place, afterwards.

Why in place: the user's code (and torch's own hook handles) hold references to these
containers, so a forward that fills ``self.cache[key]`` or appends to ``self.history`` must
find the very same dict or list emptied again, not a new one. Contents are compared and
restored by identity, so a FakeTensor a fake run put into a cache is gone afterwards.

The walk is bounded (depth and count), so a module holding a reference to a huge object
graph (a dataset, a tokenizer) costs a bounded amount; what lies beyond is not restored."""

from __future__ import annotations

import argparse
import collections
import dataclasses
import types
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

# Slots the guard restores itself (with a refresh of modules that cache their weights).
_SLOTS = frozenset({"_parameters", "_buffers", "_modules"})
# Values never walked into: they hold no state a forward would change for the model.
_OPAQUE = (
    str, bytes, int, float, complex, bool, type(None), type, range, slice,
    types.FunctionType, types.BuiltinFunctionType, types.MethodType, types.ModuleType,
    torch.dtype, torch.device, torch.Size,
)  # fmt: skip
# Exact types of _OPAQUE's most common members: most module attributes are one of these, or a
# tuple of them (a convolution's kernel_size), and are passed over without a walk.
_OPAQUE_EXACT = frozenset({str, int, float, bool, type(None), torch.dtype, torch.device, torch.Size})
# Containers whose emptiness says everything (a module's hook dicts, mostly): kept apart, cheaply.
_PLAIN_CONTAINERS = frozenset({dict, collections.OrderedDict, list, set})
MAX_DEPTH = 16
# Values walked from one attribute at most: a module holding a huge object graph (a dataset, a
# vocabulary of a million entries) costs a bounded time, and does not starve its other attributes.
MAX_VISITS = 10_000
# The hook dicts a tensor keeps as Python attributes (``tensor.register_hook`` and friends).
_TENSOR_HOOKS = ("_backward_hooks", "_post_accumulate_grad_hooks")


class OwnedState:
    """Containers, plain tensors and tensor hooks reachable from ``modules``' attributes, and
    the class-level containers of their classes (a cache shared by every instance)."""

    def __init__(self, modules: Iterable[nn.Module]):
        self._containers: list[tuple[Any, Any]] = []  # (container, its contents before)
        self._hooks: list[tuple[torch.Tensor, str, Any, Any]] = []  # (tensor, attribute, dict or None, its items)
        self.plain_tensors: list[torch.Tensor] = []  # tensors found in attributes and containers
        self.hidden_modules: list[nn.Module] = []  # modules in containers, outside the module tree
        self._empty: list[Any] = []  # containers that were empty: emptied again if the run filled them
        self._seen: set[int] = set()
        self._hooked: set[int] = set()  # tensors whose hook dicts are watched
        self._visits = 0
        walked_classes: set[type] = set()
        pending = list(modules)
        self._seen.update(id(module) for module in pending)
        while pending:
            module = pending.pop()
            found = len(self.hidden_modules)
            for key, value in module.__dict__.items():
                if key in _SLOTS:
                    continue
                kind = type(value)
                if kind in _OPAQUE_EXACT or (kind is tuple and all(type(item) in _OPAQUE_EXACT for item in value)):
                    continue  # holds nothing a run could change
                if kind in _PLAIN_CONTAINERS and not value:
                    self._empty.append(value)  # most of a module's hook dicts: nothing to walk
                else:
                    self._walk(value)
            for cls in type(module).__mro__:
                if cls in walked_classes:
                    continue
                walked_classes.add(cls)  # torch's own classes too: each class is looked at once
                if cls.__module__.startswith(("torch.", "builtins")):
                    continue
                for key, value in list(vars(cls).items()):
                    if isinstance(value, (dict, list, set, collections.deque)) and not key.startswith("__"):
                        self._walk(value)  # e.g. `class Rope: _cache = {}`, shared by every instance
            pending.extend(self.hidden_modules[found:])  # their attributes are walked too

    def watch_hooks(self, tensors: Iterable[torch.Tensor]) -> None:
        """Also restore the hook dicts of ``tensors`` (the parameters and buffers)."""
        for tensor in tensors:
            self._note_hooks(tensor)

    def _walk(self, value: Any) -> None:
        """Walk one attribute, with a budget of its own."""
        self._visits = 0
        self._visit(value, 0)

    def _note_hooks(self, tensor: torch.Tensor) -> None:
        if id(tensor) in self._hooked:
            return
        self._hooked.add(id(tensor))
        for name in _TENSOR_HOOKS:
            hooks = getattr(tensor, name, None)
            self._hooks.append((tensor, name, hooks, list(hooks.items()) if isinstance(hooks, dict) else None))

    def _visit(self, value: Any, depth: int) -> None:
        if isinstance(value, _OPAQUE) or depth > MAX_DEPTH or self._visits >= MAX_VISITS or id(value) in self._seen:
            return
        self._seen.add(id(value))
        self._visits += 1
        if isinstance(value, torch.Tensor):
            if not isinstance(value, nn.Parameter):
                self.plain_tensors.append(value)
                self._note_hooks(value)
            return
        if isinstance(value, nn.Module):  # held outside the module tree: guarded like it
            self.hidden_modules.append(value)
            return
        children: Iterable[Any]
        if isinstance(value, dict):
            self._containers.append((value, list(value.items())))
            children = list(value.values())
        elif isinstance(value, (list, collections.deque)):
            self._containers.append((value, list(value)))
            children = list(value)
        elif isinstance(value, (set, frozenset, tuple)):
            if isinstance(value, set):
                self._containers.append((value, set(value)))
            children = list(value)
        elif is_plain_data(value):
            attributes = vars(value)
            self._containers.append((attributes, list(attributes.items())))
            children = list(attributes.values())
        else:
            return
        for child in children:
            if self._visits >= MAX_VISITS:
                break
            self._visit(child, depth + 1)

    def restore(self) -> None:
        for container in self._empty:
            if container:
                container.clear()
        for container, before in self._containers:
            restore_container(container, before)
        for tensor, name, hooks, items in self._hooks:
            current = getattr(tensor, name, None)
            if current is hooks and (items is None or _same_items(current, items)):
                continue
            if isinstance(current, dict) and current is not hooks:
                current.clear()  # a hook dict the run created: empty it (the handles point here)
            if isinstance(hooks, dict) and items is not None:
                restore_container(hooks, items)
            setattr(tensor, name, hooks)


def is_plain_data(value: Any) -> bool:
    """An object that only holds data (a dataclass instance, a namespace, a UserDict or
    UserList, a ChainMap, an optimizer's state): its attributes are the model's state like a
    dict's entries. Other objects are shared, not walked: their state may belong to others (a
    lock's waiters, a logger's handlers, a dataset)."""
    if isinstance(value, (types.SimpleNamespace, argparse.Namespace, collections.UserDict, collections.UserList,
                          collections.ChainMap, torch.optim.Optimizer)):  # fmt: skip
        return isinstance(getattr(value, "__dict__", None), dict)
    return dataclasses.is_dataclass(value) and not isinstance(value, type) and isinstance(getattr(value, "__dict__", None), dict)


def _same_key(key: Any, old: Any) -> bool:
    """Keys equal by identity, or by value for the plain types keys usually are (a string key
    built anew compares equal, not identical); never by a tensor's elementwise ``==``."""
    if key is old:
        return True
    if type(key) is not type(old) or not isinstance(key, (str, bytes, int, float, tuple, frozenset)):
        return False
    try:
        return bool(key == old)
    except Exception:  # noqa: BLE001 - a tuple of tensors compares elementwise
        return False


def _same_items(current: dict[Any, Any], items: list[tuple[Any, Any]]) -> bool:
    return len(current) == len(items) and all(
        value is old_value and _same_key(key, old_key)
        for (key, value), (old_key, old_value) in zip(current.items(), items)
    )


def restore_container(container: Any, before: Any) -> None:
    """Make ``container`` hold ``before`` again, in place, only when it changed."""
    if isinstance(container, dict):
        if not _same_items(container, before):
            container.clear()
            container.update(before)
    elif isinstance(container, set):
        if len(container) != len(before) or any(item not in before for item in container):
            container.clear()
            container.update(before)
    elif len(container) != len(before) or any(a is not b for a, b in zip(container, before)):
        if isinstance(container, list):
            container[:] = before
        else:  # deque
            container.clear()
            container.extend(before)
