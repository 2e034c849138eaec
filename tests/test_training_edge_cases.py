"""training=True on the unusual cases: lazy modules, inputs that require grad or are passed
twice, a loss_fn that needs real values, sparse gradients, a failing optimizer step and a
failing backward. Expected numbers are derived by hand in the comments (conventions as in
test_training.py: a product costs result elements x contracted length MACs, 2 FLOPs each;
bias gradients are sums, 1 FLOP per summed element; ReLU and its backward 1 FLOP each)."""

from __future__ import annotations

import functools
from typing import Any

import pytest
import torch
from torch import nn
from torch.nn.parameter import UninitializedParameter
from torch.utils.checkpoint import checkpoint

import torchtally as tt
from torchtally.engine import memory, optim
from torchtally.errors import InputError, TorchtallyError

# MLP 20 -> 30 -> ReLU -> 10, batch 8 (the same derivation as test_training.py):
#   forward:  8*30*20 + 8*10*30 = 4,800 + 2,400 = 7,200 MACs;
#             FLOPs 2*7,200 + ReLU 8*30 = 14,640
#   backward: linear 2: grad_h 8*30*10 + grad_W2 10*30*8 = 4,800 MACs, + bias sum 8*10 = 80
#             ReLU backward 8*30 = 240 FLOPs
#             linear 0 (x needs no grad): grad_W1 30*20*8 = 4,800 MACs, + bias sum 8*30 = 240
#             -> 9,600 MACs, 2*9,600 + 80 + 240 + 240 = 19,760 FLOPs
#   with x requiring grad, linear 0 also computes grad_x = g(8x30) @ W1(30x20): 8*20*30 = 4,800
#             -> 14,400 MACs, 29,360 FLOPs (layer 0: 9,600 MACs, 2*9,600 + 240 = 19,440 FLOPs)
# Parameters: 20*30 + 30 + 30*10 + 10 = 940 float32 = 3,760 bytes.


def mlp(first: nn.Module | None = None) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(first if first is not None else nn.Linear(20, 30), nn.ReLU(), nn.Linear(30, 10))


# ---------------------------------------------------------------------------------------------
# Lazy modules
# ---------------------------------------------------------------------------------------------


def test_lazy_model_trains_on_a_copy_with_hand_derived_macs() -> None:
    model = mlp(nn.LazyLinear(30))
    last_weight = model[2].weight.detach().clone()
    r = tt.analyze(model, (8, 20), training=True, optimizer="adam")
    assert r.execution == "real" and r.fallback_reason is not None and "lazy" in r.fallback_reason
    assert (r.forward_macs, r.forward_flops) == (7_200, 14_640)
    assert (r.backward_macs, r.backward_flops) == (9_600, 19_760)
    assert (r.layer("0").backward_macs, r.layer("2").backward_macs) == (4_800, 4_800)
    assert r.total_params == 940
    assert r.memory.gradients == 3_760  # every parameter, the materialised lazy ones included
    # Adam: exp_avg and exp_avg_sq per parameter (2 * 3,760) + a float32 step per tensor (4 * 4)
    assert r.memory.optimizer_state == 7_536
    # The user's model is untouched: still lazy, no gradients, same values.
    assert isinstance(model[0].weight, UninitializedParameter)
    assert isinstance(model[0].bias, UninitializedParameter)
    assert model[2].weight.grad is None and model[2].bias.grad is None
    assert torch.equal(model[2].weight, last_weight)


def test_lazy_model_still_refuses_a_fake_training_run() -> None:
    with pytest.raises(InputError, match="lazy"):
        tt.analyze(mlp(nn.LazyLinear(30)), (8, 20), training=True, run="fake")


# ---------------------------------------------------------------------------------------------
# User inputs: requires_grad kept, one tensor passed twice stays one
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("run", ["fake", "real"])
def test_input_requiring_grad_counts_its_gradient_in_every_run(run: str) -> None:
    x = torch.randn(8, 20, requires_grad=True)
    r = tt.analyze(mlp(), input_data=x, training=True, run=run)
    assert r.execution == run
    assert (r.backward_macs, r.backward_flops) == (14_400, 29_360)
    assert (r.layer("0").backward_macs, r.layer("0").backward_flops) == (9_600, 19_440)
    assert r.layer("0").backward_operators["aten.mm"].calls == 2  # grad_x and grad_W1
    assert x.grad is None and x.requires_grad  # the model got a copy


class SameLinearTwice(nn.Module):
    def __init__(self, seen: list[bool]) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 3)
        self.note = seen.append  # a list attribute would be model state, emptied after the analysis

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self.note(x is y)
        return self.lin(x) + self.lin(y)


@pytest.mark.parametrize("run", ["fake", "real"])
def test_one_tensor_passed_twice_is_one_input(run: str) -> None:
    seen: list[bool] = []
    t = torch.randn(2, 4)
    r = tt.analyze(SameLinearTwice(seen), input_data=(t, t), run=run)
    assert r.execution == run
    assert seen == [True]  # the forward got one tensor twice, as the user passed it
    assert r.memory.inputs == 2 * 4 * 4  # one 2x4 float32 storage, counted once


# ---------------------------------------------------------------------------------------------
# A loss_fn that needs real values
# ---------------------------------------------------------------------------------------------


def loss_by_item(output: torch.Tensor) -> torch.Tensor:
    loss = output.sum()
    return loss if loss.item() > 0 else -loss


def loss_by_branch(output: torch.Tensor) -> torch.Tensor:
    loss = output.sum()
    return loss if loss > 0 else -loss


@pytest.mark.parametrize("loss_fn", [loss_by_item, loss_by_branch])
def test_loss_fn_needing_values_falls_back_to_a_real_run(loss_fn: Any) -> None:
    r = tt.analyze(mlp(), (8, 20), training=True, loss_fn=loss_fn)
    assert r.execution == "real"
    assert r.fallback_reason is not None and "loss_fn needs real values" in r.fallback_reason
    # sum's gradient is an expand (free), a negation (if taken) is elementwise: the MACs are
    # the MLP's backward either way.
    assert r.backward_macs == 9_600


@pytest.mark.parametrize("loss_fn", [loss_by_item, loss_by_branch])
def test_loss_fn_needing_values_in_a_fake_run_is_a_clear_error(loss_fn: Any) -> None:
    with pytest.raises(TorchtallyError, match="loss_fn needs real values") as caught:
        tt.analyze(mlp(), (8, 20), training=True, loss_fn=loss_fn, run="fake")
    assert not isinstance(caught.value, InputError)  # the loss_fn is fine; fake tensors are not


def test_a_loss_fn_that_is_wrong_is_still_an_input_error() -> None:
    def broken(output: torch.Tensor) -> torch.Tensor:
        raise KeyError("logits")

    with pytest.raises(InputError, match="loss_fn raised KeyError"):
        tt.analyze(mlp(), (8, 20), training=True, loss_fn=broken)


# ---------------------------------------------------------------------------------------------
# Sparse gradients
# ---------------------------------------------------------------------------------------------


class SparseEmbedding(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(1000, 16, sparse=True)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.emb(ids)


IDS = torch.tensor([[3, 7, 3, 9, 7]])  # 5 ids, 3 distinct


def test_embedding_sparse_gradient_is_uncoalesced() -> None:
    # The derivation below rests on this: embedding's sparse backward keeps one row per id.
    emb = nn.Embedding(1000, 16, sparse=True)
    emb(IDS).sum().backward()
    grad = emb.weight.grad
    assert grad is not None and grad.layout == torch.sparse_coo and not grad.is_coalesced()
    assert grad._indices().shape == (1, 5) and grad._values().shape == (5, 16)


@pytest.mark.parametrize("run", ["fake", "real"])
def test_sparse_gradient_counts_indices_and_values(run: str) -> None:
    r = tt.analyze(SparseEmbedding(), input_data=IDS, training=True, run=run)
    assert r.execution == run
    # indices 1 x 5 int64 = 40 bytes + values 5 x 16 float32 = 320 bytes; the dense size
    # (1000 x 16 float32 = 64,000 bytes) would be wrong.
    assert r.memory.gradients == 40 + 320


def test_dense_embedding_gradient_is_the_full_table() -> None:
    model = nn.Sequential(nn.Embedding(1000, 16))
    assert tt.analyze(model, input_data=IDS, training=True).memory.gradients == 1000 * 16 * 4


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")
def test_tensor_bytes_of_sparse_layouts() -> None:
    eye = torch.eye(3)
    # COO, coalesced: indices 2 x 3 int64 = 48 + values 3 float32 = 12
    assert memory.tensor_bytes(eye.to_sparse()) == 60
    # CSR: crow_indices 4 int64 = 32 + col_indices 3 int64 = 24 + values 3 float32 = 12
    assert memory.tensor_bytes(eye.to_sparse_csr()) == 68
    assert memory.tensor_bytes(eye) == 36


# ---------------------------------------------------------------------------------------------
# A failing optimizer step, a failing backward
# ---------------------------------------------------------------------------------------------


def test_failing_optimizer_step_stops_its_live_set(monkeypatch: pytest.MonkeyPatch) -> None:
    stopped: list[bool] = []

    class WatchedLiveSet(memory.LiveSet):
        def stop(self) -> None:
            stopped.append(True)
            super().stop()

    class Failing(torch.optim.SGD):
        def step(self, closure: Any = None) -> Any:
            raise RuntimeError("no step today")

    monkeypatch.setattr(optim, "LiveSet", WatchedLiveSet)
    with pytest.raises(InputError, match="no step today"):
        tt.analyze(mlp(), (8, 20), training=True, optimizer=functools.partial(Failing, lr=0.1))
    assert stopped == [True]


class FailsOnRecompute(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.calls = [0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls[0] += 1
        if self.calls[0] > 1:
            raise RuntimeError("cannot run twice")
        return self.lin(x)


class Checkpointed(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.block = FailsOnRecompute()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return checkpoint(self.block, x, use_reentrant=False)  # type: ignore[no-any-return]


class NoBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        return x * 2

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        raise ValueError("no backward")


class CustomFunction(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return NoBackward.apply(self.lin(x))  # type: ignore[no-any-return]


@pytest.mark.parametrize("run", ["fake", "real"])
def test_backward_failure_in_a_recomputed_forward_names_the_module(run: str) -> None:
    with pytest.raises(TorchtallyError, match=r"backward pass failed in module 'block' \(FailsOnRecompute\)"):
        tt.analyze(Checkpointed(), (2, 4), training=True, run=run)


@pytest.mark.parametrize("run", ["fake", "real"])
def test_backward_failure_in_an_autograd_node_is_chained(run: str) -> None:
    # Autograd's error does not say which node failed, so no module is named.
    with pytest.raises(TorchtallyError, match=r"backward pass failed \(ValueError: no backward\)") as caught:
        tt.analyze(CustomFunction(), (2, 4), training=True, run=run)
    assert isinstance(caught.value.__cause__, ValueError)
