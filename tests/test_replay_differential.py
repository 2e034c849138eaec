"""The replay of operator results (engine/replay.py: in-process results, closed forms, the
disk cache) is only a shortcut: an analysis with it must give exactly the report one gets
when every operator goes through FakeTensorMode's own kernels. Compared as whole
``to_dict()``s, over torchvision models, Hugging Face models built from configs, and cases
where a careless key would confuse two calls (strides, storage offsets, keyword arguments,
tuple results)."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torchvision
import transformers
from torch import nn
from torch.nn import functional as F

import torchtally as tt
from torchtally.engine import replay


def _without_replay(monkeypatch: pytest.MonkeyPatch) -> None:
    # No call has a replay key: every operator runs FakeTensorMode's kernel.
    monkeypatch.setattr(replay.ResultReplay, "key", lambda self, func, args, kwargs: None)


def _both_ways(monkeypatch: pytest.MonkeyPatch, build: Any, *args: Any, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    replay.forget()  # nothing replayed from an earlier test: the first call of each key is checked too
    tt.analyze(build(), *args, **kwargs)  # fills the replay store
    replayed = tt.analyze(build(), *args, **kwargs).to_dict()  # mostly replayed
    with monkeypatch.context() as patch:
        _without_replay(patch)
        direct = tt.analyze(build(), *args, **kwargs).to_dict()
    return replayed, direct


# A spread of operator kinds: residual convs, depthwise + squeeze-excite, attention, windowed
# attention with rolls, layer norm in channels-last, fire modules with cat, channel shuffles.
TORCHVISION = ["resnet18", "mobilenet_v3_small", "efficientnet_b0", "vit_b_16", "swin_t", "convnext_tiny", "squeezenet1_1", "shufflenet_v2_x0_5"]


@pytest.mark.parametrize("name", TORCHVISION)
def test_torchvision_models_replayed_or_not(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def build() -> nn.Module:
        with torch.device("meta"):
            return torchvision.models.get_model(name)

    replayed, direct = _both_ways(monkeypatch, build, (1, 3, 224, 224))
    assert replayed == direct


HF_CONFIGS = {
    "gpt2": lambda: transformers.GPT2Config(n_layer=2, n_embd=64, n_head=4, vocab_size=500, n_positions=64),
    "llama": lambda: transformers.LlamaConfig(
        hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, vocab_size=500
    ),
    "bert": lambda: transformers.BertConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, vocab_size=500),
}


@pytest.mark.parametrize("kind", list(HF_CONFIGS))
def test_hugging_face_models_replayed_or_not(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def build() -> nn.Module:
        with torch.device("meta"):
            return transformers.AutoModel.from_config(HF_CONFIGS[kind]())

    replayed, direct = _both_ways(monkeypatch, build, (2, 16), dtypes=[torch.long])
    assert replayed == direct


class LookAlikes(nn.Module):
    """Calls that share an operator and shapes but differ where a replay key must look:
    strides (a clone of a transposed tensor keeps its strides), storage offsets (views of two
    slices of one tensor), keyword arguments, and tuple results (values and int64 indices).
    Each pair runs twice, so its second calls are replayed. Every result's metadata is then
    written into the report: the forward allocates a buffer sized by its strides, offset and
    element size, so a replayed result with the wrong metadata changes the memory figures."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(8, 8)

    @staticmethod
    def fingerprint(t: torch.Tensor) -> torch.Tensor:
        size = 1 + sum(t.stride()) + 10 * t.storage_offset() + 100 * t.element_size() + 1000 * t.dim()
        return torch.zeros(size)

    def forward(self, x: torch.Tensor) -> Any:
        outs = []
        for _ in range(2):
            dense = x[:, :8] + 0  # 8 x 8, contiguous
            results = [dense.clone(), dense.t().clone()]  # one shape, strides (8, 1) and (1, 8)
            flat = x.reshape(-1)
            results += [flat[0:16].view(4, 4), flat[16:32].view(4, 4)]  # offsets 0 and 16
            late = x[:, 4:8]
            results += [late.sum(dim=1, keepdim=True), late.sum(dim=1)]  # keyword arguments
            results += list(torch.max(self.lin(dense), dim=1))  # a tuple: float values, int64 indices
            results += list(torch.topk(dense.t(), k=3, dim=0, largest=False))
            results += list(torch.split(x, [3, 9], dim=1))
            results += list(torch.var_mean(late, dim=0, correction=0))
            results.append(F.interpolate(x[None], scale_factor=2.0))
            outs += results + [self.fingerprint(t) for t in results]
        return outs


def test_look_alike_calls_replayed_or_not(monkeypatch: pytest.MonkeyPatch) -> None:
    replayed, direct = _both_ways(monkeypatch, LookAlikes, (8, 12))
    assert replayed == direct


class Broadcasts(nn.Module):
    """Two calls with one replay key whose traffic differs: a broadcast (stride 0) tensor
    counts at most its storage's bytes, and the key does not fix the storage's size (a row
    of a 1 x 8 tensor, and a row of a 5 x 8 one, expanded alike). The remembered per-key
    figures (engine/summaries.py) must not carry one call's bytes to the other."""

    def forward(self, x: torch.Tensor) -> Any:
        small = torch.zeros(1, 8) + x[:1, :8]
        large = torch.zeros(5, 8) + x[:5, :8]
        return [small[0:1].expand(3, 8) * 2, large[0:1].expand(3, 8) * 2]


def test_broadcast_calls_with_one_key_replayed_or_not(monkeypatch: pytest.MonkeyPatch) -> None:
    replayed, direct = _both_ways(monkeypatch, Broadcasts, (8, 12))
    assert replayed == direct
    mul = replayed["layers"][0]["operators"]["aten.mul"]
    assert mul["read"] == 8 * 4 + 3 * 8 * 4  # its 1 x 8 storage, then its 3 x 8 elements (of a 5 x 8 storage)


def test_a_formula_registered_later_is_used_for_calls_seen_before() -> None:
    # The per-key figures are remembered only for the built-in formulas: a formula of the
    # user's, registered after the keys were seen, counts the very next analysis.
    replay.forget()
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU())
    before = tt.analyze(model, (2, 4))
    tt.analyze(model, (2, 4))
    tt.register_formula(torch.ops.aten.relu.default, lambda *args, out, **kwargs: tt.Cost(flops=1000))
    try:
        assert tt.analyze(model, (2, 4)).total_flops == before.total_flops - 8 + 1000
        assert tt.analyze(model, (2, 4), formulas={torch.ops.aten.relu.default: lambda *a, out, **k: tt.Cost(flops=7)}).total_flops == before.total_flops - 8 + 7
    finally:
        tt.unregister_formula(torch.ops.aten.relu.default)
    assert tt.analyze(model, (2, 4)).to_dict() == before.to_dict()
