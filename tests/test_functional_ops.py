"""MACs of functional code inside forward (no nn.Linear / nn.Conv submodules): `x @ w` on a
bare nn.Parameter, torch.bmm, torch.einsum, F.linear, F.conv2d and
F.scaled_dot_product_attention (plain, causal, boolean mask, grouped-query).

Expected values are hand formulas written in the tests, or PyTorch's own
`torch.utils.flop_counter.FlopCounterMode` (which reports 2 FLOPs per multiply-accumulate)
run on the same module with real small tensors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import torchtally as tt
from helpers import Fn, flop_counter_macs
from torchtally.formulas.attention import attended_pairs


def randn(*shapes: tuple[int, ...]) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(0)
    return tuple(torch.randn(shape, generator=generator) for shape in shapes)


class BareParameterMatmul(nn.Module):
    """x @ w with w a bare nn.Parameter attribute (not a .weight of a submodule)."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(8, 6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.w


class FunctionalLinear(nn.Module):
    def __init__(self, bias: bool) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(5, 8))
        self.bias = nn.Parameter(torch.randn(5)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias)


class FunctionalConv(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(4, 3, 3, 3))
        self.bias = nn.Parameter(torch.randn(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight, self.bias, stride=2, padding=1)


# (model, input shapes, MACs by hand)
MATMUL_LIKE = [
    # (2,5,8) @ (8,6): 2*5 rows x 6 columns, each a dot product of length 8
    pytest.param(BareParameterMatmul, [(2, 5, 8)], 2 * 5 * 6 * 8, id="x@w-bare-parameter"),
    # (3,4,5) bmm (3,5,6): 3 batches x 4*6 outputs x 5
    pytest.param(lambda: Fn(torch.bmm), [(3, 4, 5), (3, 5, 6)], 3 * 4 * 6 * 5, id="bmm"),
    # batched matmul with broadcasting: (2,1,4,5) @ (3,5,6) -> (2,3,4,6), each x 5
    pytest.param(lambda: Fn(torch.matmul), [(2, 1, 4, 5), (3, 5, 6)], 2 * 3 * 4 * 6 * 5, id="matmul-broadcast"),
    # scores of attention: (b,h,l,d),(b,h,s,d) -> (b,h,l,s), contracted over d = 8
    pytest.param(
        lambda: Fn(lambda q, k: torch.einsum("bhld,bhsd->bhls", q, k)),
        [(2, 3, 4, 8), (2, 3, 5, 8)],
        2 * 3 * 4 * 5 * 8,
        id="einsum",
    ),
    # (2,3,8) -> (2,3,5): 6 rows x 5 outputs x 8; the bias is not a MAC
    pytest.param(lambda: FunctionalLinear(bias=True), [(2, 3, 8)], 6 * 5 * 8, id="F.linear"),
    pytest.param(lambda: FunctionalLinear(bias=False), [(2, 3, 8)], 6 * 5 * 8, id="F.linear-no-bias"),
    # (1,3,9,9), k3 s2 p1 -> H_out = (9 + 2 - 3)//2 + 1 = 5: out 4*5*5 = 100, each x 3*3*3 = 27
    pytest.param(FunctionalConv, [(1, 3, 9, 9)], 100 * 27, id="F.conv2d"),
]


@pytest.mark.parametrize("make,shapes,macs", MATMUL_LIKE)
def test_functional_matmul_and_conv(make: Callable[[], nn.Module], shapes: list[tuple[int, ...]], macs: int) -> None:
    model = make()
    inputs = randn(*shapes)
    report = tt.analyze(model, input_data=inputs)
    assert report.total_macs == macs
    assert report.total_flops == 2 * macs
    assert report.uncounted_ops == {}
    # and PyTorch's own counter agrees on the same module and inputs
    assert flop_counter_macs(model, *inputs) == macs


class AllFunctional(nn.Module):
    """Only functional ops in forward, all of them covered by FlopCounterMode."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(8, 6))
        self.lin_w = nn.Parameter(torch.randn(5, 6))
        self.lin_b = nn.Parameter(torch.randn(5))
        self.conv_w = nn.Parameter(torch.randn(4, 3, 3, 3))

    def forward(self, x: torch.Tensor, a: torch.Tensor, b: torch.Tensor, img: torch.Tensor) -> Any:
        h = x @ self.w  # (2,5,8) @ (8,6) -> (2,5,6): 10 * 6 * 8 = 480
        h = F.linear(h, self.lin_w, self.lin_b)  # -> (2,5,5): 10 * 5 * 6 = 300
        s = torch.bmm(a, b)  # (3,4,5) bmm (3,5,6): 3 * 4*6 * 5 = 360
        e = torch.einsum("bld,bsd->bls", h, h)  # (2,5,5): 2 * 5*5 * 5 = 250
        c = F.conv2d(img, self.conv_w, padding=1)  # (1,4,6,6): 144 * 3*3*3 = 3888
        return s, e, c


def test_all_functional_matches_flop_counter_mode() -> None:
    model = AllFunctional()
    inputs = randn((2, 5, 8), (3, 4, 5), (3, 5, 6), (1, 3, 6, 6))
    report = tt.analyze(model, input_data=inputs)
    assert report.total_macs == flop_counter_macs(model, *inputs)
    assert report.total_macs == 480 + 300 + 360 + 250 + 3888
    assert report.uncounted_ops == {}
    # every parameter was read through a functional op, none is reported unused
    assert report.unused_params == 0


# --------------------------------------------------------------------------------------
# Attention. For B*H query heads, L queries, S keys, head size E and value size Ev:
# Q K^T costs pairs x E MACs and softmax(.) V pairs x Ev, so MACs = B*H*pairs*(E + Ev).
# Non-causal, or with an explicit mask (applied densely): pairs = L * S.
# Causal in a fused kernel (the default on CPU when E == Ev): only the kept pairs; query i
# sees keys 0..i (top-left alignment), so pairs = sum_{i<L} min(i+1, S).
#
# FlopCounterMode has no formula for the CPU kernel
# aten._scaled_dot_product_flash_attention_for_cpu (it only covers the CUDA flash /
# efficient / cuDNN kernels) and reports 0 for it, so fused attention is checked against
# the formula below instead.
# --------------------------------------------------------------------------------------

FUSED_CPU = "aten._scaled_dot_product_flash_attention_for_cpu"


def attention_macs(query_heads: int, queries: int, keys: int, head: int, value: int, causal: bool) -> int:
    pairs = sum(min(i + 1, keys) for i in range(queries)) if causal else queries * keys
    return query_heads * pairs * (head + value)


class Attention(nn.Module):
    def __init__(self, **options: Any) -> None:
        super().__init__()
        self.options = options

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, **self.options)


# (B, H query heads, H_kv key/value heads, L, S, E, causal)
FUSED = [
    pytest.param(2, 4, 4, 8, 8, 16, False, id="square"),  # 8 heads x 64 pairs x 32 = 16,384
    pytest.param(2, 4, 4, 8, 10, 16, False, id="more-keys"),  # 8 x 80 x 32 = 20,480
    pytest.param(2, 4, 4, 8, 8, 16, True, id="causal-square"),  # pairs 8*9/2 = 36 -> 9,216
    pytest.param(2, 4, 4, 8, 10, 16, True, id="causal-more-keys"),  # 1+..+8 = 36 (never capped by S=10)
    pytest.param(2, 4, 4, 10, 6, 16, True, id="causal-more-queries"),  # 1+..+6 + 4*6 = 45 -> 11,520
    pytest.param(1, 6, 6, 1, 7, 8, True, id="causal-one-query"),  # query 0 sees key 0 only: 1 pair
    pytest.param(2, 8, 2, 8, 10, 16, False, id="gqa"),  # 16 query heads x 80 x 32 (K/V shared by 4)
    pytest.param(2, 8, 2, 10, 10, 16, True, id="gqa-causal"),  # 16 x 55 x 32 = 28,160
]


@pytest.mark.parametrize("batch,heads,kv_heads,queries,keys,head,causal", FUSED)
def test_fused_attention(batch: int, heads: int, kv_heads: int, queries: int, keys: int, head: int, causal: bool) -> None:
    options: dict[str, Any] = {"is_causal": causal}
    if kv_heads != heads:
        options["enable_gqa"] = True
    inputs = randn((batch, heads, queries, head), (batch, kv_heads, keys, head), (batch, kv_heads, keys, head))
    report = tt.analyze(Attention(**options), input_data=inputs)
    assert FUSED_CPU in report.operators  # the fused kernel ran, not the decomposed math path
    macs = attention_macs(batch * heads, queries, keys, head, head, causal)
    assert report.total_macs == macs
    assert report.total_flops == 2 * macs  # the softmax inside a fused kernel is not added
    assert report.uncounted_ops == {}


def test_fused_attention_without_head_dimension() -> None:
    # (B, L, E) inputs: B = 3 "heads"; causal L=10, S=6: pairs 1+..+6 + 4*6 = 45
    inputs = randn((3, 10, 16), (3, 6, 16), (3, 6, 16))
    report = tt.analyze(Attention(is_causal=True), input_data=inputs)
    assert report.total_macs == 3 * 45 * (16 + 16)


def test_explicit_boolean_mask_counts_every_pair() -> None:
    # The same lower-triangular pattern as is_causal, but given as a tensor: the kernel applies
    # it densely, so all L*S = 80 pairs execute.
    q, k, v = randn((2, 4, 8, 16), (2, 4, 10, 16), (2, 4, 10, 16))
    mask = torch.ones(8, 10, dtype=torch.bool).tril()
    report = tt.analyze(Attention(), input_data=(q, k, v, mask))
    assert report.total_macs == attention_macs(2 * 4, 8, 10, 16, 16, causal=False)  # 8 * 80 * 32
    assert report.uncounted_ops == {}


@pytest.mark.parametrize("causal", [False, True])
def test_math_backend_attention_matches_flop_counter(causal: bool) -> None:
    # A value size different from the head size (E=16, Ev=12) makes CPU SDPA take the math
    # path: explicit bmm's over the full L x S score matrix, causal or not (the causal mask is
    # applied to the full matrix). FlopCounterMode counts bmm, so both counts must agree,
    # and equal the dense formula 2*4 heads x 8*10 pairs x (16 + 12) = 17,920.
    model = Attention(is_causal=causal)
    inputs = randn((2, 4, 8, 16), (2, 4, 10, 16), (2, 4, 10, 12))
    report = tt.analyze(model, input_data=inputs)
    assert FUSED_CPU not in report.operators
    assert report.total_macs == flop_counter_macs(model, *inputs)
    assert report.total_macs == attention_macs(2 * 4, 8, 10, 16, 12, causal=False)


@settings(max_examples=300, deadline=None)
@given(
    queries=st.integers(min_value=0, max_value=40),
    keys=st.integers(min_value=0, max_value=40),
    offset=st.integers(min_value=-50, max_value=50),
)
def test_attended_pairs_matches_brute_force_mask(queries: int, keys: int, offset: int) -> None:
    # Query i attends key j iff j <= i + offset: exactly the ones kept by tril(diagonal=offset).
    mask = torch.ones(queries, keys).tril(diagonal=offset)
    assert attended_pairs(queries, keys, True, offset) == int(mask.sum().item())
    assert attended_pairs(queries, keys, False, offset) == queries * keys


@pytest.mark.parametrize("queries,keys", [(1, 1), (8, 8), (7, 12), (12, 7), (64, 64), (128, 256)])
def test_attended_pairs_default_offset_is_top_left_causal(queries: int, keys: int) -> None:
    expected = sum(min(i + 1, keys) for i in range(queries))
    assert attended_pairs(queries, keys, True) == expected
    if queries == keys:
        assert expected == queries * (queries + 1) // 2
