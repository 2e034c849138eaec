"""Closed-form result metadata for the operators most models are made of.

The first call of an operator with new input metadata costs FakeTensorMode's shape
inference in Python (a batch norm's decomposition alone is ~10 ms), and a CNN meets
hundreds of such signatures on its first analysis. For the common operators the result's
shape, stride and dtype follow from a few lines of arithmetic, so those calls skip the fake
kernel. Each rule covers only the plain case (dense, default-contiguous inputs of one
floating dtype on the CPU, valid arguments; other devices' fake kernels choose layouts of
their own) and answers None for anything else, which
then goes through the fake kernel as before: an invalid call still raises there. Every
rule is checked against the fake kernel in tests/test_shapes.py.

A rule returns the replay's stored form (see replay.py): a result's
``(shape, stride, dtype, device, requires_grad)``, a list of them for a tuple result,
``("view", (shape, stride, dtype, device, offset))`` for a view, or ``"inplace"``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch._ops import OpOverload
from torch._subclasses.fake_tensor import FakeTensor

aten = torch.ops.aten

Meta = tuple[tuple[int, ...], tuple[int, ...], torch.dtype, torch.device, bool]
Rule = Callable[[tuple[Any, ...], dict[str, Any]], Any]

_FLOATS = frozenset({torch.float32, torch.float64, torch.float16, torch.bfloat16})
_SCALARS = (int, float)


def contiguous_strides(shape: Sequence[int]) -> tuple[int, ...]:
    strides = [1] * len(shape)
    for i in range(len(shape) - 2, -1, -1):
        strides[i] = strides[i + 1] * max(shape[i + 1], 1)
    return tuple(strides)


def _default_strides(shape: Sequence[int], stride: Sequence[int]) -> bool:
    """Contiguous strides, where a size-1 dimension's stride may be anything (a chunk of a
    batch of one keeps its parent's)."""
    expected = 1
    for size, step in zip(reversed(shape), reversed(stride)):
        if size != 1 and step != expected:
            return False
        expected *= max(size, 1)
    return True


def _plain(value: Any, *, loose: bool = False) -> bool:
    """A dense fake tensor with default contiguous strides and no special state; ``loose``:
    any stride on size-1 dimensions (a result that copies its input's strides would copy
    those, so only where the result is laid out afresh)."""
    return (
        type(value) is FakeTensor
        and value.constant is None
        and value.dtype in _FLOATS
        and value.fake_device.type == "cpu"
        and value.layout == torch.strided
        and not value.is_conj()
        and not value.is_neg()
        and (
            _default_strides(value.shape, value.stride())
            if loose
            else value.stride() == contiguous_strides(value.shape)
        )
    )


def _same_kind(*tensors: FakeTensor) -> bool:
    first = tensors[0]
    return all(t.dtype == first.dtype and t.fake_device == first.fake_device for t in tensors[1:])


def _fresh(shape: Sequence[int], like: FakeTensor, dtype: torch.dtype | None = None) -> Meta:
    shape = tuple(int(s) for s in shape)
    return (shape, contiguous_strides(shape), like.dtype if dtype is None else dtype, like.fake_device, False)


def _ints(value: Any, length: int) -> tuple[int, ...] | None:
    """An int list argument of exactly ``length`` items (aten passes them expanded)."""
    if isinstance(value, (list, tuple)) and len(value) == length and all(type(v) is int for v in value):
        return tuple(value)
    return None


# --- elementwise ------------------------------------------------------------------------

def _unary(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if len(args) != 1 or kwargs or not _plain(args[0]):
        return None
    return _fresh(args[0].shape, args[0])


def _unary_inplace(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if len(args) != 1 or kwargs or not _plain(args[0]):
        return None
    return "inplace"


def _gelu(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if len(args) != 1 or set(kwargs) - {"approximate"} or kwargs.get("approximate", "none") not in ("none", "tanh"):
        return None
    return _fresh(args[0].shape, args[0]) if _plain(args[0]) else None


def _hardtanh_inplace(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if kwargs or not 1 <= len(args) <= 3 or not _plain(args[0]):
        return None
    if not all(type(bound) in _SCALARS for bound in args[1:]):
        return None
    return "inplace"


def _clone(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if len(args) != 1 or set(kwargs) - {"memory_format"}:
        return None
    x, layout = args[0], kwargs.get("memory_format")
    if layout is torch.contiguous_format:  # .contiguous() of a transposed tensor
        dense = (
            type(x) is FakeTensor
            and x.constant is None
            and x.layout == torch.strided
            and x.dtype in _FLOATS
            and x.fake_device.type == "cpu"
        )
        return _fresh(x.shape, x) if dense and not x.is_conj() and not x.is_neg() else None
    if layout not in (None, torch.preserve_format) or not _plain(x):
        return None
    return _fresh(x.shape, x)


def _broadcast(first: FakeTensor, other: Any) -> tuple[int, ...] | None:
    """The broadcast shape when ``first`` already has it (the result then takes its
    layout) and ``other`` is a plain tensor or a Python number."""
    if type(other) in _SCALARS:
        return tuple(first.shape)
    if not _plain(other) or not _same_kind(first, other) or other.dim() > first.dim():
        return None
    shape = tuple(first.shape)
    for size, theirs in zip(reversed(shape), reversed(tuple(other.shape))):
        if theirs != size and theirs != 1:
            return None
    return shape


def _binary(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if len(args) != 2 or set(kwargs) - {"alpha"}:
        return None
    if "alpha" in kwargs and type(kwargs["alpha"]) not in _SCALARS:
        return None
    first, second = args
    if _plain(second) and _plain(first) and first.dim() <= second.dim() and first.shape != second.shape:
        first, second = second, first  # a squeeze-excitation scale times its input
    if not _plain(first):
        return None
    shape = _broadcast(first, second)
    return None if shape is None else _fresh(shape, first)


def _binary_inplace(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if len(args) != 2 or not _plain(args[0]) or set(kwargs) - {"alpha"}:
        return None
    if "alpha" in kwargs and type(kwargs["alpha"]) not in _SCALARS:
        return None
    return None if _broadcast(args[0], args[1]) is None else "inplace"


def _cat(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if kwargs or not 1 <= len(args) <= 2 or not isinstance(args[0], (list, tuple)) or not args[0]:
        return None
    tensors, dim = args[0], args[1] if len(args) == 2 else 0
    if type(dim) is not int or not all(_plain(t) for t in tensors) or not _same_kind(*tensors):
        return None
    first = tensors[0]
    rank = first.dim()
    if rank == 0 or not -rank <= dim < rank or any(t.dim() != rank or t.numel() == 0 for t in tensors):
        return None
    dim %= rank
    if any(t.shape[:dim] != first.shape[:dim] or t.shape[dim + 1 :] != first.shape[dim + 1 :] for t in tensors):
        return None
    shape = list(first.shape)
    shape[dim] = sum(t.shape[dim] for t in tensors)
    return _fresh(shape, first)


# --- convolution, normalization, pooling ----------------------------------------------

def _convolution(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if kwargs or len(args) != 9:
        return None
    x, weight, bias, stride, padding, dilation, transposed, _output_padding, groups = args
    if transposed is not False or type(groups) is not int or groups < 1:
        return None
    if not (_plain(x, loose=True) and _plain(weight) and _same_kind(x, weight)) or weight.dim() < 3 or x.dim() != weight.dim():
        return None
    out_channels, per_group = weight.shape[0], weight.shape[1]
    if x.shape[1] != per_group * groups or out_channels % groups or out_channels == 0:
        return None
    if bias is not None and not (_plain(bias) and _same_kind(x, bias) and tuple(bias.shape) == (out_channels,)):
        return None
    spatial = x.dim() - 2
    strides, pads, dilations = _ints(stride, spatial), _ints(padding, spatial), _ints(dilation, spatial)
    if strides is None or pads is None or dilations is None:
        return None
    if min(strides) < 1 or min(pads) < 0 or min(dilations) < 1 or x.shape[0] == 0:
        return None
    sizes = []
    for size, kernel, s, p, d in zip(x.shape[2:], weight.shape[2:], strides, pads, dilations):
        out = (size + 2 * p - d * (kernel - 1) - 1) // s + 1
        if out < 1:
            return None
        sizes.append(out)
    # One output position per sample leaves a channels-last layout indistinguishable from
    # a contiguous one, where the backend's choice decides: leave that to the fake kernel.
    return _fresh((x.shape[0], out_channels, *sizes), x)


def _batch_norm(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if kwargs or len(args) != 8:
        return None
    x, weight, bias, running_mean, running_var, training, momentum, eps = args
    if not _plain(x) or x.dim() < 2 or type(training) is not bool or type(momentum) not in _SCALARS:
        return None
    if type(eps) not in _SCALARS:
        return None
    channels = x.shape[1]
    for extra in (weight, bias, running_mean, running_var):
        if extra is not None and not (_plain(extra) and _same_kind(x, extra) and tuple(extra.shape) == (channels,)):
            return None
    if not training and (running_mean is None or running_var is None):
        return None
    if x.numel() == 0:
        return None
    if training and x.numel() // channels < 2:
        return None  # one value per channel: the fake kernel divides by zero
    stats = (channels,) if training else (0,)
    return [_fresh(x.shape, x), _fresh(stats, x), _fresh(stats, x)]


def _pool_size(size: int, kernel: int, stride: int, pad: int, dilation: int, ceil: bool) -> int:
    """aten's pooling_output_shape."""
    numerator = size + 2 * pad - dilation * (kernel - 1) - 1 + (stride - 1 if ceil else 0)
    out = numerator // stride + 1
    if ceil and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def _pair(value: Any) -> tuple[int, ...] | None:
    """An ``int[2]`` argument: one int or a list of one or two."""
    if type(value) is int:
        return (value, value)
    if isinstance(value, (list, tuple)) and len(value) == 1 and type(value[0]) is int:
        return (value[0], value[0])
    return _ints(value, 2)


def _max_pool2d_with_indices(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if kwargs or not 2 <= len(args) <= 6:
        return None
    # Trailing arguments at their defaults are left out of the call.
    x, kernel, stride, padding, dilation, ceil_mode = args + ([], [0], [1], False)[len(args) - 2 :]
    if not _plain(x) or x.dim() != 4 or type(ceil_mode) is not bool:
        return None
    kernels, pads, dilations = _pair(kernel), _pair(padding), _pair(dilation)
    strides = _pair(stride) if stride else kernels
    if kernels is None or strides is None or pads is None or dilations is None:
        return None
    if min(kernels) < 1 or min(strides) < 1 or min(dilations) < 1 or min(pads) < 0:
        return None
    if any(2 * p > k for p, k in zip(pads, kernels)) or x.shape[0] == 0:
        return None
    sizes = [_pool_size(*item, ceil_mode) for item in zip(x.shape[2:], kernels, strides, pads, dilations)]
    if min(sizes) < 1:
        return None
    shape = (x.shape[0], x.shape[1], *sizes)
    return [_fresh(shape, x), _fresh(shape, x, torch.int64)]


def _mean_dim(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if kwargs or not 2 <= len(args) <= 3 or not _plain(args[0]):
        return None
    x, dims = args[0], args[1]
    keepdim = args[2] if len(args) == 3 else False
    if type(keepdim) is not bool or not isinstance(dims, (list, tuple)) or not dims or x.dim() == 0:
        return None
    if not all(type(d) is int and -x.dim() <= d < x.dim() for d in dims):
        return None
    reduced = {d % x.dim() for d in dims}
    if len(reduced) != len(dims):
        return None
    shape = [1 if i in reduced else size for i, size in enumerate(x.shape)] if keepdim else [
        size for i, size in enumerate(x.shape) if i not in reduced
    ]
    return _fresh(shape, x)


# --- matrix products ------------------------------------------------------------------

def _matrix(value: Any, dims: int) -> bool:
    """A dense fake matrix (any strides: the weight arrives transposed)."""
    return (
        type(value) is FakeTensor
        and value.constant is None
        and value.dim() == dims
        and value.dtype in _FLOATS
        and value.fake_device.type == "cpu"
        and value.layout == torch.strided
        and not value.is_conj()
        and not value.is_neg()
        and value.numel() > 0
    )


def _addmm(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if len(args) != 3 or set(kwargs) - {"beta", "alpha"}:
        return None
    if not all(type(v) in _SCALARS for v in kwargs.values()):
        return None
    bias, first, second = args
    if not (_matrix(first, 2) and _matrix(second, 2) and _same_kind(first, second)):
        return None
    if first.shape[1] != second.shape[0]:
        return None
    shape = (first.shape[0], second.shape[1])
    if not (_plain(bias) and _same_kind(first, bias)) or bias.dim() > 2:
        return None
    if any(theirs not in (1, size) for size, theirs in zip(reversed(shape), reversed(tuple(bias.shape)))):
        return None
    return _fresh(shape, first)


def _mm(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if len(args) != 2 or kwargs:
        return None
    first, second = args
    if not (_matrix(first, 2) and _matrix(second, 2) and _same_kind(first, second)):
        return None
    if first.shape[1] != second.shape[0]:
        return None
    return _fresh((first.shape[0], second.shape[1]), first)


def _bmm(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if len(args) != 2 or kwargs:
        return None
    first, second = args
    if not (_matrix(first, 3) and _matrix(second, 3) and _same_kind(first, second)):
        return None
    if first.shape[0] != second.shape[0] or first.shape[2] != second.shape[1]:
        return None
    return _fresh((first.shape[0], first.shape[1], second.shape[2]), first)


# --- views ------------------------------------------------------------------------------

def _view(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if len(args) != 2 or kwargs or not _plain(args[0]):
        return None
    x, size = args
    if not isinstance(size, (list, tuple)) or not all(type(s) is int for s in size):
        return None
    if sum(1 for s in size if s == -1) > 1 or any(s < -1 for s in size):
        return None
    known = 1
    for s in size:
        if s != -1:
            known *= s
    if -1 in size:
        if known == 0 or x.numel() % known:
            return None
        size = [x.numel() // known if s == -1 else s for s in size]
    elif known != x.numel():
        return None
    if x.numel() == 0:
        return None
    shape = tuple(size)
    return ("view", (shape, contiguous_strides(shape), x.dtype, x.fake_device, x.storage_offset()))


def _t(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if len(args) != 1 or kwargs or type(args[0]) is not FakeTensor or args[0].dim() != 2:
        return None
    x = args[0]
    if not _matrix(x, 2):
        return None
    shape = (x.shape[1], x.shape[0])
    stride = (x.stride()[1], x.stride()[0])
    return ("view", (shape, stride, x.dtype, x.fake_device, x.storage_offset()))


def _layer_norm(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if kwargs or len(args) != 5:
        return None
    x, normalized, weight, bias, eps = args
    if not _plain(x) or type(eps) not in _SCALARS or not isinstance(normalized, (list, tuple)) or not normalized:
        return None
    count = len(normalized)
    if x.dim() < count or tuple(x.shape[-count:]) != tuple(normalized) or x.numel() == 0:
        return None
    for extra in (weight, bias):
        if extra is not None and not (_plain(extra) and _same_kind(x, extra) and tuple(extra.shape) == tuple(normalized)):
            return None
    stats = (*x.shape[:-count], *([1] * count))
    return [_fresh(x.shape, x), _fresh(stats, x), _fresh(stats, x)]


def _softmax(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if kwargs or len(args) != 3:
        return None
    x, dim, half_to_float = args
    if not _plain(x) or type(dim) is not int or half_to_float is not False or not -max(x.dim(), 1) <= dim < max(x.dim(), 1):
        return None
    return _fresh(x.shape, x)


_INPLACE_UNARY = ("relu_", "silu_", "hardswish_", "sigmoid_", "tanh_", "gelu_")
_UNARY = ("relu", "silu", "hardswish", "hardsigmoid", "sigmoid", "tanh", "exp", "neg", "sqrt", "rsqrt")

RULES: dict[OpOverload, Rule] = {
    aten.convolution.default: _convolution,
    aten.native_batch_norm.default: _batch_norm,
    aten.max_pool2d_with_indices.default: _max_pool2d_with_indices,
    aten.mean.dim: _mean_dim,
    aten.addmm.default: _addmm,
    aten.mm.default: _mm,
    aten.bmm.default: _bmm,
    aten.view.default: _view,
    aten._unsafe_view.default: _view,
    aten.t.default: _t,
    aten.cat.default: _cat,
    aten.native_layer_norm.default: _layer_norm,
    aten._softmax.default: _softmax,
    aten.gelu.default: _gelu,
    aten.clone.default: _clone,
    aten.hardtanh_.default: _hardtanh_inplace,
    **{getattr(aten, name).default: _unary for name in _UNARY},
    **{getattr(aten, name).default: _unary_inplace for name in _INPLACE_UNARY if name != "gelu_"},
    **{getattr(aten, name).Tensor: _binary for name in ("add", "sub", "mul", "div")},
    **{getattr(aten, name).Tensor: _binary_inplace for name in ("add_", "sub_", "mul_", "div_")},
}


def closed_form(func: OpOverload, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The replay's stored form of ``func(*args, **kwargs)``'s result, or None when this
    call is not one a rule covers."""
    rule = RULES.get(func)
    if rule is None:
        return None
    return rule(args, kwargs)
