"""Generation analysis at its edges: what a demanding user tried (inference mode, layouts,
caches that do not grow per token, limits fake tensors cannot see, arguments that make no
sense per forward), each derived by hand or checked against PyTorch's own count."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import torchtally as tt
from torchtally.generation import _largest_batch

transformers = pytest.importorskip("transformers")

SMALL = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
             vocab_size=128)  # fmt: skip


def llama() -> nn.Module:
    return transformers.LlamaForCausalLM(transformers.LlamaConfig(**SMALL)).eval()


def test_inference_mode_still_counts_attention() -> None:
    model = llama()
    outside = tt.analyze_generation(model, 8, 3)
    with torch.inference_mode():
        inside = tt.analyze_generation(model, 8, 3)
    assert [s.macs for s in inside.decode_steps] == [s.macs for s in outside.decode_steps]
    assert inside.prefill.total_macs == outside.prefill.total_macs and not inside.prefill.uncounted_ops
    # Attention grows by one key per step: 2 (scores, values) x 2 layers x 4 heads x 16 = 256 MACs.
    macs = [s.macs for s in inside.decode_steps]
    assert macs[1] - macs[0] == macs[2] - macs[1] == 2 * 2 * 4 * 16


def test_fsdp_and_data_parallel_layouts_are_refused_and_tensor_parallel_keeps_python_random() -> None:
    model = llama()
    for layout in (tt.Parallel(fsdp=2), tt.Parallel(dp=2), tt.Parallel(fsdp=2, tp=2)):
        with pytest.raises(tt.InputError, match="tensor-parallel serving layout"):
            tt.analyze_generation(model, 4, 2, parallel=layout)
    random.seed(1234)
    expected = random.random()
    random.seed(1234)
    tt.analyze_generation(model, 4, 2, parallel=tt.Parallel(tp=2))  # PyTorch's fake collectives draw from `random`
    assert random.random() == expected


def test_multi_head_latent_attention_keeps_its_active_parameters_at_every_step() -> None:
    config = transformers.DeepseekV3Config(
        hidden_size=64, intermediate_size=128, moe_intermediate_size=32, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=4, kv_lora_rank=16, q_lora_rank=24, qk_rope_head_dim=8, qk_nope_head_dim=8, v_head_dim=8,
        n_routed_experts=4, num_experts_per_tok=2, n_shared_experts=1, first_k_dense_replace=1, n_group=1, topk_group=1,
        vocab_size=128,
    )
    model = transformers.DeepseekV3ForCausalLM(config).eval()
    report = tt.analyze_generation(model, 8, 12, 2)
    total = sum(p.numel() for p in model.parameters())
    routed = 4 * 3 * 64 * 32  # layer 1 only (the first is dense): 4 experts x (gate, up, down) x 64 x 32
    # Each token reaches 2 of the 4 routed experts: half their elements, on average.
    assert {step.active_params for step in report.decode_steps} == {total - routed // 2}
    # The key/value expansion reads the whole compressed cache every step; the routing is still per token,
    # so the steps are straight lines again and only the five sampled ones run.
    assert len(report.sampled_steps) == 5
    # MLA caches the compressed latent and the rotary key: (16 + 8) x 4 bytes x 2 layers per token.
    assert report.kv_cache_bytes_per_token == (16 + 8) * 4 * 2


def test_caches_that_stop_growing_give_bytes_per_slot() -> None:
    mistral = transformers.MistralForCausalLM(transformers.MistralConfig(**SMALL, sliding_window=20)).eval()
    # A full window (prompt 40 > window 20) adds nothing per token; per slot: 2 x 2 layers x 2 kv heads x 16 x 4 B.
    assert tt.analyze_generation(mistral, 40, 9, 2).kv_cache_bytes_per_token == 2 * 2 * 2 * 16 * 4 == 512
    gemma2 = transformers.Gemma2ForCausalLM(transformers.Gemma2Config(**SMALL, head_dim=16, sliding_window=20)).eval()
    # A StaticCache's sliding layer has 20 slots, its global one 25: per slot, both are 2 x 2 x 16 x 4 B = 256 per layer.
    static = tt.analyze_generation(gemma2, 16, 9, 2, cache="static")
    assert static.kv_cache_bytes_per_token == 2 * 256 == tt.analyze_generation(gemma2, 16, 9, 2).kv_cache_bytes_per_token


def test_what_fake_tensors_cannot_catch_is_an_input_error() -> None:
    gpt2 = transformers.GPT2LMHeadModel(transformers.GPT2Config(n_embd=32, n_layer=1, n_head=2, n_positions=64, vocab_size=100))
    with pytest.raises(tt.InputError, match=r"70, but the position embedding 'transformer.wpe' has 64 positions"):
        tt.analyze_generation(gpt2, 60, 10)
    model = llama()
    small = transformers.StaticCache(config=model.config, max_cache_len=20)
    with pytest.raises(tt.InputError, match="holds 20"):
        tt.analyze_generation(model, 16, 9, cache=small)
    started = transformers.DynamicCache(config=model.config)
    model(torch.zeros(1, 10, dtype=torch.long), cache=started, use_cache=True)
    with pytest.raises(tt.InputError, match="already holds 10 tokens"):
        tt.analyze_generation(model, 16, 3, cache=started)


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"attention_mask": torch.ones(1, 3)}, "attention_mask="),
        ({"position_ids": torch.zeros(1, 4, dtype=torch.long)}, "position_ids="),
        ({"labels": torch.zeros(1, 4, dtype=torch.long)}, "labels="),
        ({"past_key_values": None}, "past_key_values="),
        ({"use_cache": False}, "use_cache=False turns the cache off"),
    ],
)
def test_arguments_that_make_no_sense_per_forward_are_refused(kwargs: dict[str, object], says: str) -> None:
    with pytest.raises(tt.InputError, match=says):
        tt.analyze_generation(llama(), 4, 2, **kwargs)


def test_numpy_integers_are_whole_numbers() -> None:
    report = tt.analyze_generation(llama(), np.int64(4), np.int32(2))
    assert (report.prompt_tokens, report.new_tokens) == (4, 2)


def test_a_compiled_model_keeps_only_the_last_logits_as_generate_does() -> None:
    model = llama()
    compiled = torch.compile(model)
    plain = tt.analyze(model, (1, 8), dtypes=[torch.long], use_cache=True, logits_to_keep=1)
    assert tt.analyze_generation(compiled, 8, 2).prefill.total_macs == plain.total_macs


class PagedCache:
    """Keys in pages of 16 tokens, as paged attention allocates them: a staircase in the position."""

    page = 16

    def __init__(self) -> None:
        self.keys: torch.Tensor | None = None
        self.length = 0

    def update(self, new: torch.Tensor) -> torch.Tensor:
        need = self.length + new.shape[1]
        if self.keys is None or need > self.keys.shape[1]:
            pages = new.new_zeros(new.shape[0], math.ceil(need / self.page) * self.page, new.shape[2])
            if self.keys is not None:
                pages[:, : self.length] = self.keys[:, : self.length]
            self.keys = pages
        self.keys[:, self.length : need] = new
        self.length = need
        return self.keys[:, :need]


class PagedModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed, self.key, self.head = nn.Embedding(100, 32), nn.Linear(32, 32), nn.Linear(32, 100)

    def forward(self, ids: torch.Tensor, past_key_values: PagedCache | None = None) -> tuple[torch.Tensor, PagedCache]:
        cache = past_key_values if past_key_values is not None else PagedCache()
        x = self.embed(ids)
        keys = cache.update(self.key(x))
        return self.head(torch.softmax(x @ keys.transpose(1, 2), -1) @ keys), cache


def test_every_step_runs_a_staircase_cache_exactly() -> None:
    report = tt.analyze_generation(PagedModel(), 1, 40, every_step=True)
    assert report.sampled_steps == tuple(range(40))
    # After step i the cache holds 1 + i + 1 tokens, in whole pages of 16, of 32 float32 values each.
    assert [s.kv_cache_bytes for s in report.decode_steps] == [math.ceil((i + 2) / 16) * 16 * 32 * 4 for i in range(40)]


def test_a_parallel_analysis_keeps_python_random() -> None:
    random.seed(99)
    expected = random.random()
    random.seed(99)
    tt.analyze(llama(), (1, 4), dtypes=[torch.long], parallel=tt.Parallel(tp=2))
    assert random.random() == expected


@given(
    weights=st.integers(0, 10_000), per_sequence=st.integers(1, 500), memory=st.integers(0, 20_000),
    bend=st.one_of(st.none(), st.integers(1, 300)), start=st.integers(1, 8),
)
@settings(max_examples=200, deadline=None)
def test_largest_batch_search_matches_trying_every_batch(
    weights: int, per_sequence: int, memory: int, bend: int | None, start: int
) -> None:
    # The peak grows by the same bytes per sequence, or more past a bend (where the line's guess is off).
    def peak(batch: int) -> int:
        return weights + per_sequence * batch + (0 if bend is None or batch < bend else 37 * (batch - bend))

    every = max(batch for batch in range(0, 20_001) if batch == 0 or peak(batch) <= memory)
    assert _largest_batch(peak, memory, {start: peak(start)}) == every
