"""Hand formulas for LLM generation (prefill and decode), derived from a model's config.

Nothing here calls torchtally: these are the figures tests/test_generation.py expects,
written out from the published architectures (Hugging Face's Llama, Mistral and GPT-2
code as of transformers 5) and the conventions of DESIGN.md:

* a MAC is one multiply-accumulate of the matmul class; bias additions are not MACs;
* attention is charged per query head: Q K^T and A V are each ``heads x queries x keys x
  head_dim`` MACs; a causal fused kernel (no mask, ``is_causal=True``) is charged the
  ``L (L + 1) / 2`` pairs it computes, a masked one every (query, key) pair;
* a decode step feeds one token per sequence, so every projection, the MLP and the LM head
  see ``batch`` tokens, and attention sees one query against every key the cache returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


def causal_pairs(length: int) -> int:
    """(query, key) pairs a causal kernel computes: query i sees keys 0..i."""
    return length * (length + 1) // 2


@dataclass(frozen=True)
class Decoder:
    """The shape of a decoder-only LM, as its config gives it."""

    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    # per-token MACs of one layer's projections and MLP (q, k, v, o, and the MLP's matrices)
    layer_projection_macs: int

    def kv_bytes_per_token(self, dtype_bytes: int) -> int:
        """One more cached token, per sequence: a key and a value vector per KV head, per layer."""
        return 2 * self.layers * self.kv_heads * self.head_dim * dtype_bytes

    def head_macs(self, tokens: int) -> int:
        """The LM head: hidden x vocab per token it is applied to."""
        return tokens * self.hidden * self.vocab

    def attention_macs(self, batch: int, queries: int, keys: int) -> int:
        """Every query head, every (query, key) pair given: Q K^T (head_dim) then A V (head_dim)."""
        return batch * self.heads * queries * keys * 2 * self.head_dim

    def decode_macs(self, batch: int, keys: int) -> int:
        """One decode step: one token per sequence through every layer's projections and MLP,
        one query against ``keys`` cached keys per head per layer, and the LM head on that token."""
        per_layer = batch * self.layer_projection_macs + self.attention_macs(batch, 1, keys)
        return self.layers * per_layer + self.head_macs(batch)

    def prefill_macs(self, batch: int, prompt: int, kept_logits: int) -> int:
        """The prompt pass, causal with no mask (HF passes ``is_causal=True`` and no mask when
        nothing is padded): every token through the projections, ``L(L+1)/2`` pairs per head,
        and the LM head on the ``kept_logits`` last tokens of each sequence."""
        attention = batch * self.heads * causal_pairs(prompt) * 2 * self.head_dim
        per_layer = batch * prompt * self.layer_projection_macs + attention
        return self.layers * per_layer + self.head_macs(batch * kept_logits)


def llama(config: Any) -> Decoder:
    """LlamaForCausalLM / MistralForCausalLM / MixtralForCausalLM attention with a dense
    SwiGLU MLP (gate, up, down: 3 x hidden x intermediate). No biases."""
    d = int(config.hidden_size)
    heads = int(config.num_attention_heads)
    kv_heads = int(config.num_key_value_heads)
    head_dim = int(getattr(config, "head_dim", None) or d // heads)
    inter = int(config.intermediate_size)
    projections = (
        d * heads * head_dim  # q_proj
        + 2 * d * kv_heads * head_dim  # k_proj, v_proj: only the key/value heads
        + heads * head_dim * d  # o_proj
        + 3 * d * inter  # gate_proj, up_proj, down_proj
    )
    return Decoder(int(config.num_hidden_layers), d, heads, kv_heads, head_dim,
                   int(config.vocab_size), projections)


def llama_params(config: Any) -> int:
    """LlamaForCausalLM parameters: embeddings, per layer q/k/v/o + MLP + 2 RMSNorm weights,
    the final norm, and the LM head (untied, or counted once when tied)."""
    d = int(config.hidden_size)
    heads = int(config.num_attention_heads)
    kv = int(config.num_key_value_heads) * (int(getattr(config, "head_dim", None) or d // heads))
    inter, vocab = int(config.intermediate_size), int(config.vocab_size)
    per_layer = 2 * d * d + 2 * d * kv + 3 * d * inter + 2 * d
    head = 0 if config.tie_word_embeddings else d * vocab
    return vocab * d + int(config.num_hidden_layers) * per_layer + d + head


def gpt2(config: Any) -> Decoder:
    """GPT2LMHeadModel: Conv1D c_attn (d -> 3d), attn c_proj (d -> d), mlp c_fc (d -> 4d) and
    c_proj (4d -> d): 12 d^2 MACs per token per layer (their biases are not MACs); the LM head
    is tied to wte (d x vocab per token); position embeddings are a lookup (no MACs)."""
    d, heads = int(config.n_embd), int(config.n_head)
    return Decoder(int(config.n_layer), d, heads, heads, d // heads, int(config.vocab_size),
                   d * 3 * d + d * d + d * 4 * d + 4 * d * d)
