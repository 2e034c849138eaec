"""Generation under a tensor-parallel layout: one rank's cache, compute and collectives."""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist

import torchtally as tt

transformers = pytest.importorskip("transformers")


def test_tensor_parallel_rank_holds_half_the_cache_and_does_half_the_work() -> None:
    config = transformers.LlamaConfig(
        hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        vocab_size=128, tie_word_embeddings=False,
    )
    with torch.device("meta"):
        model = transformers.LlamaForCausalLM(config)
    whole = tt.analyze_generation(model, 6, 3)
    rank = tt.analyze_generation(model, 6, 3, parallel=tt.Parallel(tp=2))
    # One device: keys and values x 2 layers x 2 kv heads x 16 x 4 bytes = 512 B per token.
    # Tensor parallel x2 splits the heads (q/k/v colwise, o rowwise): each rank keeps 1 kv head.
    assert whole.kv_cache_bytes_per_token == 2 * 2 * 2 * 16 * 4 == 512
    assert rank.kv_cache_bytes_per_token == 512 // 2
    assert rank.kv_cache_bytes == 256 * (6 + 3)
    # Every matrix product of the plan (projections, MLP, attention over half the heads, the
    # LM head split by columns) does half the work on each rank.
    for mine, all_of_it in zip(rank.decode_steps, whole.decode_steps):
        assert 2 * mine.macs == all_of_it.macs
    assert 2 * rank.prefill.total_macs == whole.prefill.total_macs
    assert rank.prefill.parallel is not None and rank.prefill.parallel.communication  # the row-wise layers all-reduce
    assert not dist.is_initialized()  # the simulated cluster is closed
