"""Language models at their real size: Llama-2-7B and a Llama-2-70B-shaped config built on the
meta device (no weights anywhere), a BERT encoder, and the memory a fake run costs.

Every expected figure is derived here from the config, by the formulas in the comments;
none is read back from torchtally. The fresh-process tests measure peak RSS with
``resource.getrusage(RUSAGE_SELF).ru_maxrss`` (KiB on Linux)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
import torch

import torchtally as tt

transformers = pytest.importorskip("transformers")

SRC = str(Path(__file__).resolve().parents[1] / "src")
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ru_maxrss is in KiB and /proc exists on Linux")

# Llama-2-7B and Llama-2-70B as published (config.json of meta-llama/Llama-2-{7,70}b-hf).
LLAMA_2_7B: dict[str, Any] = dict(
    hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=32,
    vocab_size=32000, max_position_embeddings=4096, tie_word_embeddings=False,
)
LLAMA_2_70B: dict[str, Any] = dict(
    hidden_size=8192, intermediate_size=28672, num_hidden_layers=80, num_attention_heads=64, num_key_value_heads=8,
    vocab_size=32000, max_position_embeddings=4096, tie_word_embeddings=False,
)


def causal_pairs(length: int) -> int:
    """(query, key) pairs a causal kernel computes: query i sees keys 0..i."""
    return length * (length + 1) // 2


def llama_params(c: dict[str, Any]) -> int:
    """LlamaForCausalLM without biases and with an untied head."""
    d, inter, vocab = c["hidden_size"], c["intermediate_size"], c["vocab_size"]
    kv = c["num_key_value_heads"] * (d // c["num_attention_heads"])  # width of k_proj / v_proj outputs
    per_layer = (
        d * d  # q_proj
        + 2 * d * kv  # k_proj, v_proj (only the key/value heads)
        + d * d  # o_proj
        + 3 * d * inter  # gate_proj, up_proj, down_proj
        + 2 * d  # input_layernorm, post_attention_layernorm (RMSNorm: a weight, no bias)
    )
    return (
        vocab * d  # embed_tokens
        + c["num_hidden_layers"] * per_layer
        + d  # final norm
        + d * vocab  # lm_head (not tied)
    )


def llama_macs(c: dict[str, Any], batch: int, length: int) -> int:
    """One forward of LlamaForCausalLM over batch x length tokens, no padding.

    Projections: tokens x in x out each. Attention: with no attention_mask HF's sdpa path
    passes attn_mask=None and is_causal=True (masking_utils._ignore_causal_mask_sdpa: no
    padding and q_length == kv_length), checked by the tests with a spy, so the fused kernel
    is charged the causal convention: every query head x L(L+1)/2 pairs x (E + Ev), E = Ev =
    head_dim (Q K^T, then A V). The rotary embedding's outer product (positions x inv_freq)
    is a broadcast multiply in HF, no MACs. The head sees every token (logits_to_keep=0)."""
    d, inter, vocab, heads = c["hidden_size"], c["intermediate_size"], c["vocab_size"], c["num_attention_heads"]
    head_dim = d // heads
    kv = c["num_key_value_heads"] * head_dim
    tokens = batch * length
    projections = tokens * (d * d + 2 * d * kv + d * d + 3 * d * inter)
    attention = batch * heads * causal_pairs(length) * (head_dim + head_dim)
    head = tokens * d * vocab
    return c["num_hidden_layers"] * (projections + attention) + head


@pytest.fixture
def sdpa_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Spies on F.scaled_dot_product_attention (HF looks it up at call time): how HF calls it."""
    calls: list[dict[str, Any]] = []
    original = torch.nn.functional.scaled_dot_product_attention

    def spy(
        query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, attn_mask: torch.Tensor | None = None,
        dropout_p: float = 0.0, is_causal: bool = False, **kwargs: Any,
    ) -> torch.Tensor:
        calls.append({"masked": attn_mask is not None, "is_causal": is_causal, "query": tuple(query.shape)})
        return original(query, key, value, attn_mask=attn_mask, dropout_p=dropout_p, is_causal=is_causal, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", spy)
    return calls


def run_fresh(script: str, timeout: float = 300) -> dict[str, Any]:
    """Runs ``script`` in a fresh interpreter; its last stdout line is a JSON object. The
    persistent replay cache is off there: loading the session's (every model the suite has
    analysed so far) is a transient of tens of MB, which these memory measurements would
    mistake for the analysis's."""
    env = {
        **os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [SRC, os.environ.get("PYTHONPATH")])),
        "TORCHTALLY_CACHE": "off",
    }
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True, timeout=timeout, env=env
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def test_llama_2_7b_on_meta_params_and_macs_from_config(sdpa_calls: list[dict[str, Any]]) -> None:
    config = transformers.LlamaConfig(**LLAMA_2_7B)
    with torch.device("meta"):
        model = transformers.LlamaForCausalLM(config)
    batch, length = 1, 2048
    start = time.perf_counter()
    report = tt.analyze(model, (batch, length), dtypes=[torch.long])
    elapsed = time.perf_counter() - start

    # 32000*4096 (embed) + 32 * (4*4096^2 + 3*4096*11008 + 2*4096 = 202,383,360) + 4096 (norm)
    # + 4096*32000 (lm_head) = 131,072,000 + 6,476,267,520 + 4,096 + 131,072,000: the published 6.74 B
    expected_params = llama_params(LLAMA_2_7B)
    assert expected_params == 6_738_415_616
    assert report.total_params == expected_params
    assert report.used_params == expected_params and report.unused_modules == ()
    assert report.layer("lm_head").shared_from == ()

    # per layer: 2048 tokens * (4*4096^2 + 3*4096*11008) = 414,464,344,064 (projections)
    #            + 32 heads * 2048*2049/2 pairs * (128 + 128) = 17,188,257,792 (causal attention)
    # x 32 layers, + 2048 * 4096 * 32000 = 268,435,456,000 (lm_head)
    expected_macs = llama_macs(LLAMA_2_7B, batch, length)
    assert expected_macs == 14_081_318_715_392
    # HF passes no mask and is_causal=True, once per layer, so the causal convention applies
    assert sdpa_calls == [{"masked": False, "is_causal": True, "query": (batch, 32, length, 128)}] * 32
    assert report.operators["aten._scaled_dot_product_flash_attention_for_cpu"].calls == 32
    assert report.total_macs == expected_macs
    assert report.total_flops >= 2 * expected_macs
    assert report.uncounted_ops == {}  # every operator of the forward has a formula (or is free)
    assert report.execution == "fake" and report.fallback_reason is None
    assert elapsed < 30, f"analysing Llama-2-7B at 1x2048 took {elapsed:.1f} s"


def test_bert_encoder_on_meta_params_and_macs_from_config(sdpa_calls: list[dict[str, Any]]) -> None:
    config = transformers.BertConfig(
        hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024, vocab_size=30522
    )
    with torch.device("meta"):
        model = transformers.BertModel(config)
    batch, length = 2, 128
    report = tt.analyze(model, (batch, length), dtypes=[torch.long])
    d, inter, heads, layers = config.hidden_size, config.intermediate_size, config.num_attention_heads, config.num_hidden_layers
    head_dim = d // heads

    embeddings = (
        config.vocab_size * d  # word_embeddings
        + config.max_position_embeddings * d  # position_embeddings (512 positions)
        + config.type_vocab_size * d  # token_type_embeddings (2 types)
        + 2 * d  # LayerNorm weight and bias
    )
    per_layer = (
        4 * (d * d + d)  # query, key, value, attention output dense: weights and biases
        + 2 * d  # attention output LayerNorm
        + d * inter + inter  # intermediate dense
        + inter * d + d  # output dense
        + 2 * d  # output LayerNorm
    )
    pooler = d * d + d
    assert report.total_params == embeddings + layers * per_layer + pooler

    tokens = batch * length
    projections = tokens * (4 * d * d + 2 * d * inter)  # q, k, v, o; intermediate and output dense
    # an encoder attends both ways: every query head x all L x L pairs x (E + Ev)
    attention = batch * heads * length * length * (head_dim + head_dim)
    pooler_macs = batch * d * d  # the pooler reads the [CLS] token of each sequence only
    assert report.total_macs == layers * (projections + attention) + pooler_macs
    assert report.layer("pooler.dense").input_shapes == (((batch, d),),)
    # not causal, whether or not HF builds a mask: the full convention holds either way
    assert len(sdpa_calls) == layers and not any(call["is_causal"] for call in sdpa_calls)
    assert report.uncounted_ops == {}
    assert report.execution == "fake"


@linux_only
def test_llama_2_70b_on_meta_in_a_fresh_process_stays_under_1_5_gb() -> None:
    length = 4096
    result = run_fresh(
        f"""
        import json, resource, time
        import torch, transformers
        import torchtally as tt
        config = transformers.LlamaConfig(**{LLAMA_2_70B!r})
        start = time.perf_counter()
        with torch.device("meta"):
            model = transformers.LlamaForCausalLM(config)
        built = time.perf_counter()
        report = tt.analyze(model, (1, {length}), dtypes=[torch.long])
        done = time.perf_counter()
        print(json.dumps({{
            "params": report.total_params, "macs": report.total_macs, "execution": report.execution,
            "uncounted": report.uncounted_ops, "build_s": built - start, "analyze_s": done - built,
            "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        }}))
        """
    )
    # 2 * 32000*8192 (embed, lm_head) + 80 * (2*8192^2 + 2*8192*1024 + 3*8192*28672 + 2*8192 = 855,654,400)
    # + 8192 (norm): the published 68.98 B
    assert llama_params(LLAMA_2_70B) == 68_976_648_192
    assert result["params"] == llama_params(LLAMA_2_70B)
    assert result["macs"] == llama_macs(LLAMA_2_70B, 1, length)
    assert result["execution"] == "fake" and result["uncounted"] == {}
    # 275 GB of float32 weights exist nowhere: the whole process (torch and transformers
    # imported, about 0.7 GB of it) peaks under 1.5 GB
    assert result["maxrss_kib"] * 1024 < 1.5e9, result
    assert result["analyze_s"] < 60, result


@linux_only
def test_fake_analysis_of_a_real_cpu_model_copies_no_weights() -> None:
    """Analysis of a real-weight CPU model on fake tensors raises the process's peak RSS by
    less than 10% of the model's parameter bytes.

    Why the high-water mark measures this: the weights are allocated and written (so
    resident) before it is reset to the current RSS (``/proc/self/clear_refs``; checked: the
    peak then is within 5% of the parameter bytes of the current RSS, whatever transients
    imports and the warm-up had before). Any copy of the weights made by the analysis would
    therefore sit on top of them and raise the peak by its own size; the control at the end
    shows it does when one copy is made."""
    result = run_fresh(
        """
        import gc, json
        import torch
        from torch import nn
        import torchtally as tt

        def status_kib(field):
            with open("/proc/self/status") as status:
                return next(int(line.split()[1]) for line in status if line.startswith(field))

        def peak_kib():  # the high-water mark since the last reset
            return status_kib("VmHWM:")

        def current_kib():
            return status_kib("VmRSS:")

        tt.analyze(nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2)), (2, 8))  # warm-up: lazy imports
        width, depth = 4096, 8  # 8 x (4096^2 + 4096) float32 = 537 MB
        # built on meta then given uninitialised CPU storage: no init cost; fill_ writes every page
        model = nn.Sequential(*[nn.Linear(width, width, device="meta") for _ in range(depth)]).to_empty(device="cpu")
        with torch.no_grad():
            for p in model.parameters():
                p.fill_(1e-3)
        param_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
        gc.collect()
        with open("/proc/self/clear_refs", "w") as marks:  # the high-water mark starts again at the current RSS
            marks.write("5")
        before_peak, before_current = peak_kib(), current_kib()
        report = tt.analyze(model, (8, 512, width))  # a 64 MB input, were it real
        after_peak = peak_kib()
        copies = [p.detach().clone() for p in model.parameters()]  # control: one real copy
        control_peak = peak_kib()
        print(json.dumps({
            "param_bytes": param_bytes, "params": report.total_params, "execution": report.execution,
            "before_peak": before_peak, "before_current": before_current, "after_peak": after_peak,
            "control_peak": control_peak,
        }))
        """
    )
    width, depth = 4096, 8
    param_bytes = depth * (width * width + width) * 4
    assert result["param_bytes"] == param_bytes
    assert result["params"] == depth * (width * width + width)
    assert result["execution"] == "fake"
    kib = 1024
    assert (result["before_peak"] - result["before_current"]) * kib < 0.05 * param_bytes, result  # the measure is valid
    increase = (result["after_peak"] - result["before_peak"]) * kib
    assert increase < 0.10 * param_bytes, f"analysis raised peak RSS by {increase / 2**20:.0f} MiB: {result}"
    assert (result["control_peak"] - result["before_peak"]) * kib > 0.9 * param_bytes, result  # a copy would show
