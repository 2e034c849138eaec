"""Replaying known operator results in fake runs (torchtally.replay.ResultReplay) must be
invisible: same shapes, same aliasing, same errors as running every operator."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import torchtally as tt


class ViewsTwice(nn.Module):
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = x * 2
        first = y.view(-1)
        second = y.view(-1)  # same operator, same metadata: replayed
        # a replayed view must still share its input's storage
        assert second.untyped_storage()._cdata == y.untyped_storage()._cdata
        assert second._base is y
        second.add_(1)  # in place on a view: replayed after its first call below
        first.add_(1)
        return first, second


def test_replayed_views_alias_their_input() -> None:
    report = tt.analyze(ViewsTwice(), (2, 3))
    assert report.layer("").output_shapes == (((6,), (6,)),)
    assert report.total_flops == 6 + 6 + 6  # x * 2, then two in-place adds of 6 elements


class ResizesInPlace(nn.Module):
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a = x.clone()
        a.resize_(4, 5)
        b = x.clone()
        b.resize_(4, 5)  # the same call again: returning `self` untouched would keep shape (20,)
        return a, b


def test_operators_changing_metadata_in_place_are_never_replayed() -> None:
    report = tt.analyze(ResizesInPlace(), (20,))
    assert report.layer("").output_shapes == (((4, 5), (4, 5)),)


class MatmulTwice(nn.Module):
    def __init__(self, second_width: int) -> None:
        super().__init__()
        self.second_width = second_width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w1 = torch.ones(4, 3)
        w2 = torch.ones(self.second_width, 3)
        return (x @ w1) @ w2  # a wrong inner size must still raise after a good call


def test_replay_does_not_hide_shape_errors() -> None:
    tt.analyze(MatmulTwice(3), (2, 4))  # fills the replay with the good calls
    with pytest.raises(tt.ForwardError, match=r"\[2, 4\]"):
        tt.analyze(MatmulTwice(5), (2, 4))


class HalfOfIntegers(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 0.5  # an integer tensor times a Python float takes the default dtype


def test_results_follow_the_default_dtype() -> None:
    first = tt.analyze(HalfOfIntegers(), (3,), dtypes=[torch.long])
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        second = tt.analyze(HalfOfIntegers(), (3,), dtypes=[torch.long])
    finally:
        torch.set_default_dtype(previous)
    assert first.layer("").outputs[0][0].dtype == "float32"
    assert second.layer("").outputs[0][0].dtype == "float64"
