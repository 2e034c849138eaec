"""LLM generation (issue 15): prefill and decode steps run with the model's own KV cache on
fake tensors. Acceptance tests: every expected figure is derived here from the model config
(tests/generation_math.py holds the formulas, with their derivations), never read back from
torchtally. Hugging Face models are built from configs (no download), on the meta device
where the size calls for it."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
from typing import Any

import pytest
import torch
from torch import nn

import torchtally as tt
from generation_math import Decoder, causal_pairs, gpt2, llama, llama_params
from model_state import capture, differences

transformers = pytest.importorskip("transformers")

# Llama-2-7B as published (config.json of meta-llama/Llama-2-7b-hf).
LLAMA_2_7B: dict[str, Any] = dict(
    hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=32,
    vocab_size=32000, max_position_embeddings=4096, tie_word_embeddings=False,
)


def tiny_llama(kv_heads: int = 2, heads: int = 8, layers: int = 2, dtype: torch.dtype = torch.float32,
               device: str = "meta", **extra: Any) -> nn.Module:
    config = transformers.LlamaConfig(
        hidden_size=64, intermediate_size=176, num_hidden_layers=layers, num_attention_heads=heads,
        num_key_value_heads=kv_heads, vocab_size=96, tie_word_embeddings=False, **extra,
    )
    torch.manual_seed(0)
    with torch.device(device):
        model: nn.Module = transformers.LlamaForCausalLM(config)
    return model.to(dtype).eval()


def steps_by_index(report: Any) -> dict[int, Any]:
    return {step.index: step for step in report.decode_steps}


def check_step_bookkeeping(report: Any, prompt: int, new: int) -> None:
    """Step i feeds the token at position P + i; `sampled` says whether it was run."""
    steps = report.decode_steps
    assert len(steps) == new
    assert [s.index for s in steps] == list(range(new))
    assert [s.position for s in steps] == [prompt + i for i in range(new)]
    assert tuple(sorted(report.sampled_steps)) == tuple(report.sampled_steps)
    assert {s.index for s in steps if s.sampled} == set(report.sampled_steps)
    assert 0 in report.sampled_steps  # at least one step is run; every figure rests on run steps


# -- 1. KV-cache bytes ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("heads", "kv_heads", "dtype", "dtype_bytes"),
    [(8, 8, torch.float32, 4), (8, 2, torch.float16, 2), (8, 1, torch.bfloat16, 2)],
    ids=["mha-fp32", "gqa-fp16", "mqa-bf16"],
)
def test_kv_cache_bytes_per_token_mha_gqa_mqa(heads: int, kv_heads: int, dtype: torch.dtype, dtype_bytes: int) -> None:
    model = tiny_llama(kv_heads=kv_heads, heads=heads, layers=3, dtype=dtype)
    prompt, new, batch = 8, 4, 2
    report = tt.analyze_generation(model, prompt_tokens=prompt, new_tokens=new, batch_size=batch)
    check_step_bookkeeping(report, prompt, new)
    # 2 (key and value) x 3 layers x kv_heads x head_dim 8 (64 / 8 heads) x dtype bytes:
    # MHA fp32 2*3*8*8*4 = 1,536; GQA fp16 2*3*2*8*2 = 192; MQA bf16 2*3*1*8*2 = 96
    per_token = 2 * 3 * kv_heads * 8 * dtype_bytes
    assert llama(model.config).kv_bytes_per_token(dtype_bytes) == per_token
    assert report.kv_cache_bytes_per_token == per_token
    # after step i the cache holds P + i + 1 tokens of each of the batch's sequences
    assert [s.kv_cache_bytes for s in report.decode_steps] == [per_token * (prompt + i + 1) * batch for i in range(new)]
    assert report.kv_cache_bytes == per_token * (prompt + new) * batch


@pytest.fixture(scope="module")
def llama_7b() -> nn.Module:
    config = transformers.LlamaConfig(**LLAMA_2_7B)
    with torch.device("meta"):
        model: nn.Module = transformers.LlamaForCausalLM(config)
    return model.half().eval()


A100 = "a100-sxm-80gb"
PROMPT_7B, NEW_7B = 16, 3


@pytest.fixture(scope="module")
def llama_7b_on_a100(llama_7b: nn.Module) -> Any:
    chip = tt.hardware(A100).with_efficiency(compute=1.0, memory=1.0)
    return tt.analyze_generation(llama_7b, prompt_tokens=PROMPT_7B, new_tokens=NEW_7B, batch_size=1, hardware=chip)


def test_llama_2_7b_fp16_kv_cache_is_524288_bytes_per_token(llama_7b_on_a100: Any) -> None:
    report = llama_7b_on_a100
    # 2 x 32 layers x 32 KV heads x 128 head dim x 2 bytes (fp16)
    assert 2 * 32 * 32 * 128 * 2 == 524_288
    assert report.kv_cache_bytes_per_token == 524_288
    assert report.kv_cache_bytes == 524_288 * (PROMPT_7B + NEW_7B) * 1
    check_step_bookkeeping(report, PROMPT_7B, NEW_7B)


# -- 2. Decode and prefill MACs from the config -----------------------------------------------


def test_llama_gqa_decode_macs_per_step_from_config() -> None:
    model = tiny_llama(kv_heads=2, heads=8, layers=2)
    prompt, new, batch = 8, 32, 2
    report = tt.analyze_generation(model, prompt_tokens=prompt, new_tokens=new, batch_size=batch)
    check_step_bookkeeping(report, prompt, new)
    dec = llama(model.config)
    # per token per layer: q 64*64 + k,v 2*64*(2*8) + o 64*64 + MLP 3*64*176 = 44,032;
    # step i: 2 layers x (2 tokens x 44,032 + 2 seqs x 8 heads x (P+i+1) keys x 2 x 8) + 2 x 64 x 96
    assert dec.layer_projection_macs == 64 * 64 + 2 * 64 * 16 + 64 * 64 + 3 * 64 * 176 == 44_032
    expected = [dec.decode_macs(batch, keys=prompt + i + 1) for i in range(new)]
    assert expected[0] == 2 * (2 * 44_032 + 2 * 8 * 9 * 16) + 2 * 64 * 96
    # 32 steps: some are run, the others interpolated between them; both must match
    assert any(s.sampled for s in report.decode_steps) and any(not s.sampled for s in report.decode_steps)
    assert [s.macs for s in report.decode_steps] == expected  # sampled and interpolated steps alike
    # one more key per step: 2 layers x 2 seqs x 8 heads x 2 x 8 = 512 MACs
    assert all(b.macs - a.macs == 512 for a, b in zip(report.decode_steps, report.decode_steps[1:]))
    assert all(s.flops >= 2 * s.macs for s in report.decode_steps)


def test_gpt2_decode_macs_per_step_from_config() -> None:
    config = transformers.GPT2Config(n_layer=2, n_embd=64, n_head=4, vocab_size=500, n_positions=64)
    with torch.device("meta"):
        model = transformers.GPT2LMHeadModel(config).eval()
    prompt, new, batch = 6, 20, 2
    report = tt.analyze_generation(model, prompt_tokens=prompt, new_tokens=new, batch_size=batch)
    check_step_bookkeeping(report, prompt, new)
    dec = gpt2(config)
    # per token per layer 12 x 64^2 = 49,152; attention 2 seqs x 4 heads x (P+i+1) keys x 2 x 16;
    # the tied head 64 x 500 per token
    assert dec.layer_projection_macs == 12 * 64 * 64
    expected = [dec.decode_macs(batch, keys=prompt + i + 1) for i in range(new)]
    assert [s.macs for s in report.decode_steps] == expected
    # GPT-2 is multi-head: 2 layers x 4 heads x 16 head dim x 2 (key, value) x 4 bytes
    assert report.kv_cache_bytes_per_token == 2 * 2 * 4 * 16 * 4


@pytest.mark.parametrize("kept", [None, 0], ids=["default-keeps-1", "logits_to_keep=0"])
@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_prefill_equals_a_plain_analysis_of_the_prompt(family: str, kept: int | None) -> None:
    if family == "llama":
        model = tiny_llama(kv_heads=2, heads=8, layers=2)
        dec = llama(model.config)
    else:
        config = transformers.GPT2Config(n_layer=2, n_embd=64, n_head=4, vocab_size=500, n_positions=64)
        with torch.device("meta"):
            model = transformers.GPT2LMHeadModel(config).eval()
        dec = gpt2(config)
    prompt, batch = 10, 2
    extra: dict[str, Any] = {} if kept is None else {"logits_to_keep": kept}
    report = tt.analyze_generation(model, prompt_tokens=prompt, new_tokens=2, batch_size=batch, **extra)
    plain = tt.analyze(model, input_size=(batch, prompt), dtypes=[torch.long], use_cache=True,
                       logits_to_keep=1 if kept is None else kept)
    assert report.prefill.total_macs == plain.total_macs
    assert report.prefill.total_flops == plain.total_flops
    # causal attention over the prompt (P(P+1)/2 pairs per head), the head on 1 token per
    # sequence like generate() (or all P with logits_to_keep=0)
    expected = dec.prefill_macs(batch, prompt, kept_logits=prompt if kept == 0 else 1)
    assert report.prefill.total_macs == expected
    if kept == 0:  # one token per step anyway: the decode steps do not change
        assert report.decode_steps[0].macs == dec.decode_macs(batch, keys=prompt + 1)


# -- 3. Time per token on a catalog GPU vs the bytes a step must read ---------------------------
#
# Llama-2-7B fp16, batch 1, decode step i (S = P + i + 1 keys after it), on the A100 SXM 80 GB
# (2,039 GB/s, fp16 tensor peak 312 TFLOP/s, call overhead 4 us, view overhead 0; efficiencies 1).
#
# A step must read every weight except the embedding table (a lookup reads one row):
#   2 bytes x (6,738,415,616 - 32000*4096) = 13,214,687,232 bytes,
# and the whole cache, which SDPA reads (K and V of S tokens, every layer): 524,288 x S bytes.
# Every operator's roofline time is max(compute, memory) + overhead; at one token per sequence
# no operator is compute-bound (a matmul of 1 x d by d x n does 2dn FLOPs on >= 2dn bytes: 1
# FLOP/byte, vs 153 for the fp16 tensor peak / bandwidth; the elementwise and norm work is a
# few FLOPs per 4-8 bytes vs 38 (fp16 vector) and 9.6 (fp32 vector)), so the memory terms
# bound it from below and the sum of all bytes plus all per-call costs from above.
#
# Beyond the weights and the cache reads, a step moves (bytes, per sequence):
#  - the cache update: DynamicCache concatenates, reading the S-1 old and 1 new token and
#    writing S tokens, for K and V: 2 x 524,288 x S;
#  - activations, per layer (d = 4096, i = 11008): two RMSNorms, 36d + 24 each (fp16 -> fp32
#    copy 6d, pow 8d, mean 4d+4, add and rsqrt 16, scale 8d+4, copy back 6d, weight multiply 4d);
#    q, k, v, o projections 4d each; rotary on q and k, 20d + 512 each (mul 4d+256, neg 2d, cat
#    4d, mul 4d+256, add 6d); SDPA's query and output 4d (+128 logsumexp); a possible
#    contiguous copy 4d; two residual adds 6d each; the MLP 6d + 16i (gate and up 2d -> 2i,
#    silu 4i, multiply 6i, down 2i -> 2d): 154d + 16i + 1,200 in all, bounded by 200d + 20i + 4096;
#  - outside the layers: embedding row 4d + 8, rotary tables (< 4 KB), the final norm 36d + 24,
#    the head's input 2d and logits 2 x 32000: bounded by 100d + 4 x vocab + 16,384.
# Per-call costs: operators that do work (views cost the A100's view overhead, 0) are, per
# layer, 7 matmuls, SDPA, 2 cache concatenations, 2 residual adds, 2 x 8 RMSNorm operators, 2 x 5
# rotary operators, silu and a multiply: 40; at least the 7 matmuls, SDPA, the 2 adds, the 2
# cats, 2 x 5 norm operators past the casts, silu and the multiply (24) must each be a call; at
# most 48. Outside: between 7 (embedding, 5 norm operators, the head's matmul) and 32.


def decode_bracket_7b(step: int, chip: tt.Hardware) -> tuple[float, float, int, int]:
    """(fastest, slowest) seconds a decode step of Llama-2-7B fp16 at batch 1 can be estimated at,
    and (least, most) bytes it can be counted to move (read + written); see the comment above."""
    config = transformers.LlamaConfig(**LLAMA_2_7B)
    d, inter, vocab, layers = 4096, 11008, 32000, 32
    keys = PROMPT_7B + step + 1
    weights = 2 * (llama_params(config) - vocab * d)
    assert weights == 13_214_687_232
    cache = 524_288 * keys
    must_move = weights + cache
    cache_update = 2 * 524_288 * keys
    activations = layers * (200 * d + 20 * inter + 4096) + 100 * d + 4 * vocab + 16_384
    may_move = must_move + cache_update + activations
    least_calls, most_calls = 24 * layers + 7, 48 * layers + 32
    fastest = must_move / chip.bandwidth + least_calls * chip.call_overhead
    slowest = may_move / chip.bandwidth + most_calls * chip.call_overhead
    return fastest, slowest, must_move, may_move


def test_llama_2_7b_decode_step_time_on_a100_is_its_bytes_over_bandwidth(llama_7b_on_a100: Any) -> None:
    report = llama_7b_on_a100
    chip = tt.hardware(A100).with_efficiency(compute=1.0, memory=1.0)
    assert chip.bandwidth == 2039e9 and chip.call_overhead == 4e-6 and chip.view_overhead == 0
    for step in report.decode_steps:
        fastest, slowest, must_move, may_move = decode_bracket_7b(step.index, chip)
        # bytes: at least the weights (less the embedding table) and the cache; at most that
        # plus the cache update and the activations
        assert must_move <= step.memory_read
        assert step.memory_read + step.memory_write <= may_move, (step.index, step.memory_read + step.memory_write - must_move)
        # step 0: 13,223,600,128 bytes / 2,039 GB/s = 6.485 ms, + 775 x 4 us = 9.585 ms;
        # at most (that + 51,770,368) / 2,039 GB/s = 6.511 ms, + 1,568 x 4 us = 12.783 ms
        assert fastest <= step.estimated_time <= slowest, (step.index, fastest, step.estimated_time, slowest)
    assert report.decode_step_time == pytest.approx(sum(s.estimated_time for s in report.decode_steps) / NEW_7B)
    assert report.tokens_per_second == pytest.approx(1 / report.decode_step_time)  # batch 1: one token a step
    # the first token comes out of the prefill pass
    assert report.prefill.estimate is not None
    assert report.time_to_first_token == pytest.approx(report.prefill.estimate.latency)


def test_llama_2_7b_decode_time_without_call_costs_is_bytes_over_bandwidth(llama_7b: nn.Module) -> None:
    """The same bracket with the per-call costs set to 0: within 0.4% of weights + cache / bandwidth."""
    # memory_bytes=None: no largest batch to search for (this test is about time)
    chip = dataclasses.replace(tt.hardware(A100), call_overhead=0.0, view_overhead=0.0, memory_bytes=None)
    chip = chip.with_efficiency(1.0, 1.0)
    report = tt.analyze_generation(llama_7b, prompt_tokens=PROMPT_7B, new_tokens=1, batch_size=1, hardware=chip)
    (step,) = report.decode_steps
    fastest, slowest, must_move, may_move = decode_bracket_7b(0, chip)
    # 13,223,600,128 / 2.039e12 = 6.4853 ms <= t <= (that + 17.8 MB cache update + 33.9 MB activations) / 2.039e12
    assert fastest == pytest.approx(13_223_600_128 / 2039e9)
    assert step.estimated_time is not None and fastest <= step.estimated_time <= slowest
    assert slowest / fastest < 1.004


def test_llama_2_7b_peak_memory_is_weights_cache_and_a_small_working_set(llama_7b_on_a100: Any) -> None:
    report = llama_7b_on_a100
    weights = 2 * llama_params(transformers.LlamaConfig(**LLAMA_2_7B))  # 13,476,831,232 bytes
    cache = 524_288 * (PROMPT_7B + NEW_7B)
    # the working set of a 16-token prompt pass (a few 16 x 11008 fp32 tensors, logits of one
    # token) or of a 1-token step is far below 64 MiB
    assert weights + cache <= report.peak_memory <= weights + cache + 64 * 2**20
    assert all(s.peak_memory <= report.peak_memory for s in report.decode_steps)


# -- 4. The largest batch that fits, by hand ----------------------------------------------------
#
# A tiny Llama, fp32: hidden 32, 2 heads (head dim 16, MHA), 8 layers, MLP 64, vocab 64; prompt
# 4 and 60 new tokens (64 in the cache at the end).
#   weights W: per layer 4 x 32^2 + 3 x 32 x 64 + 2 x 32 = 10,304; x 8 = 82,432; + embeddings
#            and head 2 x 64 x 32 and the final norm 32 = 86,560 parameters x 4 = 346,240 bytes
#            (+ the rotary inv_freq buffers, 2 x 8 floats, and anything else batch-free: < 5 KB)
#   cache per sequence at the end: 2 x 8 x 2 x 16 x 4 = 2,048 bytes a token x 64 = 131,072
#   working set per sequence, bounded: the 4-token prompt pass holds at most ~16 tensors of
#            4 x 32 fp32 and 4 of 4 x 64 (< 12 KB); a decode step holds one layer's new K/V
#            (at most 2 x 2 x 64 x 16 x 4 = 16,384) while the old ones live, and a few 1-token
#            vectors: 32,768 per sequence covers either.
# Peak(B) lies in [W + B x 131,072, W + 5,120 + B x (131,072 + 32,768)], so with
# M = W + 510,464: B = 3 fits (at most W + 5,120 + 491,520 = W + 496,640) and B = 4 does not
# (at least W + 524,288): max_batch_size = floor((M - W) / (cache + working set)) = 3 for any
# working set up to 37 KB a sequence.

MAXB = dict(prompt=4, new=60, layers=8)


def test_max_batch_size_by_hand() -> None:
    config = transformers.LlamaConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=MAXB["layers"], num_attention_heads=2,
        num_key_value_heads=2, vocab_size=64, tie_word_embeddings=False,
    )
    with torch.device("meta"):
        model = transformers.LlamaForCausalLM(config).eval()
    weights = 4 * llama_params(config)
    assert weights == 346_240
    per_seq_cache = 2 * 8 * 2 * 16 * 4 * (MAXB["prompt"] + MAXB["new"])
    assert per_seq_cache == 131_072
    working_bound, batch_free = 32_768, 5_120
    memory = weights + 510_464
    assert weights + batch_free + 3 * (per_seq_cache + working_bound) <= memory < weights + 4 * per_seq_cache
    chip = tt.Hardware(name="test-chip", peak_flops={"fp32": 10e12}, memory_bandwidth=500e9, memory_bytes=memory)
    report = tt.analyze_generation(model, prompt_tokens=MAXB["prompt"], new_tokens=MAXB["new"], batch_size=1, hardware=chip)
    assert report.kv_cache_bytes == per_seq_cache
    assert weights + per_seq_cache <= report.peak_memory <= weights + batch_free + per_seq_cache + working_bound
    assert report.max_batch_size == 3
    # the same model with no chip: no memory to fit, no time
    bare = tt.analyze_generation(model, prompt_tokens=MAXB["prompt"], new_tokens=2, batch_size=1)
    assert bare.max_batch_size is None
    assert bare.time_to_first_token is None and bare.decode_step_time is None and bare.tokens_per_second is None
    assert all(s.estimated_time is None for s in bare.decode_steps)


# -- 5. Static cache ----------------------------------------------------------------------------


def test_static_cache_is_preallocated_and_attends_over_max_cache_len() -> None:
    model = tiny_llama(kv_heads=2, heads=8, layers=2)
    prompt, new, batch = 8, 6, 2
    report = tt.analyze_generation(model, prompt_tokens=prompt, new_tokens=new, batch_size=batch, cache="static")
    check_step_bookkeeping(report, prompt, new)
    dec = llama(model.config)
    # StaticCache(max_cache_len = P + N) allocates [B, kv_heads, P + N, head_dim] zeros per layer
    # for K and V on the first update: 2 x 2 layers x 2 KV heads x 8 x 4 bytes x 14 x 2 = 7,168
    preallocated = dec.kv_bytes_per_token(4) * (prompt + new) * batch
    assert preallocated == 7_168
    assert [s.kv_cache_bytes for s in report.decode_steps] == [preallocated] * new
    assert report.kv_cache_bytes == preallocated
    # one token's slot, per sequence: 2 x 2 layers x 2 KV heads x 8 x 4 bytes
    assert report.kv_cache_bytes_per_token == dec.kv_bytes_per_token(4) == 256
    # Prefill: HF's sdpa path slices the empty static cache to the prompt (is_causal, no mask),
    # so it costs what the dynamic prefill costs: causal pairs over P.
    assert report.prefill.total_macs == dec.prefill_macs(batch, prompt, kept_logits=1)
    # Decode: StaticLayer.update returns the whole [.., max_cache_len, ..] buffers and the mask
    # covers max_cache_len keys (get_mask_sizes), so SDPA runs with a mask over all 14 keys
    # (with GQA HF folds the 4 query heads of a group into the query length: same products):
    # every step costs the same, 2 x 8 heads x 14 keys x 2 x 8 per layer.
    expected = dec.decode_macs(batch, keys=prompt + new)
    assert [s.macs for s in report.decode_steps] == [expected] * new


def test_a_cache_object_to_start_from_is_used_and_left_as_it_was() -> None:
    model = tiny_llama(kv_heads=2, heads=8, layers=2)
    prompt, new, batch = 6, 3, 1
    dec = llama(model.config)
    start = transformers.DynamicCache(config=model.config)
    report = tt.analyze_generation(model, prompt_tokens=prompt, new_tokens=new, batch_size=batch, cache=start)
    assert [s.macs for s in report.decode_steps] == [dec.decode_macs(batch, prompt + i + 1) for i in range(new)]
    assert start.get_seq_length() == 0  # the caller's cache object was not filled


@pytest.mark.parametrize("bad", [dict(prompt_tokens=0), dict(new_tokens=0), dict(batch_size=0), dict(cache="paged-ish")])
def test_bad_arguments_are_input_errors(bad: dict[str, Any]) -> None:
    model = tiny_llama()
    args: dict[str, Any] = dict(prompt_tokens=4, new_tokens=2, batch_size=1)
    args.update(bad)
    with pytest.raises(tt.InputError):
        tt.analyze_generation(model, **args)


# -- 6. Sliding window: the kink is never interpolated across -----------------------------------


def test_sliding_window_attention_stops_growing_at_the_window() -> None:
    window, prompt, new, batch = 24, 8, 40, 1
    config = transformers.MistralConfig(
        hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        vocab_size=100, sliding_window=window,
    )
    with torch.device("meta"):
        model = transformers.MistralForCausalLM(config).eval()
    report = tt.analyze_generation(model, prompt_tokens=prompt, new_tokens=new, batch_size=batch)
    check_step_bookkeeping(report, prompt, new)
    dec = llama(config)
    # DynamicSlidingWindowLayer keeps the last window-1 tokens and returns them with the new one:
    # step i attends over min(P+i+1, window) keys: 9, 10, ..., 24 at step 15, then 24 for good.
    keys = [min(prompt + i + 1, window) for i in range(new)]
    kink = window - prompt - 1
    assert kink == 15 and keys[kink - 1] == 23 and keys[kink] == keys[kink + 1] == 24
    expected = [dec.decode_macs(batch, k) for k in keys]
    got = [s.macs for s in report.decode_steps]
    assert got == expected, [(i, g - e) for i, (g, e) in enumerate(zip(got, expected)) if g != e]
    # figures are affine on either side of the kink, not across it: the run steps must pin it
    assert any(abs(i - kink) <= 1 for i in report.sampled_steps), report.sampled_steps
    # the cache stops growing too: after the window it holds window-1 tokens (in a buffer of
    # window tokens: the concatenation it is sliced from)
    per_token = dec.kv_bytes_per_token(4)
    cache = [s.kv_cache_bytes for s in report.decode_steps]
    assert cache[:kink] == [per_token * (prompt + i + 1) for i in range(kink)]
    assert len(set(cache[kink:])) == 1
    assert per_token * (window - 1) <= cache[-1] <= per_token * window


# -- 7. Mixture of experts ------------------------------------------------------------------------


def test_moe_decode_step_uses_a_share_of_the_experts() -> None:
    # Mixtral: vocab 100, hidden 32, MLP 64, 2 layers, 4 heads / 2 KV heads (head dim 8), 4 experts, top-2.
    config = transformers.MixtralConfig(
        vocab_size=100, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, num_local_experts=4, num_experts_per_tok=2,
    )
    config._experts_implementation = "grouped_mm"
    with torch.device("meta"):
        model = transformers.MixtralForCausalLM(config).to(torch.bfloat16).eval()
    # per layer: attention 2 x 32^2 + 2 x 32 x 16 = 3,072; router 4 x 32 = 128; experts
    # 4 x (2 x 64 x 32 + 32 x 64) = 24,576; norms 64 -> 27,840; x 2 + 2 x 100 x 32 + 32 = 62,112
    total = 2 * (3_072 + 128 + 24_576 + 64) + 2 * 100 * 32 + 32
    routed = 2 * 24_576
    assert sum(p.numel() for p in model.parameters()) == total == 62_112
    # each token reaches 2 of the 4 experts: half of every expert weight, on average
    active = total - routed + routed * 2 // 4
    report = tt.analyze_generation(model, prompt_tokens=6, new_tokens=3, batch_size=2)
    assert report.prefill.total_params == total
    for step in report.decode_steps:
        assert step.active_params is not None and step.active_params < total
        assert step.active_params == active == 37_536


# -- 8. A model with its own cache; a model with none ---------------------------------------------


class ListCache:
    """A hand-written KV cache: per layer a key and a value tensor, grown by concatenation."""

    def __init__(self) -> None:
        self.keys: list[torch.Tensor] = []
        self.values: list[torch.Tensor] = []

    def update(self, layer: int, key: torch.Tensor, value: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if layer == len(self.keys):
            self.keys.append(key)
            self.values.append(value)
        else:
            self.keys[layer] = torch.cat([self.keys[layer], key], dim=-2)
            self.values[layer] = torch.cat([self.values[layer], value], dim=-2)
        return self.keys[layer], self.values[layer]


class CachedBlock(nn.Module):
    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d, 3 * d, bias=False)
        self.out = nn.Linear(d, d, bias=False)
        self.up = nn.Linear(d, 2 * d, bias=False)
        self.down = nn.Linear(2 * d, d, bias=False)

    def forward(self, x: torch.Tensor, cache: ListCache, layer: int) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = (z.reshape(b, t, self.heads, d // self.heads).transpose(1, 2) for z in self.qkv(x).chunk(3, -1))
        k, v = cache.update(layer, k, v)
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(d // self.heads)  # every (query, key) pair
        if t > 1:  # the prompt: mask the future (the products are computed all the same)
            future = torch.ones(t, k.shape[-2], dtype=torch.bool, device=x.device).triu(1)
            scores = scores.masked_fill(future, float("-inf"))
        mixed = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, t, d)
        x = x + self.out(mixed)
        out: torch.Tensor = x + self.down(torch.relu(self.up(x)))
        return out


class CachedLM(nn.Module):
    """forward(input_ids, past_key_values=None, use_cache=True) -> (logits, cache)."""

    def __init__(self, vocab: int = 50, d: int = 32, heads: int = 4, layers: int = 2) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        self.blocks = nn.ModuleList(CachedBlock(d, heads) for _ in range(layers))
        self.head = nn.Linear(d, vocab, bias=False)

    def forward(
        self, input_ids: torch.Tensor, past_key_values: ListCache | None = None, use_cache: bool = True
    ) -> tuple[torch.Tensor, ListCache]:
        cache = ListCache() if past_key_values is None else past_key_values
        x = self.embed(input_ids)
        for layer, block in enumerate(self.blocks):
            x = block(x, cache, layer)
        return self.head(x), cache


def test_custom_model_with_its_own_cache_is_measured_as_written() -> None:
    torch.manual_seed(0)
    model = CachedLM().eval()
    vocab, d, heads, layers, head_dim = 50, 32, 4, 2, 8
    prompt, new, batch = 5, 12, 2
    report = tt.analyze_generation(model, prompt_tokens=prompt, new_tokens=new, batch_size=batch)
    check_step_bookkeeping(report, prompt, new)
    # per token per layer: qkv 32 x 96 + out 32 x 32 + up 32 x 64 + down 64 x 32 = 8,192
    dec = Decoder(layers, d, heads, heads, head_dim, vocab, d * 3 * d + d * d + d * 2 * d + 2 * d * d)
    assert dec.layer_projection_macs == 8_192
    # decode: q @ k^T and A @ v over the P+i+1 cached keys (two batched matmuls, one query)
    assert [s.macs for s in report.decode_steps] == [dec.decode_macs(batch, prompt + i + 1) for i in range(new)]
    # prefill: no logits_to_keep in this forward, so the head sees all P tokens; the masked
    # attention computes all P x P pairs
    expected_prefill = layers * (batch * prompt * 8_192 + dec.attention_macs(batch, prompt, prompt)) + dec.head_macs(batch * prompt)
    assert report.prefill.total_macs == expected_prefill
    # the cache is whatever tensors the model keeps: 2 x 2 layers x 4 heads x 8 x 4 bytes a token
    per_token = 2 * layers * heads * head_dim * 4
    assert [s.kv_cache_bytes for s in report.decode_steps] == [per_token * (prompt + i + 1) * batch for i in range(new)]
    assert report.kv_cache_bytes == per_token * (prompt + new) * batch
    # one more token adds 512 bytes a sequence (after the prompt pass the keys and values are
    # still views into the fused qkv output, as this model keeps them: the step-to-step growth
    # is the per-token figure, not the prefill-to-first-step one)
    assert report.kv_cache_bytes_per_token == per_token == 512


def test_a_model_without_a_cache_argument_is_an_input_error() -> None:
    model = nn.Sequential(nn.Embedding(50, 16), nn.Linear(16, 50))
    with pytest.raises(tt.InputError, match="cache"):
        tt.analyze_generation(model, prompt_tokens=4, new_tokens=2)


# -- 9. Views: dict and schema, CSV, text ---------------------------------------------------------


def test_to_dict_validates_against_the_schema_and_csv_has_a_row_per_step(llama_7b_on_a100: Any) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = tt.generation_schema()
    jsonschema.validators.validator_for(schema).check_schema(schema)
    # with a chip: times and the largest batch filled in
    data = json.loads(json.dumps(llama_7b_on_a100.to_dict()))  # plain JSON all the way down
    jsonschema.validate(data, schema)
    model = tiny_llama(kv_heads=2, heads=8, layers=2)
    new = 5
    report = tt.analyze_generation(model, prompt_tokens=6, new_tokens=new, batch_size=2)  # the None figures
    jsonschema.validate(json.loads(json.dumps(report.to_dict())), schema)

    rows = list(csv.DictReader(io.StringIO(report.to_csv())))
    assert len(rows) == new
    macs = [s.macs for s in report.decode_steps]
    # one column holds the steps' MACs, as integers (the same numbers in every view)
    columns = [name for name in rows[0] if [r[name] for r in rows] == [str(m) for m in macs]]
    assert columns, rows[0]

    text = str(report)
    assert "prefill" in text.lower() and "decode" in text.lower()
    assert str(report) == text  # renders the same way every time


# -- Guarantee 1: the user's model is unchanged ---------------------------------------------------


def test_generation_leaves_a_real_weight_model_unchanged() -> None:
    model = tiny_llama(kv_heads=2, heads=8, layers=2, device="cpu")
    before = capture(model)
    report = tt.analyze_generation(model, prompt_tokens=6, new_tokens=4, batch_size=2)
    assert differences(before, capture(model)) == []
    assert len(report.decode_steps) == 4
    # and a second run gives the same figures (no state carried over from the first)
    again = tt.analyze_generation(model, prompt_tokens=6, new_tokens=4, batch_size=2)
    assert [s.macs for s in again.decode_steps] == [s.macs for s in report.decode_steps]
    assert differences(before, capture(model)) == []


def test_causal_pairs_helper() -> None:
    assert [causal_pairs(n) for n in (1, 2, 3, 10)] == [1, 3, 6, 55]


# -- The hand formulas themselves, against PyTorch's own FLOP counter ---------------------------
#
# torch.utils.flop_counter.FlopCounterMode counts 2 x M x N x K per matmul (mm, addmm, bmm and
# the SDPA kernels) and nothing else, so on a decode step (one query: no causal convention to
# differ on) its total / 2 is the step's MACs. This checks the derivations above with plain
# PyTorch and Hugging Face, on the meta device, without torchtally.


def _cache_keyword(model: nn.Module) -> str:
    import inspect

    names = inspect.signature(model.forward).parameters
    return "cache" if "cache" in names else "past_key_values"


def _decode_flop_counts(model: nn.Module, prompt: int, new: int, batch: int, cache: Any = None) -> list[int]:
    from torch.utils.flop_counter import FlopCounterMode

    keyword = _cache_keyword(model)
    ids = torch.zeros(batch, prompt, dtype=torch.long, device="meta")
    extra = {} if cache is None else {keyword: cache}
    with torch.no_grad():
        out = model(ids, use_cache=True, **extra)
        state = cache if cache is not None else (out[1] if isinstance(out, tuple) else getattr(out, keyword))
        counts = []
        for _ in range(new):
            with FlopCounterMode(display=False) as counter:
                model(torch.zeros(batch, 1, dtype=torch.long, device="meta"), use_cache=True, **{keyword: state})
            counts.append(counter.get_total_flops() // 2)
    return counts


def test_hand_decode_formulas_match_pytorchs_flop_counter() -> None:
    llama_model = tiny_llama(kv_heads=2, heads=8, layers=2)
    dec = llama(llama_model.config)
    assert _decode_flop_counts(llama_model, 8, 3, 2) == [dec.decode_macs(2, 8 + i + 1) for i in range(3)]
    static = transformers.StaticCache(config=llama_model.config, max_cache_len=14)
    assert _decode_flop_counts(llama_model, 8, 3, 2, cache=static) == [dec.decode_macs(2, 14)] * 3

    config = transformers.GPT2Config(n_layer=2, n_embd=64, n_head=4, vocab_size=500, n_positions=64)
    with torch.device("meta"):
        gpt = transformers.GPT2LMHeadModel(config).eval()
    assert _decode_flop_counts(gpt, 6, 3, 2) == [gpt2(config).decode_macs(2, 6 + i + 1) for i in range(3)]

    mistral_config = transformers.MistralConfig(
        hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        vocab_size=100, sliding_window=12,
    )
    with torch.device("meta"):
        mistral = transformers.MistralForCausalLM(mistral_config).eval()
    assert _decode_flop_counts(mistral, 8, 6, 1) == [llama(mistral_config).decode_macs(1, min(8 + i + 1, 12)) for i in range(6)]

    with torch.device("meta"):
        custom = CachedLM().eval()
    custom_dec = Decoder(2, 32, 4, 4, 8, 50, 8_192)
    assert _decode_flop_counts(custom, 5, 3, 2) == [custom_dec.decode_macs(2, 5 + i + 1) for i in range(3)]
