"""Attention kernels: every scaled-dot-product-attention backend and the fused
multi-head-attention / encoder-layer fast paths of ``torch.nn``.

For queries of length L, keys of length S, a head size E (values: Ev) and a batch of
B x H query heads, attention is two matrix products over the attended (query, key) pairs:
``Q K^T`` costs pairs x E MACs and ``softmax(.) V`` costs pairs x Ev MACs.

Causal convention. A fused kernel called with ``is_causal=True`` only computes the pairs
the mask keeps: query i sees keys 0..i (PyTorch's top-left alignment), so
pairs = sum over i of min(i + 1, S) (L(L+1)/2 when L == S). Real kernels work in tiles and
also compute the masked part of the tiles on the diagonal, so they execute a little more
than this (at most one tile per query row). Where the causal mask is an explicit tensor
(``attn_mask=``) or the math backend runs, the full L x S products execute and are counted
through the matmul operators themselves.
FLOPs are 2 x MACs (the softmax inside a fused kernel is not added)."""

from __future__ import annotations

from typing import Any

import torch

from .registry import Cost, default_overloads, formula


def attended_pairs(queries: int, keys: int, causal: bool, offset: int = 0) -> int:
    """Number of (query, key) pairs a kernel computes per head.

    With ``causal``, query i attends keys j <= i + offset (offset 0: top-left alignment,
    offset S - L: bottom-right alignment).
    """
    if not causal:
        return queries * keys
    # sum over i in [0, L) of clamp(i + offset + 1, 0, S), in closed form.
    low, high = offset + 1, offset + queries  # values of i + offset + 1 at both ends
    total = 0
    ramp_low, ramp_high = max(low, 1), min(high, keys - 1)
    if ramp_low <= ramp_high:  # the part where 0 < value < S
        total += (ramp_low + ramp_high) * (ramp_high - ramp_low + 1) // 2
    full_from = max(low, keys)
    if full_from <= high:  # the part where the whole key range is visible
        total += keys * (high - full_from + 1)
    return total


def attention_cost(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    causal: bool,
    heads_dim_first: bool = True,
    offset: int = 0,
) -> Cost:
    """Cost of attention with q: (..., L, E) (or (B, L, H, E) when not ``heads_dim_first``)."""
    if heads_dim_first:
        length, head_dim = query.shape[-2], query.shape[-1]
        key_length = key.shape[-2]
        heads = query.numel() // (length * head_dim) if length * head_dim else 0
    else:  # (B, L, H, E) layout of the low-level flash / efficient kernels
        length, head_dim = query.shape[1], query.shape[-1]
        key_length = key.shape[1]
        heads = query.shape[0] * query.shape[2]
    value_dim = value.shape[-1]
    pairs = attended_pairs(length, key_length, causal, offset)
    macs = heads * pairs * (head_dim + value_dim)
    return Cost(macs=macs, flops=2 * macs)


@formula(*default_overloads("_scaled_dot_product_flash_attention_for_cpu"))
def sdpa_flash_cpu(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    *args: Any,
    out: Any,
    **kwargs: Any,
) -> Cost:
    return attention_cost(query, key, value, bool(is_causal))


@formula(*default_overloads("_scaled_dot_product_flash_attention"))
def sdpa_flash(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    *args: Any,
    out: Any,
    **kwargs: Any,
) -> Cost:
    return attention_cost(query, key, value, bool(is_causal))


@formula(*default_overloads("_scaled_dot_product_efficient_attention"))
def sdpa_efficient(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attn_bias: Any = None,
    compute_log_sumexp: bool = False,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    *args: Any,
    out: Any,
    **kwargs: Any,
) -> Cost:
    return attention_cost(query, key, value, bool(is_causal))


@formula(*default_overloads("_scaled_dot_product_cudnn_attention"))
def sdpa_cudnn(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attn_bias: Any = None,
    compute_log_sumexp: bool = False,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    *args: Any,
    out: Any,
    **kwargs: Any,
) -> Cost:
    return attention_cost(query, key, value, bool(is_causal))


@formula(*default_overloads("_scaled_dot_product_fused_attention_overrideable"))
def sdpa_overrideable(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attn_bias: Any = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    *args: Any,
    out: Any,
    **kwargs: Any,
) -> Cost:
    return attention_cost(query, key, value, bool(is_causal))


@formula(*default_overloads("_scaled_dot_product_attention_math_for_mps"))
def sdpa_math_mps(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, *args: Any, out: Any, **kwargs: Any) -> Cost:
    """The MPS math kernel materialises the whole score matrix, masked or not."""
    return attention_cost(query, key, value, causal=False)


@formula(*default_overloads("_flash_attention_forward"))
def flash_attention_forward(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    cum_seq_q: Any,
    cum_seq_k: Any,
    max_q: int,
    max_k: int,
    dropout_p: float,
    is_causal: bool,
    *args: Any,
    out: Any,
    window_size_left: Any = None,
    window_size_right: Any = None,
    **kwargs: Any,
) -> Cost | None:
    if cum_seq_q is not None or window_size_left not in (None, -1) or window_size_right not in (None, -1):
        return None  # variable-length batches and sliding windows: not countable from shapes
    length, key_length = query.shape[1], key.shape[1]
    # FlashAttention aligns the causal mask to the bottom-right corner.
    return attention_cost(query, key, value, bool(is_causal), heads_dim_first=False, offset=key_length - length)


@formula(*default_overloads("_efficient_attention_forward"))
def efficient_attention_forward(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    bias: Any,
    cu_seqlens_q: Any,
    cu_seqlens_k: Any,
    max_seqlen_q: Any,
    max_seqlen_k: Any,
    dropout_p: float,
    custom_mask_type: int,
    *args: Any,
    out: Any,
    window_size: Any = None,
    **kwargs: Any,
) -> Cost | None:
    if cu_seqlens_q is not None or window_size not in (None, -1, 0):
        return None
    length, key_length = query.shape[1], key.shape[1]
    # custom_mask_type: 0 no mask, 1 causal from the top-left, 2 causal from the bottom-right.
    offset = key_length - length if custom_mask_type == 2 else 0
    return attention_cost(query, key, value, custom_mask_type in (1, 2), heads_dim_first=False, offset=offset)


def _projection_macs(tokens: int, weight: torch.Tensor) -> int:
    return tokens * weight.shape[0] * weight.shape[1]


def _sequence_lengths(tensor: torch.Tensor) -> list[int] | None:
    """Length of every sequence of a (batch, length, features) input; a nested tensor (what
    ``nn.TransformerEncoder`` makes of a padded batch) has one length per sequence. None
    when a fake nested tensor does not carry its lengths."""
    if tensor.is_nested:
        try:
            return [int(size) for size in tensor._nested_tensor_size()[:, 0].tolist()]
        except (RuntimeError, NotImplementedError):
            return None
    batch = tensor.shape[0] if tensor.dim() == 3 else 1
    return [tensor.shape[-2]] * batch


def _mha_macs(query: torch.Tensor, key: torch.Tensor, embed_dim: int) -> int | None:
    """In-projections, both attention products and the out-projection of ``nn.MultiheadAttention``:
    per sequence, (L + 2S) E^2 + 2 L S E (summed over heads) + L E^2."""
    queries, keys = _sequence_lengths(query), _sequence_lengths(key)
    if queries is None or keys is None:
        return None
    return sum(
        (length + 2 * key_length) * embed_dim * embed_dim + 2 * length * key_length * embed_dim + length * embed_dim * embed_dim
        for length, key_length in zip(queries, keys)
    )


@formula(*default_overloads("_native_multi_head_attention"))
def native_multi_head_attention(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, embed_dim: int, *args: Any, out: Any, **kwargs: Any
) -> Cost | None:
    """The inference fast path of ``nn.MultiheadAttention`` (any mask is applied densely)."""
    macs = _mha_macs(query, key, embed_dim)
    return None if macs is None else Cost(macs=macs, flops=2 * macs)


@formula(*default_overloads("_transformer_encoder_layer_fwd"))
def transformer_encoder_layer(
    src: torch.Tensor,
    embed_dim: int,
    num_heads: int,
    qkv_weight: torch.Tensor,
    qkv_bias: Any,
    proj_weight: torch.Tensor,
    proj_bias: Any,
    use_gelu: bool,
    norm_first: bool,
    eps: float,
    norm_weight_1: Any,
    norm_bias_1: Any,
    norm_weight_2: Any,
    norm_bias_2: Any,
    ffn_weight_1: torch.Tensor,
    ffn_bias_1: Any,
    ffn_weight_2: torch.Tensor,
    *args: Any,
    out: Any,
    **kwargs: Any,
) -> Cost | None:
    """The inference fast path of ``nn.TransformerEncoderLayer``: attention block + feed-forward.

    Vector work (counted as in the rest of the table): two layer norms at 8 FLOPs per
    element, the activation at 1 per hidden element, two residual additions.
    """
    lengths = _sequence_lengths(src)
    attention = _mha_macs(src, src, embed_dim)
    if lengths is None or attention is None:
        return None
    tokens = sum(lengths)
    macs = attention + _projection_macs(tokens, ffn_weight_1) + _projection_macs(tokens, ffn_weight_2)
    hidden = ffn_weight_1.shape[0]
    vector = tokens * (2 * 8 * embed_dim + hidden + 2 * embed_dim)
    return Cost(macs=macs, flops=2 * macs + vector)
