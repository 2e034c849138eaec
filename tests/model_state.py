"""The guarantee checker: everything an analysis could change in a model and in the process,
captured by value, and compared. Written apart from the engine's guard (it shares no code
with it), so a gap in the guard is not also a gap in the check.

What is compared:
* every module's ``training`` flag and every instance attribute, by identity, and through
  containers (dict, list, tuple, set, deque) and plain data objects' attributes (dataclass
  instances, namespaces), recursively, by identity of each item (ints and strings by value);
* every tensor reached that way (parameters, buffers, plain tensor attributes, tensors in
  containers): its object, class, dtype, device, shape, stride, storage, ``requires_grad``,
  ``.grad``, its hook dicts, and its content (bit for bit, so NaNs compare equal);
* the process: torch's CPU (and, if initialised, CUDA) RNG, Python's ``random``, numpy's
  global RNG, default dtype and device, grad mode, autocast, the recursion limit, the
  dispatch-mode stack, and torch's global module hooks;
* leftovers: any FakeTensor or meta tensor reachable from the model afterwards that was not
  there before is reported by itself (a model sharded in a simulated cluster is fake from
  the start).
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import random
import sys
import types
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.modules.module as module_globals
from torch import nn
from torch._subclasses.fake_tensor import FakeTensor
from torch.nn.parameter import is_lazy
from torch.utils._python_dispatch import _disable_current_modes, is_traceable_wrapper_subclass

MAX_DEPTH = 12  # deeper than any model state a test builds; within what the guard restores
_SIMPLE = (str, bytes, int, float, complex, bool, type(None))
_OPAQUE = (type, types.FunctionType, types.BuiltinFunctionType, types.MethodType, types.ModuleType, torch.dtype, torch.device)


def _no_data(tensor: torch.Tensor) -> bool:
    """Tensors whose content cannot be read here: meta, fake, and wrapper subclasses (a
    DTensor of a simulated cluster), which are compared by their other properties."""
    return tensor.device.type == "meta" or isinstance(tensor, FakeTensor) or is_traceable_wrapper_subclass(tensor)


def _bits(tensor: torch.Tensor) -> torch.Tensor | None:
    """A copy of the tensor's content that compares bit for bit (None when it has none)."""
    if _no_data(tensor) or tensor.is_sparse or tensor.is_quantized:
        return None
    data = tensor.detach()
    try:
        return data.contiguous().view(torch.uint8).clone() if data.dim() else data.clone()
    except (RuntimeError, TypeError):
        return data.clone()


@dataclass
class _Walk:
    """One capture: a flat record of every value reached, keyed by its path."""

    values: dict[str, Any] = field(default_factory=dict)
    fakes: dict[int, str] = field(default_factory=dict)  # id of a FakeTensor -> its path
    metas: dict[int, str] = field(default_factory=dict)  # id of a meta tensor -> its path
    seen: set[int] = field(default_factory=set)

    def tensor(self, path: str, tensor: torch.Tensor) -> None:
        if is_lazy(tensor):  # no shape or data yet: only the object itself can be compared
            self.values[path] = ("object", tensor)
            return
        if isinstance(tensor, FakeTensor):
            self.fakes.setdefault(id(tensor), path)
        elif tensor.device.type == "meta":
            self.metas.setdefault(id(tensor), path)
        hooks = {name: getattr(tensor, name, None) for name in ("_backward_hooks", "_post_accumulate_grad_hooks")}
        self.values[path] = (
            "tensor",
            tensor,
            type(tensor),
            tensor.dtype,
            tensor.device,
            tuple(tensor.shape),
            tensor.stride() if tensor.layout == torch.strided else None,
            None if _no_data(tensor) or tensor.layout != torch.strided else tensor.untyped_storage().data_ptr(),
            tensor.requires_grad,
            tensor.grad,
            {name: (hooks_dict, list(hooks_dict.items()) if isinstance(hooks_dict, dict) else None) for name, hooks_dict in hooks.items()},
            _bits(tensor),
        )

    def value(self, path: str, value: Any, depth: int) -> None:
        if isinstance(value, torch.Tensor):
            self.tensor(path, value)
            return
        if isinstance(value, _SIMPLE):
            self.values[path] = ("simple", type(value), value)
            return
        if isinstance(value, (nn.Module, *_OPAQUE)) or depth > MAX_DEPTH or id(value) in self.seen:
            self.values[path] = ("object", value)
            return
        self.seen.add(id(value))
        if isinstance(value, dict):
            self.values[path] = ("dict", value, [k for k in value])
            for key, item in list(value.items()):
                self.value(f"{path}[{key!r}]", item, depth + 1)
        elif isinstance(value, (list, tuple, collections.deque)):
            self.values[path] = ("sequence", value, len(value))
            for i, item in enumerate(list(value)):
                self.value(f"{path}[{i}]", item, depth + 1)
        elif isinstance(value, (set, frozenset)):
            self.values[path] = ("set", value, set(value))
        else:
            # Other objects by identity; the attributes of plain data objects (a dataclass, a
            # namespace) by value too. Not a lock's or a logger's state: that is not the model's.
            self.values[path] = ("object", value)
            data = isinstance(value, (types.SimpleNamespace, argparse.Namespace)) or (
                dataclasses.is_dataclass(value) and not isinstance(value, type) and hasattr(value, "__dict__")
            )
            if data:
                for key, item in list(vars(value).items()):
                    self.value(f"{path}.{key}", item, depth + 1)


def _global_hooks() -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name, value in vars(module_globals).items():
        if name.startswith("_global_") and isinstance(value, dict):
            found[name] = list(value.items())
        elif name.startswith("_global_") and isinstance(value, (bool, type(None))):
            found[name] = value
    return found


def _process_state() -> dict[str, Any]:
    numpy = sys.modules.get("numpy")
    state: dict[str, Any] = {
        "torch rng": torch.get_rng_state(),
        "python random": random.getstate(),
        "numpy rng": numpy.random.get_state() if numpy is not None else None,
        "default dtype": torch.get_default_dtype(),
        "default device": torch.get_default_device(),
        "grad mode": torch.is_grad_enabled(),
        "autocast cpu": (torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu")),
        "recursion limit": sys.getrecursionlimit(),
        "dispatch modes": torch._C._len_torch_dispatch_stack(),
        "global hooks": _global_hooks(),
    }
    if torch.cuda.is_initialized():  # type: ignore[no-untyped-call]
        state["cuda rng"] = torch.cuda.get_rng_state_all()
    return state


@dataclass
class Snapshot:
    modules: list[tuple[str, nn.Module, bool]]
    walk: _Walk
    process: dict[str, Any]


def capture(model: nn.Module) -> Snapshot:
    # Outside any active mode (a simulated cluster's fake mode): copies of real content are real.
    with _disable_current_modes():
        return _capture(model)


def _capture(model: nn.Module) -> Snapshot:
    walk = _Walk()
    modules = []
    for name, module in model.named_modules(remove_duplicate=False):
        label = name or "<root>"
        modules.append((label, module, module.training))
        if id(module) in walk.seen:
            continue
        walk.seen.add(id(module))
        for key, value in list(vars(module).items()):
            walk.value(f"{label}.{key}", value, 0)
    return Snapshot(modules, walk, _process_state())


def _same_entry(old: Any, new: Any) -> bool:
    kind = old[0]
    if kind != new[0]:
        return False
    if kind == "simple":
        return old[1] is new[1] and (old[2] == new[2] or old[2] != old[2] and new[2] != new[2])  # NaN == NaN
    if kind == "object":
        return old[1] is new[1]
    if kind == "dict":
        return old[1] is new[1] and len(old[2]) == len(new[2]) and all(a is b or a == b for a, b in zip(old[2], new[2]))
    if kind == "sequence":
        return old[1] is new[1] and old[2] == new[2]
    if kind == "set":
        return old[1] is new[1] and old[2] == new[2]
    return False


def _tensor_problems(path: str, old: Any, new: Any) -> list[str]:
    names = ("object", "class", "dtype", "device", "shape", "stride", "storage", "requires_grad")
    problems = []
    identity = new[1] is old[1]
    if not identity:
        problems.append(f"{path}: a different tensor object")
    for i, name in enumerate(names[1:], start=2):
        if old[i] != new[i]:
            problems.append(f"{path}: {name} {old[i]} -> {new[i]}")
    if new[9] is not old[9]:
        problems.append(f"{path}: .grad changed")
    for name, (old_dict, old_items) in old[10].items():
        new_dict, new_items = new[10][name]
        if new_dict is not old_dict or (old_items is not None and (len(new_items) != len(old_items) or any(
            a[0] != b[0] or a[1] is not b[1] for a, b in zip(new_items, old_items)
        ))):  # fmt: skip
            problems.append(f"{path}: {name} changed")
    old_bits, new_bits = old[11], new[11]
    if (old_bits is None) != (new_bits is None):
        problems.append(f"{path}: content readable before or after, not both")
    elif old_bits is not None and (old_bits.shape != new_bits.shape or not torch.equal(old_bits, new_bits)):
        problems.append(f"{path}: values changed")
    return problems


def _process_problems(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    problems = []
    for key, value in old.items():
        after = new.get(key)
        if isinstance(value, torch.Tensor):
            same = isinstance(after, torch.Tensor) and torch.equal(value, after)
        elif key == "numpy rng" and value is not None:
            same = after is not None and value[0] == after[0] and bool((value[1] == after[1]).all()) and value[2:] == after[2:]
        elif key == "cuda rng":
            same = after is not None and all(torch.equal(a, b) for a, b in zip(value, after))
        elif key == "global hooks":
            same = set(value) == set(after) and all(
                value[name] is after[name] or isinstance(value[name], list) and len(value[name]) == len(after[name])
                and all(a[1] is b[1] for a, b in zip(value[name], after[name]))
                for name in value
            )  # fmt: skip
        else:
            same = value == after
        if not same:
            problems.append(f"process: {key} changed")
    if "cuda rng" in new and "cuda rng" not in old:
        pass  # the run initialised CUDA: the guard reseeds it; nothing to compare with
    return problems


def differences(before: Snapshot, after: Snapshot) -> list[str]:
    """What changed between two captures, one line each (empty: nothing)."""
    with _disable_current_modes():
        return _differences(before, after)


def _differences(before: Snapshot, after: Snapshot) -> list[str]:
    problems = []
    old_modules = [(name, module) for name, module, _ in before.modules]
    new_modules = [(name, module) for name, module, _ in after.modules]
    if [n for n, _ in old_modules] != [n for n, _ in new_modules] or any(a is not b for (_, a), (_, b) in zip(old_modules, new_modules)):
        problems.append("the module tree changed")
    for (name, _, flag), (_, _, new_flag) in zip(before.modules, after.modules):
        if flag != new_flag:
            problems.append(f"{name}: training {flag} -> {new_flag}")
    old_values, new_values = before.walk.values, after.walk.values
    for path in old_values.keys() - new_values.keys():
        problems.append(f"{path}: gone")
    for path in new_values.keys() - old_values.keys():
        problems.append(f"{path}: new")
    for path, old in old_values.items():
        new = new_values.get(path)
        if new is None:
            continue
        if old[0] == "tensor" and new[0] == "tensor":
            problems.extend(_tensor_problems(path, old, new))
        elif not _same_entry(old, new):
            problems.append(f"{path}: changed")
    problems.extend(f"{path}: a FakeTensor left behind" for key, path in after.walk.fakes.items() if key not in before.walk.fakes)
    problems.extend(f"{path}: a meta tensor left behind" for key, path in after.walk.metas.items() if key not in before.walk.metas)
    problems.extend(_process_problems(before.process, after.process))
    return sorted(set(problems))
