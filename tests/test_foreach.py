"""Multi-tensor (`_foreach_*`) operators cost their single-tensor form on every tensor."""

from __future__ import annotations

import functools

import pytest
import torch
from torch import nn

import torchtally as tt


def _mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 8))


PARAMS = 32 * 64 + 64 + 64 * 8 + 8  # 2,632 elements


@pytest.mark.parametrize(
    ("optimizer", "settings"),
    [
        (torch.optim.SGD, {"lr": 0.1, "momentum": 0.9}),
        (torch.optim.Adam, {}),
        (torch.optim.AdamW, {}),
        (torch.optim.RMSprop, {}),
    ],
)
def test_foreach_step_costs_the_same_as_the_for_loop(optimizer: type[torch.optim.Optimizer], settings: dict[str, float]) -> None:
    # Both implementations do the same arithmetic, one tensor at a time or a list at a time.
    reports = [
        tt.analyze(_mlp(), (4, 32), training=True, optimizer=functools.partial(optimizer, foreach=foreach, **settings))
        for foreach in (False, True)
    ]
    assert not reports[1].uncounted_ops
    assert reports[0].optimizer_flops == reports[1].optimizer_flops > 0


def test_foreach_adam_by_hand() -> None:
    # Adam's multi-tensor step per parameter element: lerp_ of exp_avg 3, mul_ of exp_avg_sq 1,
    # addcmul_ 2, sqrt 1, div_ 1, add_ eps 1, addcdiv_ into the parameter 2 = 11; and the step
    # counters (one float32 scalar per parameter tensor, 4 of them) += 1 each.
    report = tt.analyze(_mlp(), (4, 32), training=True, optimizer=functools.partial(torch.optim.Adam, foreach=True))
    assert report.optimizer_flops == 11 * PARAMS + 4


def test_foreach_adagrad_has_its_extra_multiply() -> None:
    # The multi-tensor Adagrad scales the gradients by -lr in a separate _foreach_mul before
    # addcdiv_ (the for-loop folds it into addcdiv_'s value): one more FLOP per element.
    loop, lists = (
        tt.analyze(_mlp(), (4, 32), training=True, optimizer=functools.partial(torch.optim.Adagrad, foreach=f))
        for f in (False, True)
    )
    assert lists.optimizer_flops == loop.optimizer_flops + PARAMS
