"""Activation checkpointing (torch.utils.checkpoint) in a training analysis: the recomputed
forward is backward work, charged to the module that recomputes it; the forward figures
(MACs, calls, recorded inputs/outputs, activations) are those of the model without it.
Numbers derived by hand in the comments (conventions as in test_training.py).

Model: x (4x16, no grad) -> first: Linear(16, 32) -> block: [Linear(32, 64), ReLU, Linear(64, 8)],
the block checkpointed (its input, first's output, requires grad, as reentrant checkpointing needs).
  forward:   first 4*32*16 = 2,048; block.0 4*64*32 = 8,192; block.2 4*8*64 = 2,048  -> 12,288 MACs
  backward without checkpointing (a Linear's backward = grad_x and grad_W, each its forward's MACs):
             first: x needs no grad, grad_W only 2,048; block.0 2*8,192 = 16,384;
             block.2 2*2,048 = 4,096                                               -> 22,528 MACs
  recompute: the block's forward once more, 8,192 + 2,048 = 10,240 MACs, charged to the rows
             that ran it: block.0 16,384 + 8,192 = 24,576; block.2 4,096 + 2,048 = 6,144
                                                                   backward: 22,528 + 10,240 = 32,768
  non-reentrant with early stop (PyTorch's default): recomputation stops once every tensor the
             forward saved is recomputed; addmm saves its inputs before it runs, so block.2's
             addmm is not rerun: recompute 8,192 -> backward 30,720, block.2 keeps 4,096.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.checkpoint import checkpoint, set_checkpoint_early_stop

import torchtally as tt
from torchtally.report import ModelReport

FORWARD = 12_288
BACKWARD = 22_528
RECOMPUTE = 10_240


class Chain(nn.Module):
    def __init__(self, reentrant: bool | None) -> None:
        """``reentrant`` None: no checkpointing; else checkpoint ``block`` with that variant."""
        super().__init__()
        torch.manual_seed(0)
        self.first = nn.Linear(16, 32)
        self.block = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 8))
        self.reentrant = reentrant

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.first(x)
        if self.reentrant is None:
            return self.block(h)  # type: ignore[no-any-return]
        return checkpoint(self.block, h, use_reentrant=self.reentrant)  # type: ignore[no-any-return]


def analyze(reentrant: bool | None, run: str = "fake") -> ModelReport:
    return tt.analyze(Chain(reentrant), (4, 16), training=True, run=run)


def test_without_checkpointing_by_hand() -> None:
    r = analyze(None)
    assert (r.forward_macs, r.backward_macs) == (FORWARD, BACKWARD)
    assert [r.layer(n).backward_macs for n in ("first", "block.0", "block.2")] == [2_048, 16_384, 4_096]


@pytest.mark.parametrize("run", ["fake", "real"])
def test_reentrant_recompute_is_backward_work_of_the_block(run: str) -> None:
    plain, r = analyze(None, run), analyze(True, run)
    assert r.forward_macs == plain.forward_macs == FORWARD
    assert r.backward_macs == BACKWARD + RECOMPUTE == 32_768
    assert (r.layer("block.0").backward_macs, r.layer("block.2").backward_macs) == (24_576, 6_144)
    assert r.layer("block").backward_macs == 30_720
    assert r.layer("first").backward_macs == 2_048
    # the recomputed graph's backward is the block's, not the root's (its nodes are labelled)
    assert r.layers[0].self_backward_macs == 0
    # forward ops recomputed: one more addmm per block Linear, one more relu
    assert r.layer("block.0").backward_operators["aten.addmm"].macs == 8_192
    assert r.layer("block.1").backward_operators["aten.relu"].calls == 1
    # recompute FLOPs: 2 per MAC + ReLU 4*64 = 256
    assert r.backward_flops - plain.backward_flops == 2 * RECOMPUTE + 256
    assert r.forward_flops == plain.forward_flops


def test_non_reentrant_recompute_stops_early() -> None:
    plain, r = analyze(None), analyze(False)
    assert r.forward_macs == FORWARD
    assert r.backward_macs == BACKWARD + 8_192 == 30_720
    assert (r.layer("block.0").backward_macs, r.layer("block.2").backward_macs) == (24_576, 4_096)
    assert "aten.addmm" not in r.layer("block.2").backward_operators
    assert r.layers[0].self_backward_macs == 0
    assert r.forward_flops == plain.forward_flops


def test_non_reentrant_without_early_stop_recomputes_the_whole_block() -> None:
    with set_checkpoint_early_stop(False):
        r = analyze(False)
    assert (r.forward_macs, r.backward_macs) == (FORWARD, BACKWARD + RECOMPUTE)
    assert (r.layer("block.0").backward_macs, r.layer("block.2").backward_macs) == (24_576, 6_144)
    assert r.layers[0].self_backward_macs == 0


@pytest.mark.parametrize("reentrant", [True, False])
def test_recompute_is_not_a_call(reentrant: bool) -> None:
    plain, r = analyze(None), analyze(reentrant)
    for name in ("block", "block.0", "block.1", "block.2"):
        row, ref = r.layer(name), plain.layer(name)
        assert row.calls == 1
        assert (row.inputs, row.outputs, row.output_bytes) == (ref.inputs, ref.outputs, ref.output_bytes)
    assert r.memory.activations == plain.memory.activations
    # forward costs stay where the forward put them
    assert [r.layer(n).self_macs for n in ("first", "block.0", "block.2")] == [2_048, 8_192, 2_048]


def test_inference_of_a_checkpointed_model_is_its_forward() -> None:
    r = tt.analyze(Chain(False), (4, 16))
    assert (r.forward_macs, r.backward_macs, r.layer("block").calls) == (FORWARD, 0, 1)
