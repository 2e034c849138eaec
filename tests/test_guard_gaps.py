"""The cases that broke guarantee 1 ("analysis changes nothing") before the guard learnt
them, one test per case: containers the forward fills, hooks it registers, plain tensor
attributes it writes, Python's and numpy's RNG, inputs that ``deepcopy`` refuses, other
threads calling the model, and global torch state (default dtype, grad mode, autocast,
recursion limit). Each asserts the user-visible consequence directly (values, not names)."""

from __future__ import annotations

import random
import sys
import threading
import warnings
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn
from torch._subclasses.fake_tensor import FakeTensor

import torchtally as tt

RUNS = ("auto", "real")


class Caches(nn.Module):
    """Fills a dict, appends to a list and to a nested list, adds to a set: in every call."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.cache: dict[str, torch.Tensor] = {"kept": torch.ones(1)}
        self.hist: list[torch.Tensor] = []
        self.nested: dict[str, list[Any]] = {"calls": [0]}
        self.seen: set[str] = set()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.lin(x)
        if "b" not in self.cache:
            self.cache["b"] = y.detach()
        self.cache["kept"] = y.detach()[0, :1]  # an entry that was there is replaced
        self.hist.append(y.detach())
        self.nested["calls"].append(1)
        self.seen.add("called")
        return y + self.cache["b"]


@pytest.mark.parametrize("run", RUNS)
def test_containers_the_forward_fills_are_restored(run: str) -> None:
    model = Caches()
    kept = model.cache["kept"]
    tt.analyze(model, (2, 4), run=run)
    assert list(model.cache) == ["kept"] and model.cache["kept"] is kept
    assert model.hist == [] and model.nested == {"calls": [0]} and model.seen == set()
    # the user's next real forward computes with real tensors, not leftovers of the analysis
    out = model(torch.ones(2, 4))
    assert not isinstance(out, FakeTensor) and out.device.type == "cpu"
    assert torch.equal(out, model.lin(torch.ones(2, 4)) * 2)


def _hook(module: nn.Module, args: Any, output: Any) -> None:
    return None


class RegistersHooks(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.lin.register_forward_hook(_hook)
        self.lin.register_forward_pre_hook(lambda m, a: None)
        self.register_full_backward_hook(lambda m, gi, go: None)
        self.lin.register_state_dict_pre_hook(lambda m, prefix, keep_vars: None)
        nn.modules.module.register_module_forward_hook(_hook)
        self.lin.weight.register_hook(lambda g: g)
        return self.lin(x)


@pytest.mark.parametrize("run", RUNS)
def test_hooks_registered_during_the_run_are_removed_and_the_users_kept(run: str) -> None:
    model = RegistersHooks()
    mine = model.lin.register_forward_hook(_hook)
    try:
        tt.analyze(model, (2, 4), run=run)
        assert list(model.lin._forward_hooks.values()) == [_hook]  # the user's, and only it
        assert len(model.lin._forward_pre_hooks) == 0 and len(model._backward_hooks) == 0
        assert len(model.lin._state_dict_pre_hooks) == 0
        assert len(nn.modules.module._global_forward_hooks) == 0
        assert not model.lin.weight._backward_hooks
    finally:
        mine.remove()
        nn.modules.module._global_forward_hooks.clear()


class WritesPlainTensor(nn.Module):
    """A tensor attribute that is neither a parameter nor a buffer, written in place."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.scale = torch.ones(4)
        self.tables = [torch.zeros(3)]  # one inside a container, too

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.scale.mul_(2)
        self.tables[0].add_(1)
        return self.lin(x) * self.scale


def test_a_plain_tensor_attribute_written_in_a_real_run_is_restored() -> None:
    model = WritesPlainTensor()
    scale, table = model.scale, model.tables[0]
    tt.analyze(model, (2, 4), run="real")
    assert model.scale is scale and torch.equal(scale, torch.ones(4))
    assert model.tables[0] is table and torch.equal(table, torch.zeros(3))


class DrawsRandom(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        random.random()
        np.random.rand()
        return self.lin(x) * random.choice([1.0, 2.0])


@pytest.mark.parametrize("run", RUNS)
def test_pythons_and_numpys_random_states_are_unchanged(run: str) -> None:
    python_state, numpy_state = random.getstate(), np.random.get_state()
    tt.analyze(DrawsRandom(), (2, 4), run=run)
    assert random.getstate() == python_state
    after = np.random.get_state()
    assert after[0] == numpy_state[0] and np.array_equal(after[1], numpy_state[1]) and after[2:] == numpy_state[2:]


class Locked:
    """An input that deepcopy refuses: it holds a lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.x = torch.ones(2, 4)
        self.extra: dict[str, torch.Tensor] = {"y": torch.zeros(2, 4)}


class TakesLocked(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.got: list[int] = []

    def forward(self, batch: Locked) -> torch.Tensor:
        self.got.append(id(batch))
        batch.x = self.lin(batch.x)  # a forward that writes to its input
        return batch.x + batch.extra["y"]


@pytest.mark.parametrize("run", RUNS)
def test_an_input_deepcopy_refuses_is_copied_never_handed_to_the_model(run: str) -> None:
    batch = Locked()
    x, extra, lock = batch.x, batch.extra, batch.lock
    seen: list[int] = []
    model = TakesLocked()
    model.register_forward_pre_hook(lambda m, args: seen.append(id(args[0])))
    report = tt.analyze(model, input_data=batch, run=run)
    assert report.total_macs == 2 * 4 * 4  # the Linear ran on the copy
    assert id(batch) not in seen  # the model got a copy
    assert batch.x is x and batch.extra is extra and batch.lock is lock and list(extra) == ["y"]
    assert not isinstance(batch.x, FakeTensor) and torch.equal(batch.x, torch.ones(2, 4))


class Slotted:
    """No __dict__ and no copy protocol: cannot be rebuilt either."""

    __slots__ = ("x", "lock")

    def __init__(self) -> None:
        self.x = torch.ones(2, 4)
        self.lock = threading.Lock()

    def __reduce_ex__(self, protocol: object) -> Any:
        raise TypeError("Slotted objects cannot be copied")


def test_an_input_that_cannot_be_copied_at_all_is_an_input_error_naming_it() -> None:
    class M(nn.Module):
        def forward(self, batch: Slotted) -> torch.Tensor:
            return batch.x * 2

    with pytest.raises(tt.InputError, match=r"Slotted"):
        tt.analyze(M(), input_data={"batch": Slotted()})


class Slow(nn.Module):
    """Signals once its forward runs and waits, so another thread can call the model meanwhile."""

    def __init__(self, entered: threading.Event, release: threading.Event) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.entered, self.release = entered, release

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if threading.current_thread() is not threading.main_thread() and not self.entered.is_set():
            self.entered.set()
            self.release.wait(10)
        return self.lin(x)


def test_another_thread_calling_the_model_does_not_change_the_report() -> None:
    entered, release = threading.Event(), threading.Event()
    model = Slow(entered, release)
    results: dict[str, Any] = {}

    def analyse() -> None:
        results["report"] = tt.analyze(model, (2, 4), run="real")

    worker = threading.Thread(target=analyse)
    worker.start()
    assert entered.wait(10)
    # While the analysis is inside the forward: the main thread calls the model, with another shape.
    with torch.no_grad():
        out = model(torch.ones(5, 4))
    release.set()
    worker.join(20)
    report = results["report"]
    root = report.layers[0]
    lin = next(layer for layer in report.layers if layer.name == "lin")
    assert root.calls == 1 and lin.calls == 1  # only the analysis's own call
    assert [[spec.shape for spec in call] for call in lin.inputs] == [[(2, 4)]]  # one call, one tensor
    assert report.total_macs == 2 * 4 * 4
    assert out.shape == (5, 4) and not isinstance(out, FakeTensor)


def test_two_analyses_in_two_threads_at_once_both_work() -> None:
    # Decision: analyses run one at a time in a process (a lock); a second one waits, then works.
    models = [nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4)) for _ in range(2)]
    shared = nn.Linear(8, 8)
    reports: dict[int, tt.ModelReport] = {}
    errors: list[BaseException] = []

    def analyse(i: int) -> None:
        try:
            for _ in range(5):
                reports[i] = tt.analyze(models[i], (3, 8), run="real" if i else "auto")
                tt.analyze(shared, (2, 8))
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            errors.append(exc)

    threads = [threading.Thread(target=analyse, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    for report in reports.values():
        assert report.total_macs == 3 * (8 * 16 + 16 * 4)  # rows x (in x out) per Linear
        assert [layer.calls for layer in report.layers] == [1, 1, 1, 1]
    assert "forward" not in vars(shared) and all("forward" not in vars(m) for model in models for m in model.modules())


class ChangesGlobals(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        torch.set_default_dtype(torch.float64)
        torch.set_autocast_enabled("cpu", True)
        torch.set_autocast_dtype("cpu", torch.float16)
        sys.setrecursionlimit(sys.getrecursionlimit() + 1234)
        return self.lin(x)


@pytest.mark.parametrize("run", RUNS)
@pytest.mark.parametrize("grad", [True, False])
def test_global_torch_state_is_restored(run: str, grad: bool) -> None:
    before = (torch.get_default_dtype(), torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu"), sys.getrecursionlimit())
    try:
        with torch.set_grad_enabled(grad):
            tt.analyze(ChangesGlobals(), (2, 4), run=run)
            assert torch.is_grad_enabled() == grad
        after = (torch.get_default_dtype(), torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu"), sys.getrecursionlimit())
        assert after == before
    finally:
        torch.set_default_dtype(before[0])
        torch.set_autocast_enabled("cpu", before[1])
        torch.set_autocast_dtype("cpu", before[2])
        sys.setrecursionlimit(before[3])


# -- found by a review that tried to break the guard (each failed before its fix) -------------


class EmptyLog:
    """An input object holding no tensor yet: the forward fills it."""

    def __init__(self) -> None:
        self.entries: list[torch.Tensor] = []


class FillsItsInput(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor, log: EmptyLog) -> torch.Tensor:
        y = self.lin(x)
        log.entries.append(y)
        return y


@pytest.mark.parametrize("run", RUNS)
def test_an_input_without_tensors_is_copied_too(run: str) -> None:
    log = EmptyLog()
    tt.analyze(FillsItsInput(), input_data={"x": torch.ones(2, 4), "log": log}, run=run)
    assert log.entries == []


def test_an_input_that_cannot_be_copied_is_an_input_error_not_consumed() -> None:
    class TakesAnIterator(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(4, 4)

        def forward(self, xs: Any) -> torch.Tensor:
            return self.lin(next(xs))

    generator = (t for t in [torch.ones(2, 4)])
    with pytest.raises(tt.InputError, match=r"generator"):
        tt.analyze(TakesAnIterator(), input_data={"xs": generator})
    assert next(generator).shape == (2, 4)  # not consumed by the analysis


class SelfCopying:
    def __init__(self) -> None:
        self.x = torch.ones(2, 4)

    def __deepcopy__(self, memo: dict[int, Any]) -> SelfCopying:
        return self  # "copying" hands back the same object


class WritesInput(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, batch: SelfCopying) -> torch.Tensor:
        batch.x = self.lin(batch.x)
        return batch.x


def test_an_input_whose_deepcopy_returns_itself_is_rebuilt() -> None:
    batch = SelfCopying()
    x = batch.x
    tt.analyze(WritesInput(), input_data={"batch": batch}, run="real")
    assert batch.x is x and torch.equal(x, torch.ones(2, 4))


class ClassCache(nn.Module):
    _cache: dict[int, torch.Tensor] = {}  # shared by every instance (a rotary-embedding table)

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] not in self._cache:
            self._cache[x.shape[0]] = torch.ones_like(x)
        return self.lin(x) * self._cache[x.shape[0]]


def test_a_class_level_cache_is_restored() -> None:
    ClassCache._cache.clear()
    model = ClassCache()
    tt.analyze(model, (2, 4))
    assert ClassCache._cache == {}
    assert not isinstance(model(torch.ones(2, 4)), FakeTensor)


class HoldsOptimizer(nn.Module):
    """Test-time adaptation: steps an optimizer it holds, in its forward."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.opt = torch.optim.SGD(self.lin.parameters(), lr=0.1, momentum=0.9)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            loss = self.lin(x).pow(2).mean()
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()
        return self.lin(x)


@pytest.mark.parametrize("run", RUNS)
def test_an_optimizer_the_model_holds_keeps_its_state(run: str) -> None:
    model = HoldsOptimizer()
    tt.analyze(model, (3, 4), run=run)
    assert dict(model.opt.state) == {}


class HugeAttribute(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.vocabulary = [[] for _ in range(210_000)]  # more than any walk budget (was 200,000 for the whole model)
        self.inner = Caches()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x)


def test_a_huge_attribute_does_not_starve_the_others() -> None:
    model = HugeAttribute()
    tt.analyze(model, (2, 4))
    assert list(model.inner.cache) == ["kept"] and model.inner.hist == []
    assert not isinstance(model(torch.ones(2, 4)), FakeTensor)


class Hidden(nn.Module):
    """Keeps a module in a dict attribute, outside the module tree."""

    def __init__(self, helper: nn.Module) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.helpers = {"bn": nn.BatchNorm1d(4).train(), "inner": helper}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.helpers["inner"](self.helpers["bn"](self.lin(x)))


@pytest.mark.parametrize("run", RUNS)
def test_a_module_kept_outside_the_tree_is_guarded_too(run: str) -> None:
    inner = Caches()
    model = Hidden(inner)
    tt.analyze(model, (2, 4), run=run)
    assert list(inner.cache) == ["kept"] and inner.hist == []
    assert int(model.helpers["bn"].num_batches_tracked) == 0


class SwapsPlainData(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.mask = torch.ones(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.mask.data = torch.zeros(4)
        self.mask.requires_grad_(True)
        return self.lin(x) * self.mask


@pytest.mark.parametrize("run", RUNS)
def test_a_plain_tensor_attributes_data_and_flags_are_restored(run: str) -> None:
    model = SwapsPlainData()
    mask = model.mask
    tt.analyze(model, (2, 4), run=run)
    assert model.mask is mask and mask.device.type == "cpu" and torch.equal(mask, torch.ones(4)) and not mask.requires_grad


class ParametrizesItself(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.nn.utils.parametrize.is_parametrized(self.lin):
            torch.nn.utils.parametrize.register_parametrization(self.lin, "weight", nn.Identity())
        return self.lin(x)


def test_a_class_swapped_in_the_forward_is_swapped_back() -> None:
    model = ParametrizesItself()
    tt.analyze(model, (2, 4))
    assert type(model.lin) is nn.Linear
    assert model(torch.ones(2, 4)).shape == (2, 4)  # was KeyError: 'weight'


def test_an_unchanged_buffer_keeps_its_version_counter() -> None:
    # A backward built before the analysis checks the version of what it saved.
    model = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4)).eval()
    x = torch.ones(3, 4, requires_grad=True)
    out = model(x).sum()
    tt.analyze(model, (3, 4), run="real")
    out.backward()  # would raise "modified by an inplace operation"
    assert x.grad is not None


class LeavesModes(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        torch.overrides.TorchFunctionMode().__enter__()  # entered, never left
        return self.lin(x)


def test_a_mode_the_forward_never_left_is_popped() -> None:
    before = torch._C._len_torch_function_stack(), torch._C._len_torch_dispatch_stack()
    with pytest.raises(tt.TorchtallyError):
        tt.analyze(LeavesModes(), (2, 4))
    assert (torch._C._len_torch_function_stack(), torch._C._len_torch_dispatch_stack()) == before


class FlipsFlags(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        torch.backends.cudnn.benchmark = not torch.backends.cudnn.benchmark
        torch.backends.mkldnn.enabled = not torch.backends.mkldnn.enabled
        torch.set_num_threads(1)
        torch.set_anomaly_enabled(True)
        warnings.simplefilter("ignore")
        return self.lin(x)


def test_torch_flags_threads_and_warning_filters_are_restored() -> None:
    def state() -> tuple[Any, ...]:
        return (torch.backends.cudnn.benchmark, torch.backends.mkldnn.enabled, torch.get_num_threads(),
                torch.is_anomaly_enabled(), list(warnings.filters))  # fmt: skip

    before = state()
    tt.analyze(FlipsFlags(), (2, 4))
    assert state() == before


class ZeroesGrad(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.lin.weight.grad is not None:
            self.lin.weight.grad.zero_()
        return self.lin(x)


def test_an_existing_gradient_written_in_a_real_run_is_restored() -> None:
    model = ZeroesGrad()
    model.lin.weight.grad = torch.ones(4, 4)
    tt.analyze(model, (2, 4), run="real")
    assert torch.equal(model.lin.weight.grad, torch.ones(4, 4))


def test_an_optimizer_callable_over_other_parameters_is_refused_before_a_step() -> None:
    model = nn.Linear(4, 4)
    mine = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    with pytest.raises(tt.InputError, match=r"new optimizer over the parameters it is given"):
        tt.analyze(model, (2, 4), training=True, optimizer=lambda params: mine)
    assert dict(mine.state) == {}
