"""Hugging Face models built from config objects (no download): tied embeddings counted
once, and MACs equal to the formula derived from the config."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

import torchtally as tt
from torchtally.cli.hf_inputs import default_inputs
from torchtally.cli.inputs import InputShape

transformers = pytest.importorskip("transformers")


def causal_pairs(length: int) -> int:
    """(query, key) pairs a causal kernel computes: query i sees keys 0..i."""
    return length * (length + 1) // 2


def test_gpt2_default_config_counts_the_tied_head_once() -> None:
    config = transformers.GPT2Config()
    with torch.device("meta"):
        model = transformers.GPT2LMHeadModel(config)
    report = tt.analyze(model, (1, 8), dtypes=[torch.long])
    vocab, positions, d, layers = config.vocab_size, config.n_positions, config.n_embd, config.n_layer
    per_layer = (
        2 * d  # ln_1
        + d * 3 * d + 3 * d  # c_attn (q, k, v)
        + d * d + d  # attn c_proj
        + 2 * d  # ln_2
        + d * 4 * d + 4 * d  # mlp c_fc
        + 4 * d * d + d  # mlp c_proj
    )
    expected = vocab * d + positions * d + layers * per_layer + 2 * d  # + ln_f; lm_head is wte
    assert expected == 124_439_808
    assert report.total_params == expected
    assert report.layer("lm_head").params == 0
    assert report.layer("lm_head").shared_from == ("transformer.wte",)
    assert report.shared_params == vocab * d


def test_small_gpt2_macs_from_config() -> None:
    config = transformers.GPT2Config(n_layer=2, n_embd=64, n_head=4, vocab_size=500, n_positions=64)
    model = transformers.GPT2LMHeadModel(config)
    batch, length = 2, 16
    report = tt.analyze(model, (batch, length), dtypes=[torch.long])
    tokens, d, heads = batch * length, config.n_embd, config.n_head
    projections = tokens * (d * 3 * d + d * d + d * 4 * d + 4 * d * d)  # c_attn, c_proj, c_fc, mlp c_proj
    attention = batch * heads * causal_pairs(length) * 2 * (d // heads)  # Q K^T and A V, per head
    head = tokens * d * config.vocab_size
    assert report.total_macs == config.n_layer * (projections + attention) + head
    assert report.total_params == sum(p.numel() for p in model.parameters())  # parameters() dedups ties
    assert report.uncounted_ops == {}
    # the same model on the meta device is counted as on the CPU (same fused attention kernel)
    with torch.device("meta"):
        on_meta = transformers.GPT2LMHeadModel(config)
    meta_report = tt.analyze(on_meta, (batch, length), dtypes=[torch.long])
    assert meta_report.total_macs == report.total_macs
    assert meta_report.operators["aten._scaled_dot_product_flash_attention_for_cpu"].calls == config.n_layer


def test_llama_grouped_query_attention_macs_from_config() -> None:
    config = transformers.LlamaConfig(
        hidden_size=64, intermediate_size=176, num_hidden_layers=2, num_attention_heads=8,
        num_key_value_heads=2, vocab_size=300, tie_word_embeddings=False,
    )
    model = transformers.LlamaForCausalLM(config)
    batch, length = 1, 24
    report = tt.analyze(model, (batch, length), dtypes=[torch.long])
    d, heads, kv_heads, inter = config.hidden_size, config.num_attention_heads, config.num_key_value_heads, config.intermediate_size
    head_dim = d // heads
    tokens = batch * length
    projections = tokens * (
        d * d  # q_proj
        + 2 * d * kv_heads * head_dim  # k_proj, v_proj: only the key/value heads
        + d * d  # o_proj
        + 3 * d * inter  # gate, up, down
    )
    # every query head attends (keys are shared between heads, the products are not)
    attention = batch * heads * causal_pairs(length) * 2 * head_dim
    head = tokens * d * config.vocab_size
    assert report.total_macs == config.num_hidden_layers * (projections + attention) + head
    # parameters: embeddings, per layer q/k/v/o + MLP + 2 RMSNorm weights, final norm, lm_head
    per_layer = d * d + 2 * d * kv_heads * head_dim + d * d + 3 * d * inter + 2 * d
    expected = config.vocab_size * d + config.num_hidden_layers * per_layer + d + d * config.vocab_size
    assert report.total_params == expected


def test_a_meta_build_moves_parameters_a_constructor_left_on_the_cpu() -> None:
    from torchtally.cli.huggingface import _stray_parameters_to_meta

    with torch.device("meta"):
        model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 4))
    stray = torch.nn.Parameter(torch.Tensor(4).uniform_())  # torch.Tensor(n) ignores the default device
    model[0].extra = stray
    model[1].extra = stray  # tied
    _stray_parameters_to_meta(model)
    assert {p.device.type for p in model.parameters()} == {"meta"}
    assert model[0].extra is model[1].extra and model[0].extra.shape == (4,)
    assert sum(p.numel() for p in model.parameters()) == 2 * (16 + 4) + 4  # the tied one once


class _Forecaster(nn.Module):
    """TimesFM: a univariate window, its padding indicator and a frequency index per series."""

    main_input_name = "past_values"

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(1, 4)

    def forward(self, past_values: torch.Tensor, past_values_padding: torch.LongTensor, freq: torch.Tensor) -> torch.Tensor:
        """
        Args:
            past_values (`torch.Tensor` of shape `(batch_size, sequence_length)`):
                the series.
            past_values_padding (`torch.LongTensor` of shape `(batch_size, sequence_length)`):
                the padding indicator.
            freq (`torch.LongTensor` of shape `(batch_size,)`):
                frequency indices.
        """
        return self.proj(past_values.unsqueeze(-1))


def test_a_univariate_window_and_its_indices_as_zeros() -> None:
    config = SimpleNamespace(context_length=32)  # no num_input_channels: one value a step
    # past_values (1, context_length 32); padding (batch 1, the window's 32 steps) and freq
    # (batch 1,) documented as LongTensors: zeros by value (no padding, the first frequency)
    assert default_inputs(_Forecaster(), config) == [
        InputShape("past_values", (1, 32)),
        InputShape("past_values_padding", (1, 32), torch.long, values=((0,) * 32,)),
        InputShape("freq", (1,), torch.long, values=(0,)),
    ]


class _Trajectories(nn.Module):
    """Decision Transformer: no config field names the main input; the docstring documents
    every input the forward needs, not as optional, though the signature defaults them to None."""

    main_input_name = "states"

    def __init__(self) -> None:
        super().__init__()
        self.state = nn.Linear(5, 4)

    def forward(
        self,
        states: torch.Tensor | None = None,
        actions: torch.Tensor | None = None,
        timesteps: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """
        Args:
            states (`torch.Tensor` of shape `(batch_size, episode_length, state_dim)`):
                states.
            actions (`torch.Tensor` of shape `(batch_size, episode_length, act_dim)`):
                actions.
            timesteps (`torch.LongTensor` of shape `(batch_size, episode_length)`):
                steps.
            attention_mask (`torch.FloatTensor` of shape `(batch_size, episode_length)`, *optional*):
                a mask.
        """
        return self.state(states)


def test_the_inputs_a_docstring_documents_as_needed() -> None:
    config = SimpleNamespace(state_dim=5, act_dim=3, max_ep_len=10)
    # a batch of 1; every length the usual 128 tokens capped by the 10 positions the config
    # has (max_ep_len): 10; state_dim 5, act_dim 3 from the config; timesteps zeros by value;
    # the mask documented as optional is left out
    assert default_inputs(_Trajectories(), config) == [
        InputShape("states", (1, 10, 5)),
        InputShape("actions", (1, 10, 3)),
        InputShape("timesteps", (1, 10), torch.long, values=((0,) * 10,)),
    ]
