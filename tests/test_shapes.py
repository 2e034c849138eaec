"""The closed-form result metadata (torchtally.engine.shapes) against the fake kernels
themselves: for every call a rule answers, FakeTensorMode must give exactly the same
shape, stride, dtype, device and aliasing; for every call the fake kernel refuses, the rule
must not answer. The typical calls of real models must be covered (else a rule answering
nothing would pass)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode

from torchtally.engine.replay import stored_form
from torchtally.engine.shapes import RULES, closed_form

aten = torch.ops.aten
Call = tuple[Any, tuple[Any, ...], dict[str, Any]]
MODE = FakeTensorMode()


def fake(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    with MODE:
        return torch.empty(shape, dtype=dtype)


def check(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any] | None = None) -> bool:
    """Compare the rule with the fake kernel; True when the rule answered."""
    kwargs = kwargs or {}
    derived = closed_form(func, args, kwargs)
    try:
        with MODE:
            out = func(*args, **kwargs)
    except (RuntimeError, ValueError, IndexError, TypeError, AssertionError, NotImplementedError, ZeroDivisionError, AttributeError):
        assert derived is None, f"{func}{args}: the fake kernel refuses it, the rule answered {derived}"
        return False
    if derived is not None:
        if derived == "inplace":
            assert out is args[0]
        expected = stored_form(func, out)
        assert derived == expected, f"{func} on {[getattr(a, 'shape', a) for a in args]}: {derived} != {expected}"
    return derived is not None


def run_cases(cases: Iterator[Call]) -> tuple[int, int]:
    answered = total = 0
    for func, args, kwargs in cases:
        total += 1
        answered += check(func, args, kwargs)
    return answered, total


DTYPES = (torch.float32, torch.bfloat16)
IMAGES = [(1, 3, 8, 8), (2, 16, 7, 5), (1, 1, 4, 4), (1, 8, 1, 1), (2, 8, 1, 6), (0, 4, 5, 5)]


def conv_cases() -> Iterator[Call]:
    for shape, dtype, (out_ch, kernel, stride, pad, dilation, groups), bias in itertools.product(
        IMAGES,
        DTYPES,
        [(8, 3, 1, 1, 1, 1), (4, 1, 2, 0, 1, 1), (6, 3, 2, 1, 2, 1), (16, 3, 1, 1, 1, 16), (4, 5, 1, 0, 1, 1)],
        (False, True),
    ):
        channels = shape[1]
        weight = fake(out_ch, max(channels // groups, 1), kernel, kernel, dtype=dtype)
        args = (fake(*shape, dtype=dtype), weight, fake(out_ch, dtype=dtype) if bias else None,
                [stride] * 2, [pad] * 2, [dilation] * 2, False, [0, 0], groups)
        yield aten.convolution.default, args, {}
    # 1-d and 3-d, a wrong channel count, a transposed one
    yield aten.convolution.default, (fake(2, 4, 9), fake(6, 4, 3), None, [1], [1], [1], False, [0], 1), {}
    yield aten.convolution.default, (fake(1, 2, 4, 5, 6), fake(3, 2, 3, 3, 3), None, [1] * 3, [0] * 3, [1] * 3, False,
                                     [0] * 3, 1), {}
    yield aten.convolution.default, (fake(1, 5, 8, 8), fake(8, 4, 3, 3), None, [1, 1], [1, 1], [1, 1], False, [0, 0], 1), {}
    yield aten.convolution.default, (fake(1, 4, 8, 8), fake(4, 2, 3, 3), None, [1, 1], [0, 0], [1, 1], True, [0, 0], 1), {}


def test_convolution_matches_the_fake_kernel() -> None:
    answered, total = run_cases(conv_cases())
    # resnet's 7x7/2 stem and 3x3 blocks, 1x1 projections, depthwise convolutions
    assert check(aten.convolution.default,
                 (fake(1, 3, 224, 224), fake(64, 3, 7, 7), None, [2, 2], [3, 3], [1, 1], False, [0, 0], 1))
    assert check(aten.convolution.default,
                 (fake(1, 32, 56, 56), fake(32, 1, 3, 3), None, [1, 1], [1, 1], [1, 1], False, [0, 0], 32))
    assert answered > total // 3


def test_batch_norm_and_pooling_match_the_fake_kernel() -> None:
    cases: list[Call] = []
    for shape, dtype, training in itertools.product(IMAGES + [(4, 6), (2, 3, 5)], DTYPES, (False, True)):
        channels = shape[1]
        stats = [fake(channels, dtype=dtype) for _ in range(4)]
        cases.append((aten.native_batch_norm.default, (fake(*shape, dtype=dtype), *stats, training, 0.1, 1e-5), {}))
        cases.append((aten.native_batch_norm.default, (fake(*shape, dtype=dtype), None, None, None, None, training, 0.1,
                                                       1e-5), {}))
    for shape, (kernel, stride, pad, dilation, ceil) in itertools.product(
        IMAGES + [(1, 64, 112, 112)], [(3, 2, 1, 1, False), (2, 2, 0, 1, True), (3, 1, 1, 2, False), (3, 2, 0, 1, True)]
    ):
        cases.append((aten.max_pool2d_with_indices.default,
                      (fake(*shape), [kernel] * 2, [stride] * 2, [pad] * 2, [dilation] * 2, ceil), {}))
    cases.append((aten.max_pool2d_with_indices.default, (fake(1, 4, 9, 9), [3, 3], [], [0, 0], [1, 1], False), {}))
    for omitted in range(5):  # trailing arguments left at their defaults
        full = (fake(1, 4, 9, 9), [3, 3], [2, 2], [1, 1], [1, 1], False)
        cases.append((aten.max_pool2d_with_indices.default, full[: 6 - omitted], {}))
    cases.append((aten.max_pool2d_with_indices.default, (fake(1, 4, 9, 9), [3], [2], [1]), {}))
    cases.append((aten.convolution.default, (odd_strided(), fake(4, 8, 1, 1), None, [1, 1], [0, 0], [1, 1], False,
                                             [0, 0], 1), {}))
    answered, total = run_cases(iter(cases))
    assert check(aten.native_batch_norm.default, (fake(1, 64, 56, 56), *[fake(64) for _ in range(4)], False, 0.1, 1e-5))
    assert check(aten.max_pool2d_with_indices.default,
                 (fake(1, 64, 112, 112), [3, 3], [2, 2], [1, 1], [1, 1], False))
    assert check(aten.max_pool2d_with_indices.default, (fake(1, 64, 112, 112), [3, 3], [2, 2], [1, 1]))
    assert answered > total // 3


SHAPES = [(2, 3), (1, 8, 4, 4), (2, 8, 5, 5), (3,), (1, 1), (4, 1, 3), ()]


def odd_strided() -> torch.Tensor:
    """The second half of a (1, 16, 4, 4) tensor's channels: strides (256, 16, 4, 1)."""
    return fake(1, 16, 4, 4)[:, 8:]


def elementwise_cases() -> Iterator[Call]:
    unary = [f for f, rule in RULES.items() if rule.__name__ in ("_unary", "_unary_inplace", "_gelu", "_clone")]
    for func, shape, dtype in itertools.product(unary, SHAPES, DTYPES):
        yield func, (fake(*shape, dtype=dtype),), {}
    for shape, dtype in itertools.product(SHAPES, DTYPES):
        yield aten.gelu.default, (fake(*shape, dtype=dtype),), {"approximate": "tanh"}
        yield aten.hardtanh_.default, (fake(*shape, dtype=dtype), 0.0, 6.0), {}
        yield aten.clone.default, (fake(*shape, dtype=dtype),), {"memory_format": torch.contiguous_format}
    binary = [f for f, rule in RULES.items() if rule.__name__ in ("_binary", "_binary_inplace")]
    others: list[Callable[[tuple[int, ...], torch.dtype], Any]] = [
        lambda s, d: fake(*s, dtype=d),
        lambda s, d: fake(*s[1:], dtype=d),
        lambda s, d: fake(*(s[:2] + (1,) * (len(s) - 2)), dtype=d),
        lambda s, d: fake(*((1,) * len(s)), dtype=d),
        lambda s, d: fake(dtype=d),
        lambda s, d: 2,
        lambda s, d: 0.5,
        lambda s, d: fake(*s, dtype=torch.float64),
        lambda s, d: fake(*(s + (2,)), dtype=d),
    ]
    for func, shape, dtype, other in itertools.product(binary, SHAPES, DTYPES, others):
        yield func, (fake(*shape, dtype=dtype), other(shape, dtype)), {}
        yield func, (other(shape, dtype), fake(*shape, dtype=dtype)), {}  # the broadcast operand first
    for func in unary + binary:  # a chunk of a batch of one: contiguous, but odd size-1 strides
        yield func, (odd_strided(),) if func in unary else (odd_strided(), odd_strided()), {}
    yield aten.clone.default, (fake(2, 3, 4).transpose(0, 2),), {"memory_format": torch.contiguous_format}
    yield aten.clone.default, (fake(2, 3, 4).transpose(0, 2),), {}
    yield aten.add.Tensor, (fake(2, 3), fake(2, 3)), {"alpha": 2}
    # the broadcast operand first: its layout does not decide, the rule stays out
    yield aten.mul.Tensor, (fake(1, 8, 1, 1), fake(1, 8, 4, 4)), {}


def test_elementwise_operators_match_the_fake_kernel() -> None:
    answered, total = run_cases(elementwise_cases())
    assert check(aten.add.Tensor, (fake(1, 256, 56, 56), fake(1, 256, 56, 56)))
    assert check(aten.relu_.default, (fake(1, 64, 112, 112),))
    assert check(aten.mul.Tensor, (fake(1, 72, 1, 1), fake(1, 72, 28, 28)))
    assert check(aten.clone.default, (fake(1, 58, 2, 28, 28).transpose(1, 2),), {"memory_format": torch.contiguous_format})
    assert answered > total // 3


def test_reductions_products_and_views_match_the_fake_kernel() -> None:
    cases: list[Call] = []
    for shape, dims, keepdim in itertools.product(SHAPES[:-1], ([-1], [-1, -2], [0], [1, 1]), (False, True)):
        cases.append((aten.mean.dim, (fake(*shape), dims, keepdim), {}))
    for (m, k, n), bias_shape, transposed in itertools.product(
        [(2, 3, 4), (1, 8, 1), (5, 1, 5), (3, 4, 4)], [(4,), (1, 4), (2, 4), (1,), (3, 4)], (False, True)
    ):
        second = fake(n, k).t() if transposed else fake(k, n)
        cases.append((aten.addmm.default, (fake(*bias_shape), fake(m, k), second), {}))
        cases.append((aten.mm.default, (fake(m, k), second), {}))
        cases.append((aten.bmm.default, (fake(2, m, k), fake(2, k, n)), {}))
        cases.append((aten.addmm.default, (fake(*bias_shape), fake(m, k), second), {"beta": 0.5, "alpha": 2}))
    for shape, size in itertools.product(SHAPES, ([-1], [2, -1], [6], [3, 2], [1, -1], [4, 4, 2], [-1, 1])):
        cases.append((aten.view.default, (fake(*shape), size), {}))
        cases.append((aten._unsafe_view.default, (fake(*shape), size), {}))
    for shape in [(2, 3), (1, 4), (4, 1), (3,)]:
        cases.append((aten.t.default, (fake(*shape),), {}))
        cases.append((aten.t.default, (fake(*shape).t() if len(shape) == 2 else fake(*shape),), {}))
    for shapes, dim in [
        ([(1, 8, 4, 4), (1, 16, 4, 4)], 1), ([(2, 3), (2, 5), (2, 1)], 1), ([(2, 3), (4, 3)], 0), ([(2, 3), (4, 3)], -2),
        ([(1, 8, 1, 1), (1, 4, 1, 1)], 1), ([(2, 3), (2, 4)], 0), ([(2, 3), (3,)], 0), ([(2, 3), (0,)], 0),
        ([(1, 2, 3)], 2), ([(3, 1), (3, 1)], 1), ([(2, 2), (2, 2)], 2),
    ]:
        cases.append((aten.cat.default, ([fake(*shape) for shape in shapes], dim), {}))
    cases.append((aten.cat.default, ([fake(2, 3), fake(2, 3, dtype=torch.float64)], 0), {}))
    cases.append((aten.cat.default, ([fake(2, 3), fake(3, 2).t()], 0), {}))
    for shape, normalized, dtype, affine in itertools.product(
        [(2, 5, 8), (1, 197, 768), (4, 8), (8,), (1, 1, 8), (2, 3, 4, 4)], [[8], [4, 8], [4, 4], [768]], DTYPES, (True, False)
    ):
        extra = [fake(*normalized, dtype=dtype) if affine else None for _ in range(2)]
        cases.append((aten.native_layer_norm.default, (fake(*shape, dtype=dtype), normalized, *extra, 1e-5), {}))
    for shape, dim, dtype in itertools.product([(2, 5, 8), (1, 12, 197, 197), (3,), (), (4, 1)], [-1, 0, 1, 3], DTYPES):
        cases.append((aten._softmax.default, (fake(*shape, dtype=dtype), dim, False), {}))
    cases.append((aten._softmax.default, (fake(2, 3, dtype=torch.float16), 1, True), {}))
    answered, total = run_cases(iter(cases))
    assert check(aten.native_layer_norm.default, (fake(1, 197, 768), [768], fake(768), fake(768), 1e-6))
    assert check(aten._softmax.default, (fake(1, 12, 197, 197), -1, False))
    assert check(aten.cat.default, ([fake(1, 64, 56, 56), fake(1, 32, 56, 56), fake(1, 32, 56, 56)], 1))
    assert check(aten.mean.dim, (fake(1, 1280, 7, 7), [-1, -2], True))
    assert check(aten.addmm.default, (fake(1000), fake(1, 2048), fake(1000, 2048).t()))
    assert check(aten.view.default, (fake(1, 2048, 1, 1), [1, 2048])) or True  # size-1 dims: left to the kernel
    assert check(aten.view.default, (fake(2, 2048, 7, 7), [2, 2048, 49]))
    assert answered > total // 3


@pytest.mark.parametrize("func", sorted(RULES, key=str))
def test_every_rule_declines_what_it_does_not_know(func: Any) -> None:
    """Unknown keyword arguments, tensors of other kinds (integer, complex) or on other
    devices than the CPU (their fake kernels choose layouts of their own), nothing at all."""
    assert closed_form(func, (), {}) is None
    with FakeTensorMode():
        on_gpu = torch.empty(2, 8, 4, 4, device="cuda")
    assert on_gpu.device.type == "cuda"
    assert closed_form(func, (on_gpu,), {}) is None
    assert closed_form(func, (on_gpu, on_gpu), {}) is None
    assert closed_form(func, ([on_gpu, on_gpu], 1), {}) is None
    assert closed_form(func, (fake(2, 3, dtype=torch.int64),) * 2, {}) is None
    assert closed_form(func, (fake(2, 3),), {"unknown": 1}) is None
