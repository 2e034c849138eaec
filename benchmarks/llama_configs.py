"""Llama-2 shapes the LLM-scale benchmarks build on the meta device (config.json of
meta-llama/Llama-2-{7,70}b-hf)."""

from __future__ import annotations

from typing import Any

LLAMA: dict[str, dict[str, Any]] = {
    "llama-2-7b": dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
                       num_key_value_heads=32, vocab_size=32000, max_position_embeddings=4096),
    "llama-2-70b": dict(hidden_size=8192, intermediate_size=28672, num_hidden_layers=80, num_attention_heads=64,
                        num_key_value_heads=8, vocab_size=32000, max_position_embeddings=4096),
}  # fmt: skip
