"""Mixture of experts: total vs active parameters per token, whichever way the experts run."""

from __future__ import annotations

from collections.abc import Callable

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


# Dense models: no parameter is routed, whatever slices of a weight their products read.
# Before the fix any operand smaller than its parameter counted as an expert slice.


class _CrossAttention(torch.nn.Module):
    """nn.MultiheadAttention with key/value other than the query: its in_proj_weight is split
    into q and kv rows (slices of one 2-D parameter)."""

    def __init__(self) -> None:
        super().__init__()
        self.attn = torch.nn.MultiheadAttention(32, 4, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        memory = x * 2
        out: torch.Tensor = self.attn(x, memory, memory, need_weights=False)[0]
        return out


class _ChunkedQKV(torch.nn.Module):
    """A fused QKV weight used whole, its output chunked."""

    def __init__(self) -> None:
        super().__init__()
        self.qkv_weight = torch.nn.Parameter(torch.randn(48, 16))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = torch.nn.functional.linear(x, self.qkv_weight).chunk(3, -1)
        return q * k + v


class _SlicedWeight(torch.nn.Module):
    """Row slices of one 2-D weight, next to a dense Linear (which gives a token count, so a
    slice wrongly taken as routed would show)."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.randn(48, 16))
        self.out = torch.nn.Linear(16, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = torch.nn.functional
        out: torch.Tensor = self.out(f.linear(x, self.w[:16]) + f.linear(x, self.w[16:32]))
        return out


@pytest.mark.parametrize("mode", ["eval", "train"])  # eval: the encoder layer's fused fast path may run
@pytest.mark.parametrize("run", ["fake", "real"])
@pytest.mark.parametrize(
    ("make", "features"),
    [
        (lambda: torch.nn.TransformerEncoderLayer(d_model=32, nhead=4, batch_first=True), 32),
        (_CrossAttention, 32),
        (_ChunkedQKV, 16),
        (_SlicedWeight, 16),
        (lambda: torch.nn.Linear(16, 8), 16),  # with a bias
    ],
    ids=["encoder-layer", "cross-attention", "chunked-qkv", "sliced-weight", "linear-bias"],
)
def test_dense_slices_are_not_routed(make: Callable[[], torch.nn.Module], features: int, mode: str, run: str) -> None:
    torch.manual_seed(0)
    report = tt.analyze(make(), (2, 8, features), mode=mode, run=run)
    assert report.execution == run
    assert report.active_params is None and report.routed_params == 0


# A hand-made MoE layer: a biased dense projection, a biased router, and E stacked expert
# weights run by an eager loop over the experts with top-1 routing, token t to expert t % E.
MOE_D, MOE_H, MOE_E = 8, 16, 4


class _TinyMoE(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = torch.nn.Linear(MOE_D, MOE_D)
        self.router = torch.nn.Linear(MOE_D, MOE_E)
        self.experts = torch.nn.Parameter(torch.randn(MOE_E, MOE_H, MOE_D))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.proj(x.reshape(-1, MOE_D))
        gate = self.router(x).softmax(-1)
        out = x.new_zeros(x.shape[0], MOE_H)
        tokens = torch.arange(x.shape[0], device=x.device)
        for e in range(MOE_E):
            idx = tokens[e::MOE_E]
            y = torch.nn.functional.linear(x[idx], self.experts[e]) * gate[idx, e, None]
            out = out.index_add(0, idx, y)
        return out


@pytest.mark.parametrize("run", ["fake", "real"])
def test_biases_do_not_count_as_tokens(run: str) -> None:
    # Totals by hand: proj 8x8 + 8 = 72, router 8x4 + 4 = 36, experts 4 x 16 x 8 = 512.
    routed = MOE_E * MOE_H * MOE_D
    total = MOE_D * MOE_D + MOE_D + MOE_D * MOE_E + MOE_E + routed
    # Top-1 of 4 experts: a token uses one expert's 16x8 weight, 1/4 of the stack.
    active = total - routed + routed // MOE_E
    torch.manual_seed(0)
    report = tt.analyze(_TinyMoE(), (2, 8, MOE_D), run=run)
    assert report.execution == run
    assert report.total_params == total == 620
    assert report.routed_params == routed
    # The router's bias (4 elements, 16 x 8 x 4 MACs) once passed for 128 tokens, not 16.
    assert report.active_params == active == 236
