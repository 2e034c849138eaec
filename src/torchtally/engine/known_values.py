"""Following the values of small integer tensors through a fake run.

Fake tensors carry no values, so a forward that reads some (``grid_thw.tolist()``, an
``.item()`` in a length, ``repeat_interleave`` by a tensor of counts, ``nonzero``) cannot
run on them. Such values are nearly always integer bookkeeping of a few elements (image
grids, sequence lengths, offsets), and their values can be known: the user gave them, or
they were computed from known ones, or made by ``arange`` / ``full`` / a tensor literal.

So an integer or bool tensor of at most ``LIMIT`` elements (of its storage) whose values are
known keeps a real CPU copy beside its fake tensor (a small floating tensor too, when it was
computed from known values: a padding is ``ceil(length / stride)``). An operator whose every tensor argument
has a known value is also run on the copies (a few elements), and its integer results keep
theirs; when the fake kernel cannot give a result (a shape or a Python number that depends
on values), the real one gives it: its fake tensor is made from the real result's shape, and
``item`` / ``tolist`` answer with the real number. The operator is still counted as its
formula says, on the fake tensors, like every other operator.

A known tensor written by an operator whose arguments are not all known (or one that leaves
garbage: ``resize_``, ``set_``) forgets its value, and so does every tensor on its storage.
Views of a known tensor are views of its copy, so writes through any of them stay
consistent. Random operators are never run (the global RNG must not move), and neither are
operators outside aten and prims. The cost when no value is known is one set lookup per
operator (``VALUE_FREE``, see CountingMode)."""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable
from typing import Any

import torch
from torch._ops import OpOverload
from torch._subclasses.fake_tensor import FakeTensor, FakeTensorMode
from torch.utils._mode_utils import no_dispatch

from .fakes import FakeConverter, new_fake

LIMIT = 16384  # most elements of a known tensor's storage
_TRACKED = frozenset({
    torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64,
    torch.float16, torch.bfloat16, torch.float32, torch.float64,
})  # fmt: skip  (floats: a padding computed as ceil(length / stride))
_INTEGRAL = frozenset({torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64})
_CPU = torch.device("cpu")
_PLAIN = tuple(t for t in (torch.Tensor, torch.nn.Parameter, getattr(torch.nn, "Buffer", None)) if t is not None)


def _overloads(*names: str) -> frozenset[OpOverload]:
    found = set()
    for name in names:
        packet = getattr(torch.ops.aten, name, None)
        if packet is None:
            continue
        for overload in packet.overloads():
            found.add(getattr(packet, overload))
    return frozenset(found)


# Operators whose result's values do not depend on their tensor arguments' values: a known
# result even when the arguments' values are unknown (or there are none).
# An empty tensor's elements are unspecified: zeros are one thing a real run may find there,
# so an empty tensor is known as zeros (a forward that fills it, element by element, then
# has the values it wrote: DETR-like spatial shapes).
_EMPTY = _overloads("empty", "empty_like", "new_empty", "empty_strided", "empty_permuted")
_EMPTY_IDS = frozenset(id(func) for func in _EMPTY)
VALUE_FREE = _overloads(
    "arange", "full", "zeros", "ones", "scalar_tensor", "eye", "zeros_like", "ones_like", "full_like",
    "new_zeros", "new_ones", "new_full",
) | _EMPTY
# The same by id: the dispatch mode asks for every operator, and an OpOverload hashes in Python.
VALUE_FREE_IDS = frozenset(id(func) for func in VALUE_FREE)
# Operators that leave elements unset (or rebind a storage): never run on the copies.
_GARBAGE_PREFIXES = ("resize", "set_", "_resize")
_RUNNABLE: dict[int, bool] = {}  # by id(func), as every cache here: an OpOverload hashes in Python


def _runnable(func: OpOverload) -> bool:
    """Whether running ``func`` on the copies is safe: aten or prims, not random, nothing unset."""
    allowed = _RUNNABLE.get(id(func))
    if allowed is None:
        name = func.overloadpacket.__name__
        allowed = _RUNNABLE[id(func)] = (
            func.namespace in ("aten", "prims")
            and torch.Tag.nondeterministic_seeded not in func.tags
            and not name.startswith(_GARBAGE_PREFIXES)
        )
    return allowed


_WRITTEN: dict[int, tuple[tuple[int, str], ...]] = {}


def _written(func: OpOverload) -> tuple[tuple[int, str], ...]:
    """The (position, name) of each argument ``func`` writes to."""
    written = _WRITTEN.get(id(func))
    if written is None:
        written = _WRITTEN[id(func)] = tuple(
            (i, a.name) for i, a in enumerate(func._schema.arguments) if a.alias_info is not None and a.alias_info.is_write
        )
    return written


def _storage_key(tensor: torch.Tensor) -> int:
    return int(tensor.untyped_storage()._cdata)


def _small(tensor: torch.Tensor) -> bool:
    """A tensor of a followed dtype whose storage holds at most LIMIT elements."""
    if tensor.dtype not in _TRACKED or tensor.layout != torch.strided:
        return False
    return int(tensor.untyped_storage().nbytes()) <= LIMIT * tensor.element_size()


def _dropped(values: dict[int, Any], storages: dict[int, set[int]], key: int, ref: Any) -> None:
    """A known fake tensor died: forget its entry (unless its id already holds a newer one)."""
    entry = values.get(key)
    if entry is not None and entry[0] is ref:
        del values[key]
        holders = storages.get(entry[2])
        if holders is not None:
            holders.discard(key)
            if not holders:
                del storages[entry[2]]


def _both(first: Callable[[torch.Tensor, FakeTensor], None] | None, second: Callable[[torch.Tensor, FakeTensor], None],
          real: torch.Tensor, fake: FakeTensor) -> None:
    if first is not None:
        first(real, fake)
    second(real, fake)


_NOT_KNOWN = object()


class KnownValues:
    """The known values of one fake run (see the note above): ``values`` is empty when none is."""

    def __init__(self, fakes: FakeConverter | None):
        # id(fake) -> (weak reference to the fake, its real CPU copy, the fake's storage key)
        self.values: dict[int, tuple[Any, torch.Tensor, int]] = {}
        self._storages: dict[int, set[int]] = {}  # fake storage key -> ids of known fakes on it
        self._fake_mode: FakeTensorMode | None = fakes.fake_mode if fakes is not None else None
        self._pending: tuple[Any, Any] | None = None  # (result handed out by `instead`, its real value)
        self._copied: dict[int, Any] = {}  # a noted real storage's address -> its copy
        if fakes is not None:
            for real, fake in fakes.twins():  # the user's inputs, made before the run
                self.note(real, fake)
            # Not bound to the converter: this object does not refer back to it (no cycle).
            fakes.on_new_twin = functools.partial(_both, fakes.on_new_twin, self.note)

    def note(self, real: torch.Tensor, fake: FakeTensor) -> None:
        """A real tensor turned fake (an input, a buffer, a tensor literal): its value is known.
        Its copy lives on a copy of its storage, shared by every tensor noted from that storage
        (a view and its base stay aliased, as their fake twins are)."""
        if (
            # first: nearly every twin (weights, float buffers) stops here; a float is known as
            # a literal's single number (torch.tensor(0.95)) or as computed from known values
            (real.dtype not in _INTEGRAL and (real.dtype not in _TRACKED or real.numel() > 1))
            or type(real) not in _PLAIN
            or real.device.type == "meta"
            or real.requires_grad
            or real.is_quantized
            or not _small(real)
        ):
            return
        with no_dispatch():
            storage = real.untyped_storage()
            copied = self._copied.get(storage.data_ptr())
            if copied is None:
                copied = self._copied[storage.data_ptr()] = _storage_copy(storage)
            copy = torch.empty(0, dtype=real.dtype).set_(copied, real.storage_offset(), real.shape, real.stride())
        self._remember(fake, copy)

    def value(self, tensor: Any) -> torch.Tensor | None:
        """The real copy of a known fake tensor, else None."""
        entry = self.values.get(id(tensor))
        if entry is None or entry[0]() is not tensor:
            return None
        if _storage_key(tensor) != entry[2]:  # rebound since (`set_`, `.data =`): its copy is stale
            return None
        return entry[1]

    def instead(self, func: OpOverload, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[bool, Any]:
        """After the fake kernel refused a call (its result depends on values): (True, the
        result from the known values) when every tensor argument is known, else (False, None)."""
        if not (self.values or id(func) in VALUE_FREE_IDS) or not _runnable(func):
            return False, None
        real_out = self._run(func, args, kwargs)
        if real_out is _NOT_KNOWN:
            return False, None
        out = self._fake_of(real_out, _device_of(args, kwargs))
        if out is _NOT_KNOWN:
            return False, None
        self._pending = (out, real_out)
        return True, out

    def after(self, func: OpOverload, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
        """After a call in a run where values are known (or of a VALUE_FREE operator): the
        results' values, where they are small integers and the arguments' are known."""
        pending, self._pending = self._pending, None
        if pending is not None and pending[0] is out:
            self._keep(out, pending[1])
            return
        if not _any_small(out) or not _runnable(func):
            if self.values and _written(func):
                self._forget_written(func, args, kwargs)
            return
        real_out = self._run(func, args, kwargs)
        if real_out is _NOT_KNOWN:
            if _written(func):
                self._forget_written(func, args, kwargs)
            return
        self._keep(out, real_out)

    def _run(self, func: OpOverload, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """``func`` on the real copies of its arguments; _NOT_KNOWN when one has none."""
        blank = id(func) in VALUE_FREE_IDS
        seen = [blank, False]  # [a known tensor was found (or none is needed), one is unknown]
        try:
            real_args = [self._real(a, blank, seen) for a in args]
            real_kwargs = {k: self._real(v, blank, seen) for k, v in kwargs.items()}
            if not seen[0] or seen[1]:
                return _NOT_KNOWN
            with no_dispatch():  # the copies are real tensors: nothing here goes through the run's modes
                if _too_big(func, real_args, real_kwargs):
                    return _NOT_KNOWN
                out = func(*real_args, **real_kwargs)
                return out.zero_() if id(func) in _EMPTY_IDS else out
        except Exception:  # noqa: BLE001 - the real kernel refusing: the value stays unknown
            return _NOT_KNOWN

    def _real(self, value: Any, blank: bool, seen: list[bool]) -> Any:
        """An argument for the real call: a fake tensor's copy (a blank one for a VALUE_FREE
        operator, whose result does not read it), a device made the CPU."""
        if isinstance(value, torch.Tensor):
            real = self.value(value)
            if real is not None:
                seen[0] = True
                return real
            if blank and isinstance(value, FakeTensor):
                with no_dispatch():
                    if value.numel() > LIMIT:  # only its dtype and shape are read: no memory for it
                        return torch.zeros((), dtype=value.dtype).expand(value.shape)
                    return torch.empty_strided(value.shape, value.stride(), dtype=value.dtype)
            seen[1] = True
            return None
        if isinstance(value, torch.device):
            return _CPU
        if isinstance(value, (list, tuple)) and any(isinstance(item, torch.Tensor) for item in value):
            return type(value)(self._real(item, blank, seen) for item in value)
        return value

    def _fake_of(self, real: Any, device: torch.device) -> Any:
        """A fake tensor of ``real``'s layout (the same structure for a tuple); numbers as they are."""
        if isinstance(real, torch.Tensor):
            assert self._fake_mode is not None
            with no_dispatch():
                meta = torch.empty_strided(real.shape, real.stride(), dtype=real.dtype, device="meta")
            return new_fake(self._fake_mode, meta, device)
        if isinstance(real, (list, tuple)):
            made = [self._fake_of(item, device) for item in real]
            return _NOT_KNOWN if any(item is _NOT_KNOWN for item in made) else type(real)(made)
        if real is None or isinstance(real, (bool, int, float, complex)):
            return real
        return _NOT_KNOWN

    def _keep(self, out: Any, real: Any) -> None:
        if isinstance(out, FakeTensor) and isinstance(real, torch.Tensor):
            if _small(out) and out.shape == real.shape and real.numel() > 0:  # nothing to know in an empty one
                self._remember(out, real)
        elif isinstance(out, (list, tuple)) and isinstance(real, (list, tuple)) and len(out) == len(real):
            for item, real_item in zip(out, real):
                self._keep(item, real_item)

    def _remember(self, fake: FakeTensor, real: torch.Tensor) -> None:
        key = id(fake)
        storage = _storage_key(fake)
        ref = weakref.ref(fake, functools.partial(_dropped, self.values, self._storages, key))
        self.values[key] = (ref, real, storage)
        self._storages.setdefault(storage, set()).add(key)

    def _forget_written(self, func: OpOverload, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Forget every known tensor on a storage ``func`` writes to without known arguments."""
        for position, name in _written(func):
            value = args[position] if position < len(args) else kwargs.get(name)
            for tensor in value if isinstance(value, (list, tuple)) else (value,):
                # Any dtype: a write through a view of another dtype changes the elements too.
                if isinstance(tensor, FakeTensor):
                    self.values.pop(id(tensor), None)  # rebound by the call (`set_`): not on that storage now
                    for key in self._storages.pop(_storage_key(tensor), ()):
                        self.values.pop(key, None)


def _repeats_total(args: list[Any], kwargs: dict[str, Any]) -> int:
    """``repeat_interleave``'s result size in elements."""
    if len(args) == 1 and "repeats" not in kwargs:  # repeat_interleave(repeats): arange's entries repeated
        return int(args[0].sum())
    tensor: torch.Tensor = args[0]
    repeats = kwargs.get("repeats", args[1] if len(args) > 1 else 1)
    if not isinstance(repeats, torch.Tensor) or repeats.numel() == 1:
        return int(repeats) * tensor.numel()
    # one count per slice along the dimension: the slices' total times the elements of one
    return int(repeats.sum()) * (tensor.numel() // max(repeats.numel(), 1))


def _bins(args: list[Any], kwargs: dict[str, Any]) -> int:
    """``bincount``'s result length: the largest value plus one, or ``minlength``."""
    values = args[0]
    minlength = int(kwargs.get("minlength", args[2] if len(args) > 2 else 0))
    return max(int(values.max()) + 1 if values.numel() else 0, minlength)


# Operators whose result's size is set by their arguments' values, with that size: a few
# known numbers may ask for gigabytes (repeat_interleave by 10**8), which an analysis never
# allocates; past _MOST_MADE elements the call is left to fail as needing real values.
_MOST_MADE = 1 << 22  # 32 MiB of int64
_VALUE_SIZED: dict[str, Callable[[list[Any], dict[str, Any]], int]] = {
    "repeat_interleave": _repeats_total,
    "bincount": _bins,
}


def _too_big(func: OpOverload, args: list[Any], kwargs: dict[str, Any]) -> bool:
    size = _VALUE_SIZED.get(func.overloadpacket.__name__)
    return size is not None and size(args, kwargs) > _MOST_MADE


def _storage_copy(storage: Any) -> Any:
    """A CPU copy of an untyped storage (``cpu()`` of a CPU storage is the storage itself)."""
    return storage.clone() if storage.device.type == "cpu" else storage.cpu()


def _any_small(out: Any) -> bool:
    if isinstance(out, FakeTensor):
        return _small(out)
    if isinstance(out, (list, tuple)):
        return any(isinstance(item, FakeTensor) and _small(item) for item in out)
    return False


def _device_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> torch.device:
    """Where a result made from values lives: its first fake tensor argument's device."""
    for value in (*args, *kwargs.values()):
        if isinstance(value, FakeTensor):
            return value.fake_device
        if isinstance(value, (list, tuple)):
            for item in value:
                if isinstance(item, FakeTensor):
                    return item.fake_device
    device = kwargs.get("device")
    return device if isinstance(device, torch.device) else _CPU
