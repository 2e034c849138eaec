"""Measured time: real forward passes, after warm-up, timed whole (latency, throughput) and
with a timer around every module's forward (each module's own and inclusive time).

The two are measured apart so that the latency is free of timer overhead; the timed passes'
total beside the plain passes' says how much the per-module timers cost. Per-module times are
means over the repeats (means add up: the rows' own times sum to the timed total); the
latency is given as median, p90 and minimum over the plain passes.

Clock: CUDA events on a GPU (the GPU's own time, one synchronisation per pass), otherwise
``time.perf_counter``. Timers wrap ``forward`` (an instance attribute, removed afterwards),
like the module tracker: own time = inclusive time minus the inclusive time of the modules it
called."""

from __future__ import annotations

import contextlib
import functools
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch._ops import OpOverload
from torch.utils._python_dispatch import TorchDispatchMode

from ..errors import InputError, TorchtallyError, describe_module
from .guard import ModelState
from .patching import ForwardPatches, room_for_wrappers
from .tree import ModuleNode
from ..report.timing import TimingStats


class TimingError(TorchtallyError):
    """The timed passes failed, or changed the model in a way that cannot be undone (the
    counting itself had succeeded)."""


@dataclass(frozen=True)
class TimingOptions:
    """How to measure: ``warmup`` untimed passes (at least one: it is also where writes to the
    weights are watched for), then ``repeats`` timed passes of each kind."""

    warmup: int = 3
    repeats: int = 20

    def __post_init__(self) -> None:
        for name in ("warmup", "repeats"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"timing {name} must be a whole number >= 1; got {value!r}")


def timing_options(value: object) -> TimingOptions | None:
    """``timing=`` of `analyze`: False/None (no timing), True (defaults) or TimingOptions."""
    if value is None or value is False:
        return None
    if value is True:
        return TimingOptions()
    if isinstance(value, TimingOptions):
        return value
    raise InputError(f"timing must be True, False or tt.TimingOptions(warmup=..., repeats=...); got {value!r}")


@dataclass(frozen=True)
class Measured:
    stats: TimingStats
    own: list[float]  # per module (tree order): mean seconds per pass of its own work, all calls
    called: list[bool]  # per module: whether the timed passes called it


class _Clock:
    """Timestamps and elapsed seconds: CUDA events on a CUDA device, perf_counter elsewhere."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        self.device = device
        self.name = "cuda events" if self.cuda else "perf_counter"

    def now(self) -> Any:
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]
            event.record()
            return event
        return time.perf_counter()

    def seconds(self, start: Any, end: Any) -> float:
        return float(start.elapsed_time(end)) / 1000 if self.cuda else float(end - start)

    def settle(self) -> None:
        """Wait for queued GPU work (before reading events, and around a timed pass)."""
        if self.cuda:
            torch.cuda.synchronize(self.device)


class _ModuleTimers:
    """Timers around every module's forward; per pass, each call's (module, caller, start, end)."""

    def __init__(self, nodes: list[ModuleNode], clock: _Clock):
        self.nodes = nodes
        self.clock = clock
        self.calls: list[tuple[int, int, Any, Any]] = []
        self.failed_in: int | None = None  # the innermost module an exception left
        self._stack: list[int] = []
        self._patches = ForwardPatches()

    def attach(self) -> None:
        self._patches.attach(self.nodes, self._timed)

    def detach(self) -> None:
        self._patches.detach()

    def _timed(self, index: int, forward: Callable[..., Any]) -> Callable[..., Any]:
        clock, stack, calls = self.clock, self._stack, self.calls

        @functools.wraps(forward)
        def timed_forward(*args: Any, **kwargs: Any) -> Any:
            caller = stack[-1] if stack else -1
            stack.append(index)
            start = clock.now()
            try:
                return forward(*args, **kwargs)
            except BaseException:
                if self.failed_in is None:
                    self.failed_in = index
                raise
            finally:
                calls.append((index, caller, start, clock.now()))
                stack.pop()

        return timed_forward

    def collect(self, own: list[float], called: list[bool]) -> float:
        """Add this pass's own times to the per-module sums; the pass's total (top-level calls).
        A module's own time is its calls' time minus the time of the calls it made (a module
        calling itself included)."""
        self.clock.settle()
        total = 0.0
        for index, caller, start, end in self.calls:
            seconds = self.clock.seconds(start, end)
            called[index] = True
            own[index] += seconds
            if caller >= 0:
                own[caller] -= seconds
            else:
                total += seconds
        self.calls.clear()
        return total


class _WriteGuard(TorchDispatchMode):  # type: ignore[no-untyped-call]
    """For the warm-up passes: lets the model state save a parameter before an operator
    overwrites it (a forward that writes its own weights is undone afterwards). Not during
    the timed passes, whose time it would distort: a write first made there is detected
    by the parameters' version counters instead."""

    def __init__(self, state: ModelState):
        super().__init__()  # type: ignore[no-untyped-call]
        self.state = state

    def __torch_dispatch__(self, func: OpOverload, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        if func._schema.is_mutable:
            self.state.before_write(func, args, kwargs)
        return func(*args, **kwargs)


def _quantile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)  # linear interpolation between neighbours
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _versions(params: Sequence[torch.Tensor]) -> list[int]:
    return [param._version for param in params]


def measure(
    model: torch.nn.Module,
    nodes: list[ModuleNode],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    device: torch.device,
    mode: str,
    options: TimingOptions,
    batch_size: int,
) -> Measured:
    """Time ``model(*args, **kwargs)`` for real. The model is left as it was (see guard.py)."""
    clock = _Clock(device)
    state = ModelState(nodes)
    timers = _ModuleTimers(nodes, clock)
    own = [0.0] * len(nodes)
    called = [False] * len(nodes)
    params = list(dict.fromkeys(p for node in nodes for p in node.module._parameters.values() if p is not None))
    plain: list[float] = []
    timed: list[float] = []
    where = "a warm-up pass"
    try:
        state.copy_buffers()
        if mode in ("eval", "train"):  # not "same", nor "fixed" (an exported program)
            model.train(mode == "train")
        with torch.no_grad(), room_for_wrappers(nodes), torch.cuda.device(device) if clock.cuda else contextlib.nullcontext():
            timers.attach()  # during warm-up only to say where a failure happened
            try:
                with _WriteGuard(state):
                    for _ in range(options.warmup):
                        model(*args, **kwargs)
            finally:
                timers.detach()
                timers.calls.clear()
            before = _versions(params)
            # Interleaved, so that the machine's noise hits plain and timed passes alike.
            for _ in range(options.repeats):
                where = "a plain timed pass"
                clock.settle()
                start = clock.now()
                model(*args, **kwargs)
                end = clock.now()
                clock.settle()
                plain.append(clock.seconds(start, end))
                where = "a pass with module timers"
                timers.attach()
                try:
                    model(*args, **kwargs)
                finally:
                    timers.detach()
                timed.append(timers.collect(own, called))
            # Written first during the timed passes: no copy was saved, the change cannot be undone.
            unsaved = [p for p, version in zip(params, before) if p._version != version and not state.saved(p)]
    except Exception as exc:
        module = f" in {_describe(nodes[timers.failed_in])}" if timers.failed_in is not None else ""
        raise TimingError(f"{where} of the timed forward passes failed{module} ({type(exc).__name__}: {exc})") from exc
    finally:
        state.restore()
    if unsaved:
        names = ", ".join(_parameter_names(nodes, unsaved))
        raise TimingError(
            f"the model wrote its parameters ({names}) during the timed passes but not during warm-up, "
            "so they could not be saved first and are left changed; time it with more warm-up passes"
        )
    repeats = options.repeats
    median = statistics.median(plain)
    mean = statistics.fmean(plain)
    timed_mean = statistics.fmean(timed)
    stats = TimingStats(
        device=str(device),
        clock=clock.name,
        warmup=options.warmup,
        repeats=repeats,
        batch_size=batch_size,
        latency_median=median,
        latency_p90=_quantile(plain, 0.9),
        latency_min=min(plain),
        latency_mean=mean,
        throughput=batch_size / median if median > 0 else 0.0,
        timed_mean=timed_mean,
        overhead=timed_mean / mean - 1 if mean > 0 else 0.0,
    )
    return Measured(stats, [value / repeats for value in own], called)


def _describe(node: ModuleNode) -> str:
    return describe_module(node.name, type(node.module).__name__)


def _parameter_names(nodes: list[ModuleNode], params: Sequence[torch.Tensor]) -> list[str]:
    wanted = {id(p) for p in params}
    return [
        f"{node.name + '.' if node.name else ''}{name}"
        for node in nodes
        for name, p in node.module._parameters.items()
        if p is not None and id(p) in wanted
    ]
