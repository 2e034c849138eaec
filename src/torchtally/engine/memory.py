"""Following tensor memory through a run: which storages are alive, and the most that ever
were at once.

An operator that returns a tensor on a storage none of its arguments had has allocated
that storage; the storage is released when the last tensor (or autograd's saved copy)
referring to it dies, which a weak reference to the storage tells us. Views and in-place
results share their argument's storage and allocate nothing. The same rules hold for fake
tensors, whose storages live and die exactly as the real ones would, so a fake run gives
the live-set of a real one without allocating it.

Parameters, buffers and inputs exist before the run and are not followed here; the
orchestrator adds their bytes as the base of every figure."""

from __future__ import annotations

import functools
import weakref
from array import array
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch._ops import OpOverload
from torch._subclasses.fake_tensor import FakeTensor
from torch.utils._mode_utils import no_dispatch

from ..formulas.registry import tensor_args

# Operators whose result shares a storage with an argument without the schema saying so.
_UNDECLARED_ALIASES = frozenset({"_unsafe_view", "_reshape_alias"})


def _may_alias(func: OpOverload) -> bool:
    """Whether a result of ``func`` can live on an argument's storage (views, in-place and
    ``out=`` operators); other operators always return new storages."""
    if func.overloadpacket.__name__ in _UNDECLARED_ALIASES:
        return True
    return any(ret.alias_info is not None for ret in func._schema.returns)


# The index tensors of each compressed sparse layout (their values come from ``values()``).
_COMPRESSED = {
    torch.sparse_csr: ("crow_indices", "col_indices"),
    torch.sparse_bsr: ("crow_indices", "col_indices"),
    torch.sparse_csc: ("ccol_indices", "row_indices"),
    torch.sparse_bsc: ("ccol_indices", "row_indices"),
}


def tensor_bytes(tensor: torch.Tensor) -> int:
    """The bytes a tensor holds: a sparse one its indices and values (its ``numel`` is the
    dense size), any other its elements."""
    parts: tuple[str, ...]
    if tensor.layout == torch.sparse_coo:
        parts = ("_indices", "_values")
    elif tensor.layout in _COMPRESSED:
        parts = (*_COMPRESSED[tensor.layout], "values")
    else:
        return tensor.numel() * tensor.element_size()
    with no_dispatch():  # metadata, not operators for a dispatch mode to count
        held = [getattr(tensor, name)() for name in parts]
    return sum(part.numel() * part.element_size() for part in held)


def storage_sizes(tensors: Iterable[torch.Tensor]) -> dict[int, int]:
    """The storages these tensors live on, each once (a tensor passed twice, or a tensor and
    its view, hold one storage): storage key -> bytes."""
    sizes: dict[int, int] = {}
    for tensor in tensors:
        try:
            storage = tensor.untyped_storage()
        except (RuntimeError, NotImplementedError):  # nested and sparse tensors: their own size
            sizes[id(tensor)] = tensor_bytes(tensor)
            continue
        sizes[storage._cdata] = int(storage.nbytes())
    return sizes


def storage_bytes(tensors: Iterable[torch.Tensor]) -> int:
    """Bytes of the storages these tensors live on, each storage once."""
    return sum(storage_sizes(tensors).values())


@dataclass(frozen=True)
class LiveTrace:
    """Every change of the live bytes of a run, in order (for the memory timeline): after each
    change, the operators run so far, the bytes alive, the bytes of those that are gradients
    and the module running (its row; -1 for none). ``phases`` are the change indices where
    each phase after the first begins (each `LiveSet.reset_peak`), with the bytes alive then."""

    operators: array[int]
    live: array[int]
    gradients: array[int]
    rows: array[int]
    phases: tuple[tuple[int, int], ...]  # (index of the phase's first change, bytes alive at its start)
    operators_run: int  # operators seen in all


class LiveSet:
    """The storages allocated by operators during a run that are still alive, in bytes.

    It also records every change of ``current`` (see `trace`): a few machine words per
    allocation and release, thinned to a bounded timeline when the report is built."""

    def __init__(self, where: Callable[[], int] | None = None) -> None:
        self._live: dict[int, tuple[weakref.ref[Any], int]] = {}  # storage key -> (weak ref, bytes)
        self._aliasing: dict[OpOverload, bool] = {}
        self.current = 0  # bytes alive now
        self.peak = 0  # the most bytes alive at once since the last `reset_peak`
        self.where = where  # the row of the module running now, for the timeline
        self.operators = 0  # operators seen: the timeline's clock
        self._ops, self._bytes, self._rows = array("q"), array("q"), array("q")
        self._keys = array("Q")  # the storage allocated or released by each change
        self._phases: list[tuple[int, int]] = []

    def _note(self, key: int) -> None:
        self._ops.append(self.operators)
        self._bytes.append(self.current)
        self._rows.append(-1 if self.where is None else self.where())
        self._keys.append(key)

    def trace(self, gradients: Iterable[torch.Tensor] = ()) -> LiveTrace:
        """The changes recorded so far. A change that allocated the storage of one of
        ``gradients`` (alive now, so its last allocation) counts as gradient bytes from then on."""
        keys = set()
        for grad in gradients:
            try:
                keys.add(grad.untyped_storage()._cdata)
            except (RuntimeError, NotImplementedError):  # sparse gradients: left with the activations
                pass
        last: dict[int, int] = {}
        if keys:
            previous = 0
            for index, (key, now) in enumerate(zip(self._keys, self._bytes)):
                if key in keys and now > previous:
                    last[key] = index
                previous = now
        grads = array("q")
        held = 0
        previous = 0
        for index, now in enumerate(self._bytes):
            if last and last.get(self._keys[index]) == index:
                held += now - previous
            grads.append(held)
            previous = now
        return LiveTrace(
            array("q", self._ops), array("q", self._bytes), grads, array("q", self._rows), tuple(self._phases), self.operators
        )

    def after_op(self, func: OpOverload, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
        self.operators += 1
        aliasing = self._aliasing.get(func)
        if aliasing is None:
            aliasing = self._aliasing[func] = _may_alias(func)
        known: set[int] | None = None
        for tensor in (out,) if type(out) is FakeTensor else tensor_args((out,)):
            try:
                storage = tensor.untyped_storage()
            except (RuntimeError, NotImplementedError):
                continue  # sparse, nested and other tensors without one plain storage
            key = storage._cdata
            if key in self._live:
                continue
            if aliasing:
                if known is None:
                    known = self._storages_of(args, kwargs)
                if key in known:
                    continue
            self._allocate(storage, key)

    @staticmethod
    def _storages_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> set[int]:
        keys = set()
        for tensor in tensor_args((*args, *kwargs.values())):
            try:
                keys.add(tensor.untyped_storage()._cdata)
            except (RuntimeError, NotImplementedError):
                pass
        return keys

    def _allocate(self, storage: Any, key: int) -> None:
        size = int(storage.nbytes())
        self._live[key] = (weakref.ref(storage, functools.partial(self._release, key)), size)
        self.current += size
        if self.current > self.peak:
            self.peak = self.current
        self._note(key)

    def _release(self, key: int, _ref: Any = None) -> None:
        entry = self._live.pop(key, None)
        if entry is not None:
            self.current -= entry[1]
            self._note(key)

    def storage_resized(self, storage: Any) -> None:
        """A storage resized in place, outside any operator (FSDP2 frees a block's gathered
        parameters with ``storage.resize_(0)`` and grows them back for the next gather): its
        bytes leave the live set, or come back, as if released or allocated."""
        key = storage._cdata
        size = int(storage.nbytes())
        if key in self._live:
            self._release(key)
        if size:
            self._allocate(storage, key)

    def bytes_of(self, tensors: Iterable[torch.Tensor]) -> int:
        """Bytes of the followed storages these tensors live on (each storage once)."""
        seen: set[int] = set()
        total = 0
        for tensor in tensors:
            try:
                key = tensor.untyped_storage()._cdata
            except (RuntimeError, NotImplementedError):
                continue
            entry = self._live.get(key)
            if entry is not None and key not in seen:
                seen.add(key)
                total += entry[1]
        return total

    def reset_peak(self) -> None:
        """Start a new phase: its peak, and a new stretch of the timeline."""
        self.peak = self.current
        self._phases.append((len(self._bytes), self.current))

    def stop(self) -> None:
        """Stop following: drop the weak references (their callbacks must not outlive the run)."""
        self._live.clear()


@dataclass(frozen=True)
class StepCost:
    state_bytes: int  # tensors the optimizer keeps between steps
    step_peak: int  # the most bytes alive at once during a steady-state step (its state included)
    macs: int
    flops: int
    uncounted: dict[str, int]
    trace: LiveTrace | None = None  # the step's changes; its second phase is the steady-state step


@dataclass
class RunMemory:
    """What the live set showed at the phases of a run, in bytes of storages allocated by
    operators (the parameters, buffers and inputs that existed before are not included)."""

    inputs: int = 0  # the storages of the model's inputs, each once (they exist before the run)
    outputs: int = 0  # the storages of the tensors the model returned, each once
    forward_peak: int = 0  # the most alive at once during the forward
    forward_end: int = 0  # alive when the forward returned: its outputs, and in training what autograd saved
    outputs_alive: int = 0  # of `forward_end`, the model's outputs (not a returned input or parameter)
    backward_peak: int | None = None
    backward_end: int | None = None  # alive after backward: the gradients (and the outputs, still held)
    gradients: int | None = None
    step: StepCost | None = None
    measured_peak: int | None = None  # measured on a CUDA device (a real run), including everything allocated
    trace: LiveTrace | None = None  # forward (and backward) changes of the live set, for the timeline
