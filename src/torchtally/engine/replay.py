"""Replaying operator results in fake runs.

A fake run spends most of its time in FakeTensorMode's dispatch, whose own cache builds an
expensive general key. The same operator is called many times on tensors of the same shape
(a ResNet repeats its blocks, an LLM its layers, a notebook re-analyses its model), so the
first call goes through FakeTensorMode (which validates it: a wrong shape raises there) and
later calls with the same metadata replay its result: a fresh fake tensor of the same
shape, stride, dtype and device; for a view, a tensor on its input's storage (aliasing is
kept); for an in-place operator, its ``self`` argument. Operators whose result depends on
anything but their arguments' metadata (random, data-dependent, custom) are never replayed.

A call not seen before in this process is first looked up in closed form (shapes.py: the
common operators' results by arithmetic) and then in the replay cache on disk
(replay_disk.py: what earlier processes learnt from the fake kernels); only then does it
go through FakeTensorMode, and its result is kept for later processes too."""

from __future__ import annotations

from typing import Any

import torch
from torch._ops import OpOverload
from torch._subclasses.fake_tensor import FakeTensor, FakeTensorMode
from torch.utils._mode_utils import no_dispatch

from . import replay_disk, summaries
from .fakes import new_fake
from .shapes import closed_form

_FRESH = "fresh"
_NEVER = "never"
_ARG_TYPES = (int, float, bool, str, torch.dtype, torch.device, torch.memory_format, torch.layout, type(None))


_VIEW = "view"
_INPLACE = "inplace"
# These return a tensor sharing its input's storage although the schema does not say so.
_UNDECLARED_VIEWS = frozenset({"_unsafe_view", "_reshape_alias"})


def _replay_rule(func: OpOverload) -> str:
    """How a call of ``func`` can be replayed: a fresh result, a view of ``self``, ``self``
    itself (in place), or never."""
    if func.namespace not in ("aten", "prims"):
        return _NEVER  # custom operators' fake implementations may depend on anything
    tags = func.tags
    if (
        torch.Tag.inplace_view in tags
        or torch.Tag.data_dependent_output in tags
        or torch.Tag.dynamic_output_shape in tags
        or torch.Tag.nondeterministic_seeded in tags
    ):
        return _NEVER
    schema = func._schema
    name = func.overloadpacket.__name__
    single_tensor_result = len(schema.returns) == 1 and str(schema.returns[0].type) == "Tensor"
    if name in _UNDECLARED_VIEWS:
        return _VIEW
    if func.is_view:
        first = schema.arguments[0].alias_info
        result = schema.returns[0].alias_info if single_tensor_result else None
        if first is not None and result is not None and result.before_set == first.before_set:
            return _VIEW
        return _NEVER
    if name in ("lift_fresh", "lift", "alias", "_resize_output_"):
        return _NEVER  # identity-returning, or changing metadata in place
    written = [arg for arg in schema.arguments if arg.alias_info is not None and arg.alias_info.is_write]
    aliased_returns = [ret for ret in schema.returns if ret.alias_info is not None]
    if not written and not aliased_returns:
        return _FRESH
    # In place: only `self` is written, and it is what the operator returns.
    if len(written) == 1 and written[0] is schema.arguments[0] and single_tensor_result and aliased_returns:
        return _INPLACE
    return _NEVER


def _meta_of(tensor: Any) -> tuple[Any, ...] | None:
    if not isinstance(tensor, FakeTensor) or tensor.constant is not None or tensor.is_conj() or tensor.is_neg():
        return None
    if tensor.layout != torch.strided:
        return None
    return (tensor.shape, tensor.stride(), tensor.dtype, tensor.fake_device, tensor.storage_offset())


_STRIDED = torch.strided
# Exact types whose key is (type, value), as _arg_key gives them.
_SCALAR_TYPES = frozenset({int, float, bool, str, type(None), torch.dtype, torch.device, torch.memory_format, torch.layout})
_TENSOR_LAYOUT = torch.Tensor.layout.__get__  # type: ignore[attr-defined]


def _layout(tensor: FakeTensor) -> torch.layout:
    """``tensor.layout`` without FakeTensor's Python property, which only differs for
    MKLDNN tensors (those carry their dispatch keys)."""
    if tensor.dispatch_keys is not None:
        return tensor.layout
    return _TENSOR_LAYOUT(tensor)  # type: ignore[no-any-return]


def _arg_key(value: Any) -> Any:
    """A hashable description of an argument that determines the result's metadata, or
    _NEVER when there is none (unknown objects, constants)."""
    if type(value) is FakeTensor:  # _meta_of inlined: this runs for every argument of every operator
        if value.constant is not None or _layout(value) is not _STRIDED or value.is_conj() or value.is_neg():
            return _NEVER
        return (value.shape, value.stride(), value.dtype, value.fake_device, value.storage_offset())
    if isinstance(value, torch.Tensor):
        meta = _meta_of(value)
        return _NEVER if meta is None else meta
    if isinstance(value, _ARG_TYPES):
        return (type(value), value)  # 1, 1.0 and True give different result dtypes
    if isinstance(value, (list, tuple)):
        items = tuple(_arg_key(v) for v in value)
        return _NEVER if any(item is _NEVER for item in items) else (type(value), items)
    return _NEVER


def _holds_tensor(value: Any) -> bool:
    """A tensor, or a list of them (``cat``'s inputs)."""
    if isinstance(value, torch.Tensor):
        return True
    return isinstance(value, (list, tuple)) and any(isinstance(item, torch.Tensor) for item in value)


# Shared by all runs of the process: a result's metadata depends only on the key (and, for
# Python scalars mixed with integer tensors, on the default dtype, which keys the outer dict).
_RULES: dict[OpOverload, str] = {}
_RESULTS: dict[torch.dtype, dict[Any, Any]] = {}
_MAX_RESULTS = 200_000


def _result_meta(tensor: FakeTensor) -> tuple[Any, ...] | None:
    meta = _meta_of(tensor)
    if meta is None or meta[4] != 0:
        return None
    return (meta[0], meta[1], meta[2], meta[3], tensor.requires_grad)


def stored_form(func: OpOverload, out: Any) -> Any:
    """What replaying ``func``'s result ``out`` needs: see ResultReplay.replay; None when
    the result cannot be replayed."""
    rule = _RULES.get(func)
    if rule is None:
        rule = _RULES[func] = _replay_rule(func)
    if rule == _INPLACE:
        return _INPLACE
    if rule == _VIEW:
        meta = _meta_of(out)
        return None if meta is None else (_VIEW, meta)
    if rule == _NEVER:
        return None
    if isinstance(out, FakeTensor):
        return _result_meta(out)
    if isinstance(out, tuple) and out and all(isinstance(o, FakeTensor) for o in out):
        metas = [_result_meta(o) for o in out]
        return metas if all(meta is not None for meta in metas) else None
    return None


def forget() -> None:
    """Drop every result this process remembers, and what was derived from them (tests
    compare runs with and without)."""
    _RESULTS.clear()
    summaries.forget()


class ResultReplay:
    """Replays operator results in fake runs (see the note above)."""

    def __init__(self, fake_mode: FakeTensorMode, *, derive: bool = True):
        self.fake_mode = fake_mode
        self._rules = _RULES
        self._results = _RESULTS.setdefault(torch.get_default_dtype(), {})
        if len(self._results) > _MAX_RESULTS:
            self._results.clear()
        # ``derive``: whether results may come from closed forms and the disk, not only
        # from this process's own fake kernel calls.
        self._derive = derive
        self._disk = replay_disk.store() if derive else None
        if self._disk is not None:
            self._disk.flush()  # what the previous analysis learnt, written before this one
        self._context = replay_disk.context()

    def key(self, func: OpOverload, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        rule = self._rules.get(func)
        if rule is None:
            rule = self._rules[func] = _replay_rule(func)
        if rule is _NEVER:
            return None
        # _arg_key(args), unrolled one level: this runs for every operator call of a run.
        items: list[Any] = []
        holds_tensor = False
        for value in args:
            kind = type(value)
            if kind is FakeTensor:
                holds_tensor = True
                if value.constant is not None or _layout(value) is not _STRIDED or value.is_conj() or value.is_neg():
                    return None
                items.append((value.shape, value.stride(), value.dtype, value.fake_device, value.storage_offset()))
                continue
            if kind in _SCALAR_TYPES:
                items.append((kind, value))
                continue
            if kind is list:  # sizes, strides, paddings: scalars only, mostly
                scalars = []
                for entry in value:
                    entry_kind = type(entry)
                    if entry_kind not in _SCALAR_TYPES:
                        break
                    scalars.append((entry_kind, entry))
                else:
                    items.append((list, tuple(scalars)))
                    continue
            holds_tensor = holds_tensor or _holds_tensor(value)
            item = _arg_key(value)
            if item is _NEVER:
                return None
            items.append(item)
        if not holds_tensor and (kwargs.get("dtype") is None or kwargs.get("device") is None):
            return None  # a factory left to the default dtype or device: those are not arguments
        arg_key = (type(args), tuple(items))
        if kwargs:
            kwarg_key = _arg_key(tuple(sorted(kwargs.items(), key=lambda item: item[0])))
            if kwarg_key is _NEVER:
                return None
            return (func, arg_key, kwarg_key)
        return (func, arg_key)

    def replay(self, key: Any, func: OpOverload, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """The result of an earlier identical call (or one known in closed form or from the
        disk), rebuilt; None when there is none."""
        stored = self._results.get(key)
        if stored is None:
            if not self._derive:
                return None
            stored = closed_form(func, args, kwargs)
            if stored is None and self._disk is not None:
                stored = self._disk.get(replay_disk.key_digest(self._context, key), func, self._rules[func])
            if stored is None:
                return None
            self._results[key] = stored
        if stored == _INPLACE:
            return args[0]
        if isinstance(stored, list):
            return tuple(self._fresh(meta) for meta in stored)
        if stored[0] == _VIEW:
            return self._view_of(args[0], stored[1])
        return self._fresh(stored)

    def knows(self, key: Any) -> bool:
        """Whether calls with ``key`` are replayed (their results' metadata is known)."""
        return key in self._results

    def remember(self, key: Any, func: OpOverload, out: Any) -> None:
        stored = stored_form(func, out)
        if stored is None:
            return
        self._results[key] = stored
        if self._disk is not None:
            self._disk.put(replay_disk.key_digest(self._context, key), stored)


    def _view_of(self, base: FakeTensor, meta: tuple[Any, ...]) -> FakeTensor:
        shape, stride, dtype, device, offset = meta
        with no_dispatch():
            view = torch.empty((0,), dtype=dtype, device="meta")
            view.set_(base.untyped_storage(), offset, shape, stride)
        return new_fake(self.fake_mode, view, device)

    def _fresh(self, meta: tuple[Any, ...]) -> FakeTensor:
        shape, stride, dtype, device, requires_grad = meta
        with no_dispatch():
            empty = torch.empty_strided(shape, stride, dtype=dtype, device="meta")
        return new_fake(self.fake_mode, empty, device, requires_grad)
