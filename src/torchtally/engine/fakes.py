"""Turning the real tensors a fake run meets (parameters, buffers, user data) into fake
ones: same shape, stride, dtype and device, no data, memoised so a tensor keeps one fake
twin for the whole run.

Plain dense tensors take a fast path (a meta tensor wrapped as a FakeTensor, ~20x cheaper
than torch's general converter, which dominated analysis time); views, subclasses,
quantized and sparse tensors go through ``FakeTensorMode.from_tensor``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import torch
from torch._ops import OpOverload
from torch._subclasses import fake_tensor
from torch._subclasses.fake_tensor import FakeTensor, FakeTensorMode
from torch.utils._mode_utils import no_dispatch

# Tensor classes whose instances are plain dense tensors (nn.Buffer exists in newer torch).
_PLAIN_TYPES = tuple(t for t in (torch.Tensor, torch.nn.Parameter, getattr(torch.nn, "Buffer", None)) if t is not None)

# What fake tensors cannot do: produce values, or shapes that depend on values.
_FAKE_LIMITS: tuple[type[BaseException], ...] = tuple(
    cls
    for cls in (
        getattr(fake_tensor, "DataDependentOutputException", None),
        getattr(fake_tensor, "DynamicOutputShapeException", None),
        getattr(fake_tensor, "UnsupportedOperatorException", None),
        getattr(fake_tensor, "UnsupportedFakeTensorException", None),
    )
    if cls is not None
)


# FakeTensor's constructor checks and normalises its arguments in Python (~4x the cost of
# the tensor itself); a fake run makes one for every parameter and every operator result.
# Where the arguments are known good (a meta tensor, a CPU device), new_fake builds the same
# object directly: the same subclass call, and the same instance state, copied from one made
# by the real constructor. It is compared with the real constructor's result once per
# process; any difference (another torch version) and the real constructor is used.
_FAST: dict[str, Any] = {}  # "state": the instance state to copy, or None once found unusable
_CPU = torch.device("cpu")


def _fast_fake(fake_mode: FakeTensorMode, meta: torch.Tensor, device: torch.device, requires_grad: bool) -> FakeTensor:
    fake = torch.Tensor._make_subclass(
        FakeTensor, meta, requires_grad, dispatch_device=True, device_for_backend_keys=device
    )
    if not fake_mode._allow_unsafe_data_ptr_access:
        torch._C._set_throw_on_mutable_data_ptr(fake)
    else:
        torch._C._set_warn_deprecated_on_mutable_data_ptr(fake)
    state = fake.__dict__
    state.update(_FAST["state"])
    state["fake_mode"] = fake_mode
    state["_fake_device"] = device
    return fake


def _fast_state(fake_mode: FakeTensorMode) -> dict[str, Any] | None:
    """The instance state a fast-made fake tensor gets, if fast-made ones are identical to
    the real constructor's (checked here, once)."""
    with no_dispatch():
        meta = torch.empty_strided((2, 3), (3, 1), dtype=torch.float16, device="meta")
    reference = FakeTensor(fake_mode, meta, _CPU)
    state = {k: v for k, v in vars(reference).items() if k not in ("fake_mode", "_fake_device")}
    if any(v is not None for v in state.values()) or "fake_mode" not in vars(reference):
        return None
    _FAST["state"] = state
    try:
        fast = _fast_fake(fake_mode, meta, _CPU, False)
    except Exception:  # noqa: BLE001 - any failure means: not on this torch
        return None
    same = (
        type(fast) is type(reference)
        and vars(fast).keys() == vars(reference).keys()
        and all(vars(fast)[k] is vars(reference)[k] or vars(fast)[k] == vars(reference)[k] for k in vars(fast))
        and torch._C._dispatch_keys(fast) == torch._C._dispatch_keys(reference)
        and fast.device == reference.device
        and fast.fake_device == reference.fake_device
        and fast.requires_grad == reference.requires_grad
    )
    return state if same else None


def new_fake(fake_mode: FakeTensorMode, meta: torch.Tensor, device: torch.device, requires_grad: bool = False) -> FakeTensor:
    """``FakeTensor(fake_mode, meta, device)`` with ``requires_grad``: ``meta`` is a tensor on
    the meta device made under no_dispatch."""
    if device.type == "cpu" and device.index is None:
        if "state" not in _FAST:
            _FAST["state"] = _fast_state(fake_mode)
        if _FAST["state"] is not None:
            return _fast_fake(fake_mode, meta, device, requires_grad)
    fake = FakeTensor(fake_mode, meta, device)
    if requires_grad:
        fake.requires_grad_(True)
    return fake


def fake_parameter(fake_mode: FakeTensorMode, twin: FakeTensor, requires_grad: bool) -> torch.nn.Parameter:
    """``nn.Parameter(twin, requires_grad=requires_grad)``: a detached alias of ``twin``
    marked as a parameter. Made directly for a plain fake tensor: nn.Parameter detaches it
    through FakeTensorMode's dispatch (~0.1 ms each, most of a small meta model's analysis)."""
    if type(twin) is not FakeTensor or twin.constant is not None or twin.layout != torch.strided:
        return torch.nn.Parameter(twin, requires_grad=requires_grad)
    with no_dispatch():
        meta = torch.empty((0,), dtype=twin.dtype, device="meta")
        meta.set_(twin.untyped_storage(), twin.storage_offset(), twin.shape, twin.stride())
    alias = new_fake(fake_mode, meta, twin.fake_device, requires_grad)
    alias._is_param = True  # what nn.Parameter sets on a tensor subclass: isinstance(alias, nn.Parameter)
    return cast(torch.nn.Parameter, alias)


def is_fake_limitation(exc: BaseException) -> bool:
    """Whether ``exc`` (or an exception it was raised from) is a fake tensor lacking real
    values: the model (or a loss_fn) needs a real run, it is not wrong."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, _FAKE_LIMITS):
            return True
        if isinstance(current, RuntimeError) and "not supported for tensor subclasses" in str(current):
            return True  # .numpy() and friends on a fake tensor
        current = current.__cause__ or current.__context__
    return False


class FakeConverter:
    """Real -> fake tensors; a tensor on the meta device gets a fake twin on ``meta_as``."""

    def __init__(self, fake_mode: FakeTensorMode, meta_as: torch.device | None = None):
        self.fake_mode = fake_mode
        self.meta_as = meta_as
        self.on_new_twin: Callable[[torch.Tensor, FakeTensor], None] | None = None  # told of every conversion
        self._memo: dict[int, tuple[torch.Tensor, FakeTensor]] = {}  # id(real) -> (real kept alive, fake)

    def tensor(self, real: torch.Tensor) -> FakeTensor:
        hit = self._memo.get(id(real))
        if hit is not None:
            return hit[1]
        if (
            type(real) in _PLAIN_TYPES
            and real.layout == torch.strided
            and not real.is_quantized
            and real._base is None
            and real.storage_offset() == 0
        ):
            with no_dispatch():
                meta = torch.empty_strided(real.shape, real.stride(), dtype=real.dtype, device="meta")
            device = self.meta_as if real.device.type == "meta" and self.meta_as is not None else real.device
            fake = new_fake(self.fake_mode, meta, device, real.requires_grad)
        else:
            fake = self.fake_mode.from_tensor(real)
        self._memo[id(real)] = (real, fake)
        if self.on_new_twin is not None:
            self.on_new_twin(real, fake)
        return fake

    def twins(self) -> list[tuple[torch.Tensor, FakeTensor]]:
        """Every (real tensor, fake twin) made so far."""
        return list(self._memo.values())

    def values(self, args: tuple[Any, ...]) -> tuple[Any, ...]:
        """``tuple(self.value(a) for a in args)``, or ``args`` itself when no real tensor is
        in it (most calls, past a run's first use of each weight): converting would only
        copy it."""
        for arg in args:
            if type(arg) is FakeTensor:
                continue
            if isinstance(arg, torch.Tensor) and not isinstance(arg, FakeTensor):
                return tuple([self.value(a) for a in args])
            if isinstance(arg, (list, tuple)) and any(
                isinstance(item, torch.Tensor) and not isinstance(item, FakeTensor) for item in arg
            ):
                return tuple([self.value(a) for a in args])
        return args

    def value(self, value: Any) -> Any:
        """An operator argument with every real tensor in it (also inside lists) made fake."""
        if type(value) is FakeTensor:
            return value
        if isinstance(value, torch.Tensor):
            return value if isinstance(value, FakeTensor) else self.tensor(value)
        if isinstance(value, (list, tuple)) and any(isinstance(v, torch.Tensor) for v in value):
            return type(value)(self.value(v) for v in value)
        return value


def _grouped_mm_in_float32(func: OpOverload, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``_grouped_mm``'s fake kernel accepts only 16-bit floats (the CUDA rule) while the CPU
    kernel also runs float32: shape it in bfloat16, return float32 of the same layout."""
    first, second, *rest = args
    if not (isinstance(first, FakeTensor) and isinstance(second, FakeTensor) and first.dtype == torch.float32):
        return None
    shaped = func(first.to(torch.bfloat16), second.to(torch.bfloat16), *rest, **kwargs)
    return torch.empty_strided(shaped.shape, shaped.stride(), dtype=first.dtype, device=shaped.device)


# Operators whose fake kernel rejects calls the real kernel runs, with how to shape them anyway.
_LENIENT: dict[OpOverload, Callable[[OpOverload, tuple[Any, ...], dict[str, Any]], Any]] = {}
if hasattr(torch.ops.aten, "_grouped_mm"):  # torch >= 2.8
    _LENIENT[torch.ops.aten._grouped_mm.default] = _grouped_mm_in_float32


def lenient_result(func: OpOverload, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """After ``func``'s fake kernel refused a call: the result the real kernel would give, or
    None when the refusal stands. Runs under the fake mode (called from inside the counting mode)."""
    shape_it = _LENIENT.get(func)
    return shape_it(func, args, kwargs) if shape_it is not None else None
