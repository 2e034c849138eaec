"""Mixture of experts: total vs active parameters per token, whichever way the experts run."""

from __future__ import annotations

import pytest
import torch

import torchtally as tt

transformers = pytest.importorskip("transformers")

VOCAB, HIDDEN, INTERMEDIATE, LAYERS, HEADS, KV_HEADS, EXPERTS, TOP_K = 100, 32, 64, 2, 4, 2, 4, 2
HEAD_DIM = HIDDEN // HEADS  # 8

# Parameters from the config, by hand:
#   per layer: q 32x32 + k 32x16 + v 32x16 + o 32x32 = 3,072; router 4x32 = 128;
#   experts gate_up 4 x (2*64) x 32 = 16,384 and down 4 x 32 x 64 = 8,192; two RMSNorm weights 2x32
ATTENTION = HIDDEN * HIDDEN * 2 + HIDDEN * KV_HEADS * HEAD_DIM * 2
EXPERT_PARAMS_PER_LAYER = EXPERTS * (2 * INTERMEDIATE * HIDDEN + HIDDEN * INTERMEDIATE)
PER_LAYER = ATTENTION + EXPERTS * HIDDEN + EXPERT_PARAMS_PER_LAYER + 2 * HIDDEN
#   embeddings 100x32, untied LM head 32x100, final norm 32
TOTAL = LAYERS * PER_LAYER + 2 * VOCAB * HIDDEN + HIDDEN
ROUTED = LAYERS * EXPERT_PARAMS_PER_LAYER
# Each token reaches TOP_K of the EXPERTS experts: on average it uses 2/4 of every expert weight.
ACTIVE = TOTAL - ROUTED + ROUTED * TOP_K // EXPERTS


def _mixtral(experts: str, device: str = "cpu", dtype: torch.dtype = torch.float32) -> torch.nn.Module:
    config = transformers.MixtralConfig(
        vocab_size=VOCAB, hidden_size=HIDDEN, intermediate_size=INTERMEDIATE, num_hidden_layers=LAYERS,
        num_attention_heads=HEADS, num_key_value_heads=KV_HEADS, num_local_experts=EXPERTS,
        num_experts_per_tok=TOP_K,
    )
    config._experts_implementation = experts
    torch.manual_seed(0)
    with torch.device(device):
        model = transformers.MixtralForCausalLM(config)
    return model.to(dtype).eval()


def test_the_config_arithmetic_matches_the_model() -> None:
    model = _mixtral("eager", device="meta")
    assert sum(p.numel() for p in model.parameters()) == TOTAL == 62_112
    assert sum(p.numel() for n, p in model.named_parameters() if ".experts." in n) == ROUTED


@pytest.mark.parametrize(
    ("experts", "device", "dtype", "execution"),
    [
        ("eager", "cpu", torch.float32, "real"),  # a loop over the experts hit: data-dependent, runs for real
        ("grouped_mm", "cpu", torch.bfloat16, "fake"),  # one grouped matmul over all experts
        ("grouped_mm", "meta", torch.float32, "fake"),  # float32 grouped matmul, whose fake kernel wants 16-bit
    ],
)
def test_active_params_per_token(experts: str, device: str, dtype: torch.dtype, execution: str) -> None:
    model = _mixtral(experts, device, dtype)
    ids = torch.randint(0, VOCAB, (2, 16), device="cpu" if device == "meta" else device)
    report = tt.analyze(model, input_data=ids if device != "meta" else None,
                        input_size=(2, 16) if device == "meta" else None, dtypes=[torch.long] if device == "meta" else None)
    assert report.execution == execution
    assert report.total_params == TOTAL
    assert report.routed_params == ROUTED
    assert report.active_params == ACTIVE == 37_536
    assert "Active params per token: 37,536" in report.table()


def test_dense_models_report_no_active_share() -> None:
    config = transformers.LlamaConfig(
        vocab_size=VOCAB, hidden_size=HIDDEN, intermediate_size=INTERMEDIATE, num_hidden_layers=1,
        num_attention_heads=HEADS, num_key_value_heads=KV_HEADS,
    )
    with torch.device("meta"):
        model = transformers.LlamaForCausalLM(config)
    report = tt.analyze(model, (1, 8), dtypes=[torch.long])
    assert report.active_params is None and report.routed_params == 0
    assert "Active params" not in report.table()
