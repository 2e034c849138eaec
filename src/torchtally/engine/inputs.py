"""Example inputs: shapes and dtypes, or the user's own data, turned into the arguments of
one forward call, as fake tensors (no memory) or as real ones."""

from __future__ import annotations

import copy
import enum
import itertools
import operator
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Union

import torch
from torch import nn

from ..errors import InputError
from .fakes import FakeConverter
from .tensors import MAX_NESTING

Shape = Sequence[int]
InputSize = Union[Shape, Sequence[Shape], Mapping[str, Shape]]
DtypeSpec = Union[torch.dtype, Sequence[torch.dtype], Mapping[str, torch.dtype], None]


@dataclass(frozen=True)
class TensorToMake:
    """A tensor to create for the run: from ``input_size`` and ``dtypes``."""

    shape: tuple[int, ...]
    dtype: torch.dtype


def as_shape(value: Any) -> tuple[int, ...] | None:
    """``value`` as a shape: a torch.Size, or a list/tuple of whole numbers (Python or numpy
    integers, not bools); None when it is not one. Negative sizes are checked apart."""
    if isinstance(value, torch.Size):
        return tuple(value)
    if not isinstance(value, (list, tuple)) or any(isinstance(d, bool) for d in value):
        return None
    try:
        return tuple(operator.index(d) for d in value)
    except TypeError:
        return None


def _check_shape(shape: tuple[int, ...], where: str) -> tuple[int, ...]:
    if any(d < 0 for d in shape):
        raise InputError(f"{where}: dimensions must be >= 0, got {list(shape)}")
    return shape


def _shapes_from_input_size(input_size: Any) -> tuple[list[tuple[int, ...]], dict[str, tuple[int, ...]]]:
    """Positional and keyword shapes described by ``input_size``."""
    usage = (
        "input_size must be one shape such as (1, 3, 224, 224), a list of shapes for several "
        "inputs such as [(1, 3, 224, 224), (1, 10)], or a dict of shapes by argument name"
    )
    if isinstance(input_size, Mapping):
        named = {}
        for name, value in input_size.items():
            shape = as_shape(value)
            if shape is None or not isinstance(name, str):
                raise InputError(f"{usage}; the entry {name!r}: {value!r} is not a shape")
            named[name] = _check_shape(shape, f"input_size[{name!r}]")
        return [], named
    single = as_shape(input_size)
    if single is not None:
        return [_check_shape(single, "input_size")], {}
    if isinstance(input_size, (list, tuple)) and input_size:
        shapes = []
        for position, value in enumerate(input_size):
            shape = as_shape(value)
            if shape is None:
                raise InputError(f"{usage}; item {position} ({value!r}) is not a shape")
            shapes.append(_check_shape(shape, f"input_size[{position}]"))
        return shapes, {}
    raise InputError(f"{usage}; got {input_size!r}")


def _dtype_for(dtypes: DtypeSpec, position: int, name: str | None, count: int, default: torch.dtype) -> torch.dtype:
    """The dtype of the input at ``position`` (in input_size's order), named ``name`` if keyword."""
    if dtypes is None:
        return default
    if isinstance(dtypes, torch.dtype):
        return dtypes
    if isinstance(dtypes, Mapping):
        chosen = dtypes.get(name, default) if name is not None else default
    elif isinstance(dtypes, (list, tuple)):
        if len(dtypes) == 1:
            chosen = dtypes[0]
        elif len(dtypes) != count:
            raise InputError(f"dtypes has {len(dtypes)} entries but input_size describes {count} inputs")
        else:
            chosen = dtypes[position]
    else:
        raise InputError(f"dtypes must be a torch.dtype, a list of them or a dict by argument name; got {dtypes!r}")
    if not isinstance(chosen, torch.dtype):
        raise InputError(f"dtypes entries must be torch.dtype values such as torch.long; got {chosen!r}")
    return chosen


class InputPlan:
    """The arguments of one forward call, before any tensor of ours exists."""

    def __init__(self, args: tuple[Any, ...], kwargs: dict[str, Any]):
        self.args = args
        self.kwargs = kwargs

    @classmethod
    def from_arguments(
        cls,
        input_size: Any,
        input_data: Any,
        dtypes: DtypeSpec,
        forward_kwargs: Mapping[str, Any],
        default_dtype: torch.dtype,
    ) -> InputPlan:
        if input_size is not None and input_data is not None:
            raise InputError("give either input_size or input_data, not both")
        if input_size is None and input_data is None:
            raise InputError(
                "nothing to run the model on: give input_size=(1, 3, 224, 224) (a shape, a list of "
                "shapes or a dict of shapes) or input_data= (tensors, or a tuple/dict of them)"
            )
        args: tuple[Any, ...]
        kwargs: dict[str, Any]
        if input_size is not None:
            positional, named = _shapes_from_input_size(input_size)
            count = len(positional) + len(named)
            if isinstance(dtypes, Mapping):
                unknown = sorted(str(k) for k in dtypes if k not in named)
                if unknown:
                    raise InputError(
                        f"dtypes names {unknown}, which input_size does not (it names {sorted(named) or 'no inputs'}); "
                        "a dict of dtypes goes with a dict input_size"
                    )
            args = tuple(
                TensorToMake(shape, _dtype_for(dtypes, i, None, count, default_dtype)) for i, shape in enumerate(positional)
            )
            kwargs = {
                name: TensorToMake(shape, _dtype_for(dtypes, len(positional) + i, name, count, default_dtype))
                for i, (name, shape) in enumerate(named.items())
            }
        else:
            if dtypes is not None:
                raise InputError("dtypes applies to input_size; input_data already has its dtypes")
            if isinstance(input_data, Mapping):
                args, kwargs = (), dict(input_data)
            elif isinstance(input_data, (list, tuple)) and not hasattr(input_data, "_fields"):
                args, kwargs = tuple(input_data), {}
            else:
                args, kwargs = (input_data,), {}
        clashes = sorted(set(kwargs) & set(forward_kwargs))
        if clashes:
            raise InputError(f"keyword argument(s) {clashes} given both in the inputs and as forward keyword arguments")
        kwargs.update(forward_kwargs)
        return cls(args, kwargs)

    def materialize(
        self, device: torch.device, fakes: FakeConverter | None
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The arguments of the run: fake tensors (with ``fakes``) or real ones on ``device``.

        The user's own data is never handed to the model itself: tensors are replaced by fake
        twins or copies, and other objects holding tensors (a Hugging Face cache, a custom
        batch class) are deep-copied with their tensors so replaced, because a forward may
        update its inputs in place."""
        generator: torch.Generator | None = None
        if fakes is None and device.type != "meta":
            # A private generator: making inputs must not move the user's RNG.
            generator = torch.Generator(device=device).manual_seed(0)

        # One replacement per user tensor: a tensor passed twice stays one tensor (as a fake
        # run's memoised twins are), so both runs see the same aliasing and input bytes.
        made: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # id(user's) -> (user's, ours)

        def tensor(value: torch.Tensor) -> torch.Tensor:
            hit = made.get(id(value))
            if hit is not None:
                return hit[1]
            ours: torch.Tensor
            if fakes is not None:
                ours = fakes.tensor(value)
                if ours.device != device:
                    with fakes.fake_mode:
                        ours = ours.to(device).requires_grad_(value.requires_grad)
            else:
                # A leaf keeping requires_grad (the user's input gradient is part of the
                # backward), detached so autograd never reaches the user's tensor.
                ours = value.detach().clone() if value.device == device else value.detach().to(device)
                ours.requires_grad_(value.requires_grad)
            made[id(value)] = (value, ours)
            return ours

        def make(value: Any) -> Any:
            if isinstance(value, TensorToMake):
                if fakes is not None:
                    with fakes.fake_mode:
                        return torch.empty(value.shape, dtype=value.dtype, device=device)
                return _random_tensor(value, device, generator)
            if isinstance(value, torch.Tensor):
                return tensor(value)
            if isinstance(value, Mapping) and type(value) is dict:
                return {k: make(v) for k, v in value.items()}
            if isinstance(value, tuple) and hasattr(value, "_fields"):  # namedtuple
                return type(value)(*(make(v) for v in value))
            if type(value) in (list, tuple):
                return type(value)(make(v) for v in value)
            return _copy_with_tensors(value, tensor)

        made_args = tuple(make(a) for a in self.args), {k: make(v) for k, v in self.kwargs.items()}
        # `make` refers to itself through its closure: a cycle (holding the inputs) that only the
        # cyclic collector would free. Emptying the name breaks it.
        make = None  # type: ignore[assignment]
        return made_args


def tensors_within(value: Any, depth: int = 0, seen: set[int] | None = None) -> list[torch.Tensor]:
    """Tensors reachable from ``value`` through containers and object attributes."""
    seen = set() if seen is None else seen
    if isinstance(value, torch.Tensor):
        return [value]
    if depth > MAX_NESTING or id(value) in seen or isinstance(value, (str, bytes, int, float, bool, type, nn.Module)):
        return []
    seen.add(id(value))
    if isinstance(value, Mapping):
        children: Any = value.values()
    elif isinstance(value, (list, tuple, set, frozenset)):
        children = value
    else:
        children = _attributes_of(value).values()
    return [t for child in children for t in tensors_within(child, depth + 1, seen)]


def _attributes_of(value: Any) -> dict[str, Any]:
    """An object's attributes: its ``__dict__`` and the ``__slots__`` it has set."""
    found = dict(getattr(value, "__dict__", None) or {})
    for cls in type(value).__mro__:
        slots = cls.__dict__.get("__slots__", ())
        for name in (slots,) if isinstance(slots, str) else slots:
            if name not in ("__dict__", "__weakref__") and hasattr(value, name):
                found[name] = getattr(value, name)
    return found


# Inputs handed over as they are: immutable, or (a module) not an input's data to copy.
_SHARED_INPUTS = (
    str, bytes, int, float, complex, bool, type(None), range, slice, type, enum.Enum, torch.dtype, torch.device,
    torch.Size, types.FunctionType, types.BuiltinFunctionType, types.MethodType, nn.Module,
)  # fmt: skip


def _copy_with_tensors(value: Any, replace: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    """A deep copy of ``value`` whose tensors are ``replace(tensor)``, also when it holds no
    tensor yet (an empty cache the forward fills). Where ``deepcopy`` refuses (an object
    holding a lock, a file) or returns the object itself, the object is rebuilt instead:
    shallow copies down every path that leads to a tensor, the rest shared. The user's own
    object is never handed to the forward, which may write into it."""
    if isinstance(value, _SHARED_INPUTS):
        return value
    memo: dict[int, Any] = {id(t): replace(t) for t in tensors_within(value)}
    try:
        copied = copy.deepcopy(value, memo)
    except Exception:  # noqa: BLE001 - any object may refuse deep copying
        return _rebuilt(value, replace, type(value).__name__, {}, top=True)
    if copied is value:  # a __deepcopy__ that returns the object itself
        return _rebuilt(value, replace, type(value).__name__, {}, top=True)
    return copied


def _rebuilt(
    value: Any, replace: Callable[[torch.Tensor], torch.Tensor], where: str, done: dict[int, Any], top: bool = False
) -> Any:
    """``value`` with its tensors replaced: containers and objects on the way to a tensor are
    copied (shallow, then their tensor-holding parts rebuilt), everything else is shared. The
    input itself (``top``) is always a copy, or an InputError when it cannot be copied."""
    if isinstance(value, torch.Tensor):
        return replace(value)
    if id(value) in done:
        return done[id(value)]
    if not tensors_within(value):
        if not top:
            return value
        try:
            copied = copy.copy(value)
        except Exception as exc:  # noqa: BLE001 - reported with the object's type
            raise InputError(
                f"the input {where} ({type(value).__name__}) can be neither deep-copied nor copied ({type(exc).__name__}: "
                f"{exc}); analysis never hands your own objects to the model, which may change them: pass a "
                "copyable value (a list instead of a generator or iterator)"
            ) from exc
        return copied
    if type(value) is dict:
        rebuilt: dict[Any, Any] = {}
        done[id(value)] = rebuilt
        rebuilt.update({k: _rebuilt(v, replace, f"{where}[{k!r}]", done) for k, v in value.items()})
        return rebuilt
    if type(value) in (list, tuple) or (isinstance(value, tuple) and hasattr(value, "_fields")):
        items = [_rebuilt(v, replace, f"{where}[{i}]", done) for i, v in enumerate(value)]
        return type(value)(*items) if hasattr(value, "_fields") else type(value)(items)
    try:
        result = copy.copy(value)
    except Exception as exc:  # noqa: BLE001 - reported with the path to the object
        raise InputError(
            f"the input {where} ({type(value).__name__}) holds tensors but can be neither deep-copied nor copied "
            f"({type(exc).__name__}: {exc}); analysis never hands your own objects to the model, which may write "
            "into them: pass its tensors (or a dict of them) instead, or give the class a __deepcopy__"
        ) from exc
    if result is value:
        raise InputError(
            f"the input {where} ({type(value).__name__}) holds tensors, cannot be deep-copied, and copying it "
            "returns the object itself; pass its tensors (or a dict of them) instead, or give the class a __deepcopy__"
        )
    done[id(value)] = result
    for name, child in _attributes_of(value).items():
        object.__setattr__(result, name, _rebuilt(child, replace, f"{where}.{name}", done))
    return result


def _random_tensor(spec: TensorToMake, device: torch.device, generator: torch.Generator | None) -> torch.Tensor:
    if spec.dtype.is_floating_point or spec.dtype.is_complex:
        return torch.randn(spec.shape, dtype=spec.dtype, device=device, generator=generator)
    # Integers are usually indices (token ids, labels): zeros are valid for any table size.
    return torch.zeros(spec.shape, dtype=spec.dtype, device=device)


def model_device(model: torch.nn.Module) -> torch.device:
    for tensor in itertools.chain(model.parameters(), model.buffers()):
        return tensor.device
    return torch.device("cpu")


def model_float_dtype(model: torch.nn.Module) -> torch.dtype:
    """The dtype floating inputs get by default: the model's own, so a bf16 model gets bf16."""
    for tensor in itertools.chain(model.parameters(), model.buffers()):
        if tensor.is_floating_point():
            return tensor.dtype
    return torch.get_default_dtype()
