"""Measured time: latency and throughput of plain forward passes, each module's own and
inclusive time, and the guarantee that timing changes nothing."""

from __future__ import annotations

import time

import pytest
import torch
from torch import nn

import torchtally as tt

QUICK = tt.TimingOptions(warmup=1, repeats=3)  # the first plain pass follows one warm-up pass


class Sleeper(nn.Module):
    """Takes at least ``seconds`` per call, whatever the machine's speed."""

    def __init__(self, seconds: float):
        super().__init__()
        self.seconds = seconds

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        time.sleep(self.seconds)
        return x


class SlowBlock(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fast = nn.Linear(4, 4)
        self.slow = Sleeper(0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        time.sleep(0.01)  # the block's own work, outside its children
        return self.slow(self.fast(x))


def test_own_and_inclusive_times_follow_where_the_time_is_spent() -> None:
    report = tt.analyze(SlowBlock(), (8, 4), timing=QUICK)
    root, fast, slow = report.layer(""), report.layer("fast"), report.layer("slow")
    assert root.time is not None and root.self_time is not None
    assert slow.self_time is not None and fast.self_time is not None
    # The sleeps are lower bounds: 20 ms in `slow`, 10 ms of the root's own, 30 ms in all.
    assert slow.self_time >= 0.02
    assert root.self_time >= 0.01
    assert root.time >= 0.03
    # A child's inclusive time is part of its parent's; own = inclusive - children.
    assert root.time == pytest.approx(root.self_time + fast.time + slow.time)
    assert slow.time == pytest.approx(slow.self_time)  # a leaf is all its own


def test_rows_add_up_to_the_timed_pass_and_latency_has_its_spread() -> None:
    report = tt.analyze(SlowBlock(), (8, 4), timing=QUICK)
    timing = report.timing
    assert timing is not None
    assert sum(layer.self_time or 0.0 for layer in report.layers) == pytest.approx(timing.timed_mean)
    assert report.layer("").time == pytest.approx(timing.timed_mean)
    assert timing.latency_min <= timing.latency_median <= timing.latency_p90
    assert timing.latency_min >= 0.03  # every plain pass sleeps 30 ms
    assert timing.batch_size == 8
    assert timing.throughput == pytest.approx(8 / timing.latency_median)
    assert timing.overhead == pytest.approx(timing.timed_mean / timing.latency_mean - 1)
    assert (timing.repeats, timing.warmup, timing.clock) == (3, 1, "perf_counter")


def test_time_columns_and_footer() -> None:
    report = tt.analyze(SlowBlock(), (8, 4), timing=QUICK)
    text = report.table()
    header = text.splitlines()[1]
    assert header.rstrip().endswith("Time  Time %")
    assert "real forward passes after 1 warm-up, batch 8, perf_counter" in text
    assert "Per-module timers:" in text
    # Not timed: no time columns, null times in the data.
    plain = tt.analyze(SlowBlock(), (8, 4))
    assert "Time" not in plain.table().splitlines()[1]
    assert plain.timing is None and plain.layer("slow").time is None
    assert plain.to_dict()["timing"] is None


def test_time_percent_cells_add_up_to_a_hundred() -> None:
    report = tt.analyze(SlowBlock(), (8, 4), timing=QUICK)
    text = report.table(columns=["time_percent"])
    lines = text.splitlines()
    rows = lines[3 : lines.index(lines[0], 3)]
    percents = [float(line.split()[-1].rstrip("%")) for line in rows]
    assert sum(percents) == pytest.approx(100, abs=0.2)  # each cell rounded to 0.1


def test_timing_leaves_the_model_and_rng_untouched() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.Dropout(0.5))
    model.eval()
    before = {name: value.clone() for name, value in model.state_dict().items()}
    rng = torch.random.get_rng_state()
    # Train mode: BatchNorm updates its running statistics and Dropout draws random numbers
    # in every timed pass; both must be undone.
    tt.analyze(model, (8, 4), mode="train", timing=QUICK)
    assert not model.training
    for name, value in model.state_dict().items():
        assert torch.equal(value, before[name]), name
    assert torch.equal(torch.random.get_rng_state(), rng)
    assert all("forward" not in module.__dict__ for module in model.modules())


def test_a_forward_writing_its_own_weights_is_undone() -> None:
    class Decays(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.ones(4))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.weight.mul_(0.5)  # an in-place write, under no_grad
            return x * self.weight

    model = Decays()
    tt.analyze(model, (2, 4), timing=QUICK)
    assert torch.equal(model.weight.detach(), torch.ones(4))


def test_timing_needs_real_weights_and_good_options() -> None:
    with torch.device("meta"):
        model = nn.Linear(4, 4)
    with pytest.raises(tt.InputError, match="meta"):
        tt.analyze(model, (1, 4), timing=True)
    for bad in ("yes", 3, tt.TimingOptions):
        with pytest.raises(tt.InputError, match="timing must be"):
            tt.analyze(nn.Linear(4, 4), (1, 4), timing=bad)
    with pytest.raises(tt.InputError, match="repeats"):
        tt.TimingOptions(repeats=0)
    with pytest.raises(tt.InputError, match="warmup"):
        tt.TimingOptions(warmup=-1)


def test_a_failing_timed_pass_is_a_clear_error() -> None:
    class FailsLater(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.calls = 0

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.calls += 1
            if self.calls > 1:  # the counting run passes, the timed passes do not
                raise RuntimeError("out of patience")
            return x

    with pytest.raises(tt.TorchtallyError, match="timed forward passes failed.*out of patience"):
        tt.analyze(FailsLater(), (1, 4), timing=QUICK)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_timing_uses_events() -> None:
    model = nn.Linear(256, 256).cuda()
    report = tt.analyze(model, (64, 256), timing=QUICK)
    assert report.timing is not None and report.timing.clock == "cuda events"
    assert report.timing.latency_median > 0


class Recursive(nn.Module):
    """Calls itself ``depth`` times, sleeping 5 ms at each level: 15 ms per pass."""

    def forward(self, x: torch.Tensor, depth: int = 3) -> torch.Tensor:
        time.sleep(0.005)
        return self(x, depth - 1) if depth > 1 else x


def test_a_module_calling_itself_is_timed_once_per_pass() -> None:
    report = tt.analyze(Recursive(), (1, 4), timing=QUICK)
    assert report.timing is not None
    root = report.layer("")
    # Nested calls are not added once per level: the root's time is the pass's time.
    assert root.time == pytest.approx(report.timing.timed_mean)
    assert root.self_time == pytest.approx(root.time)
    assert root.time >= 0.015


def test_a_child_called_by_its_sibling_is_charged_to_the_caller_subtree_like_macs() -> None:
    class Outer(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.slow = Sleeper(0.01)
            self.caller = nn.Identity()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.slow(self.caller(x))

    report = tt.analyze(Outer(), (1, 4), timing=QUICK)
    # `time` sums own times over the module tree: the sleep is in `slow`, not in `caller`.
    assert report.layer("slow").time >= 0.01
    caller = report.layer("caller")
    assert caller.time is not None and caller.time < 0.01


def test_never_called_modules_have_no_time() -> None:
    class WithSpare(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.used = nn.Linear(4, 4)
            self.spare = nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.used(x)

    report = tt.analyze(WithSpare(), (2, 4), timing=QUICK)
    assert report.layer("spare").time is None and report.layer("spare").self_time is None
    assert report.layer("used").time is not None


def test_an_empty_batch_has_no_throughput() -> None:
    report = tt.analyze(nn.Linear(4, 4), (0, 4), timing=QUICK)
    assert report.timing is not None
    assert report.timing.batch_size == 0 and report.timing.throughput == 0


def test_a_failure_in_warm_up_names_the_module() -> None:
    class Picky(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if not isinstance(x, torch._subclasses.fake_tensor.FakeTensor):  # only real runs fail
                raise ValueError("real values rejected")
            return x

    model = nn.Sequential(nn.Linear(4, 4), Picky())
    with pytest.raises(tt.TorchtallyError, match=r"warm-up pass .* failed in module '1' \(Picky\).*real values rejected"):
        tt.analyze(model, (2, 4), timing=QUICK)


@pytest.mark.changes_model("a write first made during the timed passes cannot be undone: the error says so")
def test_a_weight_first_written_during_the_timed_passes_is_reported() -> None:
    class WritesLate(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.ones(4))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            type(self).passes += 1  # on the class: the analysis restores the instance's attributes
            if type(self).passes == 4:  # counting run, 1 warm-up, 1 plain pass: the 4th is timed
                self.weight.mul_(10)
            return x * self.weight

        passes = 0

    with pytest.raises(tt.TorchtallyError, match="wrote its parameters \\(weight\\) during the timed passes"):
        tt.analyze(WritesLate(), (2, 4), timing=QUICK)
