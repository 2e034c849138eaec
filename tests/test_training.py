"""training=True: forward and backward MACs/FLOPs derived by hand (the derivation is in the
comments, never copied from torchtally's output), where each backward operator is charged,
the guarantees (the user's parameters, gradients and optimizers are untouched) and errors.

Conventions (README, formulas/): a product costs result elements x contracted length MACs
and 2 FLOPs per MAC; a bias (the sum's initial value) adds nothing in the forward; a bias
gradient is a sum, 1 FLOP per summed grad-output element; ReLU and threshold_backward are
1 FLOP per element; views and ones_like are free. Backward of y = x @ W.t() + b:
grad_x = g @ W (only when x requires grad) and grad_W = g.t() @ x, each the forward's MACs.
Conv backward (formulas/backward.py): grad-input and grad-weight each cost the forward's MACs,
grad-input skipped for a first conv whose input needs no grad; bias gradient 1 per grad-output
element.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn
from torch._subclasses.fake_tensor import FakeTensor
from torch.nn import functional as F

import torchtally as tt
from helpers import Twice



def mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(20, 30), nn.ReLU(), nn.Linear(30, 10))


# ---------------------------------------------------------------------------------------------
# 3. Training FLOPs
# ---------------------------------------------------------------------------------------------
# MLP 20 -> 30 -> ReLU -> 10, batch 8.
#   forward:  linear 0: 8*30*20 = 4,800 MACs, 9,600 FLOPs;  ReLU: 8*30 = 240 FLOPs;
#             linear 2: 8*10*30 = 2,400 MACs, 4,800 FLOPs.          7,200 MACs, 14,640 FLOPs
#   backward (seed: ones 8x10, free):
#     linear 2: grad_h = g(8x10) @ W2(10x30): 8*30*10 = 2,400; grad_W2 = g.t() @ h: 10*30*8 = 2,400
#               -> 4,800 MACs, 9,600 FLOPs + bias grad sum over 8x10 = 80       = 9,680 FLOPs
#     ReLU:     threshold_backward over 8x30                                     = 240 FLOPs
#     linear 0: x needs no grad: only grad_W1 = g.t() @ x: 30*20*8 = 4,800 MACs, 9,600 FLOPs
#               + bias grad sum over 8x30 = 240                                 = 9,840 FLOPs
#   total backward: 9,600 MACs, 19,760 FLOPs


def test_mlp_training_flops_by_hand() -> None:
    r = tt.analyze(mlp(), (8, 20), training=True)
    assert r.training
    assert (r.forward_macs, r.forward_flops) == (7_200, 14_640)
    assert r.total_macs == r.forward_macs  # total_macs stays the forward's
    assert (r.backward_macs, r.backward_flops) == (9_600, 19_760)
    rows = {name: r.layer(name) for name in ("0", "1", "2")}
    assert (rows["0"].backward_macs, rows["0"].backward_flops) == (4_800, 9_840)
    assert (rows["1"].backward_macs, rows["1"].backward_flops) == (0, 240)
    assert (rows["2"].backward_macs, rows["2"].backward_flops) == (4_800, 9_680)
    # leaves hold their own backward; the root ran none of its own (ones_like is free)
    assert all(row.self_backward_macs == row.backward_macs for row in rows.values())
    assert sum(row.backward_macs for row in rows.values()) == r.backward_macs == r.layers[0].backward_macs
    assert sum(row.backward_flops for row in rows.values()) == r.backward_flops
    assert (r.layers[0].self_backward_macs, r.layers[0].self_backward_flops) == (0, 0)
    # one mm for the first layer, two for the second; threshold_backward on the ReLU's row
    assert rows["0"].backward_operators["aten.mm"].calls == 1
    assert rows["2"].backward_operators["aten.mm"].calls == 2
    assert rows["1"].backward_operators["aten.threshold_backward"].flops == 240
    assert "aten.mm" not in rows["1"].backward_operators
    assert r.uncounted_ops == {}


def test_input_requiring_grad_adds_the_first_layers_input_gradient() -> None:
    x = torch.randn(8, 20, requires_grad=True)
    r = tt.analyze(mlp(), input_data=x, training=True)
    # linear 0 also computes grad_x = g(8x30) @ W1(30x20): 8*20*30 = 4,800 MACs, 9,600 FLOPs
    assert (r.layer("0").backward_macs, r.layer("0").backward_flops) == (9_600, 19_440)
    assert (r.backward_macs, r.backward_flops) == (14_400, 29_360)
    assert r.layer("0").backward_operators["aten.mm"].calls == 2
    assert x.grad is None  # the model got a copy of the input


def test_loss_fn_is_the_backward_start() -> None:
    # loss = y.sum(): its gradient is a scalar 1 expanded (a view) to 8x10, so the backward is
    # the same 9,600 MACs and 19,760 FLOPs as with a gradient of ones.
    r = tt.analyze(mlp(), (8, 20), training=True, loss_fn=lambda y: y.sum())
    assert r.backward_macs == 9_600
    assert r.layer("2").backward_flops == 9_680


def test_loss_fn_forward_work_is_forward() -> None:
    r = tt.analyze(mlp(), (8, 20), training=True, loss_fn=lambda y: y.sum())
    # the sum over 8x10 = 80 FLOPs is forward work, like a loss computed inside forward()
    assert r.backward_flops == 19_760
    assert r.forward_flops == 14_640 + 80


def test_layer_called_twice_backward_on_its_row() -> None:
    r = tt.analyze(Twice(), (4, 16), training=True)
    lin = r.layer("lin")
    # forward: 2 calls x 4*16*16 = 2,048 MACs
    assert (lin.calls, r.forward_macs) == (2, 2_048)
    # backward: second call grad_h + grad_W, first call grad_W only (x needs no grad):
    # 3 mm x 1,024 = 3,072 MACs, 6,144 FLOPs; the two weight-gradient terms are added: 16*16 = 256
    assert (lin.backward_macs, lin.backward_flops) == (3_072, 6_400)
    assert lin.backward_operators["aten.mm"].calls == 3
    assert lin.backward_operators["aten.add"].flops == 256
    assert r.backward_flops == 6_400


def small_cnn() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),  # 0
        nn.ReLU(),  # 1
        nn.Conv2d(8, 16, 3, padding=1),  # 2
        nn.BatchNorm2d(16),  # 3
        nn.ReLU(),  # 4
        nn.MaxPool2d(2),  # 5
        nn.Flatten(),  # 6
        nn.Linear(16 * 4 * 4, 10),  # 7
    )


# Input 2x3x8x8.
#   conv 0: out 2x8x8x8 = 1,024 elements x (3*3*3 = 27)  = 27,648 MACs
#   conv 2: out 2x16x8x8 = 2,048 elements x (8*3*3 = 72) = 147,456 MACs
#   linear 7: 2*10*256                                    = 5,120 MACs
#   forward FLOPs: 2*27,648 + ReLU 1,024 + 2*147,456 + batch norm (train, affine) 8*2,048
#                  + ReLU 2,048 + max pool (2x2 window) 4*512 + 2*5,120 = 381,952
#   backward:
#     linear 7: grad_in 2*256*10 + grad_W 10*256*2 = 10,240 MACs; FLOPs 20,480 + bias sum 2*10 = 20,500
#     flatten: a view: 0
#     max pool: 1 per grad-output element (added at its argmax): 512
#     ReLU 4: 2,048;  ReLU 1: 1,024
#     batch norm (training statistics, affine, all three gradients): 13 per element: 26,624
#     conv 2: grad-input (its input needs grad) 147,456 + grad-weight 147,456 = 294,912 MACs;
#             FLOPs 589,824 + bias sum over 2x16x8x8 = 2,048 -> 591,872
#     conv 0: input needs no grad: grad-weight only 27,648 MACs; FLOPs 55,296 + bias 1,024 = 56,320
#   total backward: 332,800 MACs, 698,900 FLOPs
CNN_BACKWARD = {
    "0": (27_648, 56_320),
    "1": (0, 1_024),
    "2": (294_912, 591_872),
    "3": (0, 26_624),
    "4": (0, 2_048),
    "5": (0, 512),
    "6": (0, 0),
    "7": (10_240, 20_500),
}


def test_conv_net_forward_and_where_backward_operators_are_charged() -> None:
    r = tt.analyze(small_cnn(), (2, 3, 8, 8), training=True)
    assert (r.forward_macs, r.forward_flops) == (180_224, 381_952)
    # each backward kernel on the row whose forward made its autograd node
    assert r.layer("0").backward_operators["aten.convolution_backward"].calls == 1
    assert r.layer("2").backward_operators["aten.convolution_backward"].calls == 1
    assert "aten.convolution_backward" not in r.layer("7").backward_operators
    assert r.layer("3").backward_operators["aten.native_batch_norm_backward"].calls == 1
    assert r.layer("5").backward_operators["aten.max_pool2d_with_indices_backward"].calls == 1
    assert r.layer("1").backward_operators["aten.threshold_backward"].flops == 1_024
    assert r.layer("4").backward_operators["aten.threshold_backward"].flops == 2_048
    assert (r.layer("7").backward_macs, r.layer("7").backward_flops) == (10_240, 20_500)


def test_conv_net_backward_by_hand() -> None:
    r = tt.analyze(small_cnn(), (2, 3, 8, 8), training=True)
    assert r.uncounted_ops == {}
    got = {name: (r.layer(name).backward_macs, r.layer(name).backward_flops) for name in CNN_BACKWARD}
    assert got == CNN_BACKWARD
    assert (r.backward_macs, r.backward_flops) == (332_800, 698_900)
    assert sum(macs for macs, _ in CNN_BACKWARD.values()) == 332_800
    assert sum(flops for _, flops in CNN_BACKWARD.values()) == 698_900


def test_optimizer_flops_by_hand() -> None:
    # One steady-state step over the 95,000 weights of a bias-free 100-200-300-50 chain, per
    # element (pointwise 1 each, addcmul/addcdiv 2, lerp 3):
    #   sgd: param.add_(grad): 1;  momentum: buf.mul_, buf.add_, param.add_: 3;  nesterov: + grad.add: 4
    #   adam: lerp_ 3, mul_ 1, addcmul_ 2, sqrt 1, div 1, add_(eps) 1, addcdiv_ 2 = 11,
    #         + step += 1 on one scalar per parameter (3);  adamw: + param.mul_(1 - lr*wd): 12
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(100, 200, bias=False), nn.Linear(200, 300, bias=False), nn.Linear(300, 50, bias=False))
    n = 95_000
    expected = {"sgd": n, "sgd-momentum": 3 * n, "sgd-nesterov": 4 * n, "adam": 11 * n + 3, "adamw": 12 * n + 3}
    got = {name: tt.analyze(model, (8, 100), training=True, optimizer=name).optimizer_flops for name in expected}
    assert got == expected


# ---------------------------------------------------------------------------------------------
# 5. Hugging Face: backward from output.loss
# ---------------------------------------------------------------------------------------------


def test_gpt2_training_from_labels() -> None:
    transformers = pytest.importorskip("transformers")
    config = transformers.GPT2Config(n_layer=2, n_embd=64, n_head=4, vocab_size=100, n_positions=32)
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(config)
    ids = torch.randint(0, 100, (2, 16))
    r = tt.analyze(model, input_data={"input_ids": ids, "labels": ids}, training=True)
    # Parameters (lm_head is tied to wte: counted once):
    #   wte 100*64 + wpe 32*64 + per block (ln_1 128, c_attn 64*192+192, attn c_proj 64*64+64,
    #   ln_2 128, c_fc 64*256+256, mlp c_proj 256*64+64 = 49,984) x 2 + ln_f 128 = 108,544
    params = 100 * 64 + 32 * 64 + 2 * (128 + 64 * 192 + 192 + 64 * 64 + 64 + 128 + 64 * 256 + 256 + 256 * 64 + 64) + 128
    assert params == 108_544
    assert r.memory.parameters == params * 4
    # every trainable parameter is used, so every one gets a gradient; the tied one once
    assert r.memory.gradients == params * 4 == 434_176
    # the backward starts from output.loss: the loss's own backward ran (on the root row,
    # whose forward computed the loss)
    assert r.layers[0].backward_operators["aten.nll_loss_backward"].calls == 1
    # 32 tokens. Per block: c_attn 32*64*192 + c_proj 32*64*64 + c_fc 32*64*256 + c_proj 32*256*64
    # = 1,572,864; attention (train mode: dense, 4 heads x 2 sequences x 16x16 pairs x (16 + 16))
    # = 65,536. lm_head 32*64*100 = 204,800. Forward: 2 x 1,638,400 + 204,800 = 3,481,600.
    assert r.forward_macs == 3_481_600
    # Backward: every product has an input needing grad (hidden states) and a weight: 2x each
    # projection; attention's two bmm each get two bmm gradients: 2x. So exactly 2x forward.
    assert r.backward_macs == 2 * 3_481_600
    assert r.layer("lm_head").backward_macs == 2 * 204_800
    assert r.layer("transformer.h.0").backward_macs == 2 * 1_638_400
    assert r.memory.outputs == 2 * 16 * 100 * 4 + 4  # logits + the scalar loss


# ---------------------------------------------------------------------------------------------
# 4. Guarantees and errors
# ---------------------------------------------------------------------------------------------


def _snapshot(model: nn.Module) -> dict[str, Any]:
    return {
        "values": {name: p.detach().clone() for name, p in model.named_parameters()},
        "objects": {name: p for name, p in model.named_parameters()},
        "requires_grad": {name: p.requires_grad for name, p in model.named_parameters()},
        "grads": {name: p.grad for name, p in model.named_parameters()},
        "grad_values": {name: None if p.grad is None else p.grad.clone() for name, p in model.named_parameters()},
        "buffers": {name: b.clone() for name, b in model.named_buffers()},
        "training": {name: m.training for name, m in model.named_modules()},
    }


@pytest.mark.parametrize("run", ["fake", "real"])
def test_training_analysis_leaves_the_model_alone(run: str) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 30), nn.BatchNorm1d(30), nn.ReLU(), nn.Linear(30, 10))
    model[0].bias.requires_grad_(False)  # one frozen parameter
    earlier = torch.full_like(model[3].weight, 7.0)
    model[3].weight.grad = earlier  # a gradient the user already has
    model.eval()
    user_optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    user_optimizer.step()  # the user's optimizer has momentum buffers
    before_state = {id(p): s["momentum_buffer"].clone() for p, s in user_optimizer.state.items()}
    before = _snapshot(model)
    grad_mode = torch.is_grad_enabled()

    r = tt.analyze(model, (8, 20), training=True, optimizer="adam", run=run)

    assert r.training and r.execution == run and r.mode == "train"
    after = _snapshot(model)
    for name, value in before["values"].items():
        assert after["objects"][name] is before["objects"][name]
        assert torch.equal(after["values"][name], value), name
    assert after["requires_grad"] == before["requires_grad"]
    assert model[3].weight.grad is earlier and torch.equal(earlier, torch.full_like(earlier, 7.0))
    for name, grad in after["grads"].items():
        assert grad is before["grads"][name], name
    assert model[0].weight.grad is None
    for name, value in before["buffers"].items():  # running statistics not updated by the train-mode run
        assert torch.equal(after["buffers"][name], value), name
    assert after["training"] == before["training"]  # eval everywhere again
    assert torch.is_grad_enabled() == grad_mode
    # the user's optimizer is untouched
    assert set(before_state) == {id(p) for p in user_optimizer.state}
    for param, state in user_optimizer.state.items():
        assert torch.equal(state["momentum_buffer"], before_state[id(param)])


@pytest.mark.parametrize("run", ["fake", "real"])
def test_the_analysis_optimizer_never_sees_the_users_parameters(run: str) -> None:
    model = nn.Sequential(nn.Linear(20, 30), nn.ReLU(), nn.Linear(30, 10))
    made: list[tuple[torch.optim.Optimizer, list[nn.Parameter]]] = []

    def factory(params: list[nn.Parameter]) -> torch.optim.Optimizer:
        optimizer = torch.optim.Adam(params)
        made.append((optimizer, list(params)))
        return optimizer

    values = [p.detach().clone() for p in model.parameters()]
    r = tt.analyze(model, (8, 20), training=True, optimizer=factory, run=run)
    assert r.memory.optimizer_state == 2 * (20 * 30 + 30 + 30 * 10 + 10) * 4 + 4 * 4
    assert len(made) == 1
    optimizer, params = made[0]
    user = list(model.parameters())
    assert not any(p is q for p in params for q in user)
    assert all(isinstance(p, FakeTensor) for p in params)
    state = [v for s in optimizer.state.values() for v in s.values() if isinstance(v, torch.Tensor)]
    assert state and all(isinstance(v, FakeTensor) for v in state)
    for p, value in zip(model.parameters(), values):
        assert torch.equal(p, value) and p.grad is None


def test_frozen_model_cannot_be_trained() -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    model.requires_grad_(False)
    with pytest.raises(tt.InputError, match="requires grad"):
        tt.analyze(model, (3, 4), training=True)
    assert issubclass(tt.InputError, tt.TorchtallyError)


def test_unknown_optimizer_lists_the_names() -> None:
    with pytest.raises(tt.InputError) as info:
        tt.analyze(mlp(), (8, 20), training=True, optimizer="nope")
    message = str(info.value)
    assert "'nope'" in message
    for name in ("sgd", "sgd-momentum", "sgd-nesterov", "adam", "adamw", "adam-amsgrad", "rmsprop", "adagrad"):
        assert f"'{name}'" in message


def test_optimizer_or_loss_fn_without_training_is_refused() -> None:
    with pytest.raises(tt.InputError, match="training=True"):
        tt.analyze(mlp(), (8, 20), optimizer="sgd")
    with pytest.raises(tt.InputError, match="training=True"):
        tt.analyze(mlp(), (8, 20), loss_fn=lambda y: y.sum())


def test_inference_report_has_no_training_figures() -> None:
    r = tt.analyze(mlp(), (8, 20))
    assert not r.training and r.optimizer is None
    assert (r.backward_macs, r.backward_flops, r.optimizer_flops) == (0, 0, 0)
    assert all(layer.backward_macs == 0 and not layer.backward_operators for layer in r.layers)


def test_cross_entropy_loss_fn_backward() -> None:
    target = torch.tensor([1, 0, 3, 9, 2, 2, 5, 7])
    r = tt.analyze(mlp(), (8, 20), training=True, loss_fn=lambda y: F.cross_entropy(y, target))
    # the products are those of the MLP above; the loss's backward is on the root row
    assert r.backward_macs == 9_600
    assert r.layers[0].backward_operators["aten.nll_loss_backward"].calls == 1
    assert r.layers[0].backward_operators["aten._log_softmax_backward_data"].calls == 1


def test_training_analysis_works_under_no_grad_and_inference_mode() -> None:
    # backward of mlp() on (8, 20), input not requiring grad: layer 2's two matmuls
    # (8x30x10 each) + layer 0's weight gradient (8x20x30) = 4,800 + 4,800 = 9,600 MACs
    expected = 2 * 8 * 30 * 10 + 8 * 20 * 30
    for context in (torch.no_grad, torch.inference_mode):
        with context():
            report = tt.analyze(mlp(), (8, 20), training=True)
            assert not torch.is_grad_enabled()  # the caller's mode is back
        assert report.backward_macs == expected


def test_a_failing_loss_fn_is_named() -> None:
    with pytest.raises(tt.InputError, match="loss_fn raised ZeroDivisionError"):
        tt.analyze(mlp(), (8, 20), training=True, loss_fn=lambda y: 1 / 0)


def test_inference_tensor_parameters_cannot_train_for_real() -> None:
    with torch.inference_mode():
        model = nn.Linear(4, 2)
    with pytest.raises(tt.InputError, match="inference tensor"):
        tt.analyze(model, (3, 4), training=True, run="real")
    # on fake tensors they can: weight gradient only, 3x4x2
    assert tt.analyze(model, (3, 4), training=True).backward_macs == 3 * 4 * 2
