"""`calibrate()`: measure the machine at hand (this CPU, or a CUDA device) and describe it as
a `Hardware`, so an estimate can be checked against a measurement on the same machine.

What is measured, each as a sustained rate: calls repeated for a fixed stretch of time
after a warm-up, total work over total time (on a machine shared with other work, that is
the share a model's pass gets too, where the fastest single run would not be):
- matrix FLOP/s per dtype: ``torch.mm`` over a few square sizes and two convolutions (a
  3x3 and a 1x1, as CNNs have them); the peak is the median of those rates, what a model's
  mix of shapes reaches rather than the best shape's record;
- a convolution's share of that peak by its size (fp32, applied to every dtype): those
  convolutions reach it, a mobile network's small 1x1 one its rate over theirs (about half
  on a CPU);
- vector FLOP/s per dtype: a fused multiply-add (``addcmul``) on a tensor that fits in cache;
- transcendental FLOP/s per dtype (CPU): the median over exp, sigmoid, tanh, GELU, SiLU and
  erf on a tensor that fits in cache, 1 FLOP per element as the formula table counts them
  (on a CPU they run ten times slower than an add; on a GPU they are memory-bound anyway);
- pooling FLOP/s per dtype (CPU): the median of a 3x3 max and average pooling of stride 2
  over a CNN-like image, 9 FLOPs per output as the formula table counts them;
- grouped (depthwise) convolutions: the fixed cost of one on a tensor too small to do work,
  and the fraction of the fp32 matrix peak reached over three CNN-like depthwise shapes (the
  median, their fixed cost taken off), applied to every dtype;
- memory bandwidth: a copy and a STREAM-style triad (``b + s * c``) on arrays larger than
  most caches, each result a new tensor as in a model, counting the bytes read and
  written; the mean of the two;
- the cost of one operator call: the median over common operators on tensors too small to
  do work, and of one view (``x.view(-1)``), which moves nothing;
- the cost of one module call (CPU): the median over common modules of calling the module
  less calling its functional operator on the same tiny input (``nn.Module.__call__`` and
  the Python of its ``forward``). On a CUDA device it is left 0: that Python runs on the CPU
  while the kernels queued before it run.

The measurements run with the thread count torch has now (what a model's run will use). No
global state is left changed (gradients are off inside; nothing else is set)."""

from __future__ import annotations

import functools
import statistics
import time
from collections.abc import Callable

import torch

from ..errors import InputError
from .hardware import Hardware

_CACHE: dict[tuple[str, bool], Hardware] = {}
_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


class _Clock:
    """Seconds per call of ``fn``, sustained: runs it in batches until ``budget`` seconds
    passed (at least 3 batches); total time over total calls."""

    def __init__(self, device: torch.device):
        self.device = device

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def per_call(self, fn: Callable[[], object], budget: float, batch: int = 1) -> float:
        start = time.perf_counter()
        fn()  # warm-up: first-call allocation and kernel selection
        self._sync()
        if time.perf_counter() - start > budget:  # one slow call (a dtype without fast kernels)
            start = time.perf_counter()
            fn()
            self._sync()
            return time.perf_counter() - start
        batches = 0
        start = time.perf_counter()
        deadline = start + budget
        while batches < 3 or time.perf_counter() < deadline:
            for _ in range(batch):
                fn()
            self._sync()
            batches += 1
        return (time.perf_counter() - start) / (batches * batch)


# Convolutions (channels in, out, kernel, side), as CNNs have them: 3x3 over 64 channels at
# 56x56 (231 MFLOP) and 1x1 from 256 to 64 channels at 28x28 (26 MFLOP), both in the peak;
# and a mobile network's 1x1 from 40 to 240 channels at 14x14 (4 MFLOP), for the size curve.
_CONVS = ((64, 64, 3, 56), (256, 64, 1, 28))
_SMALL_CONV = (40, 240, 1, 14)


def _conv_rate(clock: _Clock, dtype: torch.dtype, shape: tuple[int, int, int, int], budget: float) -> tuple[float, float]:
    """(FLOPs per call, FLOP/s) of one batch-1 convolution."""
    channels_in, channels_out, kernel, side = shape
    x = torch.randn(1, channels_in, side, side, device=clock.device).to(dtype)
    w = torch.randn(channels_out, channels_in, kernel, kernel, device=clock.device).to(dtype)
    flops = 2 * channels_out * side * side * channels_in * kernel * kernel
    conv = functools.partial(torch.nn.functional.conv2d, x, w, padding=kernel // 2)
    return flops, flops / clock.per_call(conv, budget)


def _conv_curve(standard: list[tuple[float, float]], small: tuple[float, float]) -> tuple[tuple[float, float], ...]:
    """The convolutions the peak is the median of reach it (they are in it); a smaller one
    reaches its rate over theirs (a ratio of two rates measured moments apart, which the
    machine's changing load affects less than either)."""
    reference = statistics.median(rate for _, rate in standard)
    smallest = min(flops for flops, _ in standard)
    return ((small[0], min(1.0, small[1] / reference)), (smallest, 1.0))


def _matrix_rates(
    clock: _Clock, dtype: torch.dtype, quick: bool, budget: float
) -> tuple[list[float], list[tuple[float, float]]]:
    """FLOP/s of ``torch.mm`` at a few sizes and of the CNN-like convolutions, and the
    convolutions' (FLOPs per call, FLOP/s)."""
    device = clock.device
    rates = []
    sizes = (128, 256, 512) if quick else (128, 256, 512, 1024)
    for n in sizes:
        a = torch.randn(n, n, device=device).to(dtype)
        b = torch.randn(n, n, device=device).to(dtype)
        seconds = clock.per_call(functools.partial(torch.mm, a, b), budget)
        rates.append(2 * n**3 / seconds)
        if seconds > budget / 4:  # a slow dtype here: larger sizes would only take longer
            break
    convs = [_conv_rate(clock, dtype, shape, budget) for shape in _CONVS[: 1 if quick else 2]]
    return rates + [rate for _, rate in convs], convs


def _vector_rate(clock: _Clock, dtype: torch.dtype, budget: float) -> float:
    n = 32 * 1024  # 128 KiB in fp32: stays in cache, so this is arithmetic, not memory
    a, b, c = (torch.rand(n, device=clock.device).to(dtype) for _ in range(3))
    out = torch.empty_like(a)
    # addcmul: a + b * c, 2 FLOPs per element (the formula table counts it so)
    return 2 * n / clock.per_call(lambda: torch.addcmul(a, b, c, out=out), budget, batch=10)


def _bandwidth(clock: _Clock, quick: bool, budget: float) -> float:
    """Copy and triad with a new tensor for each result, as a model's operators make them
    (on a CPU, fresh memory costs page faults: twice the time of rewriting a buffer and
    more, which a model pays on every activation)."""
    n = 2 * 2**20  # float32 elements: 8 MiB per array, an activation's size (larger than L2 caches)
    b = torch.rand(n, device=clock.device)
    c = torch.rand(n, device=clock.device)
    copy = 2 * 4 * n / clock.per_call(b.clone, budget)  # read b, write the copy
    triad = 3 * 4 * n / clock.per_call(functools.partial(torch.add, b, c, alpha=3.0), budget)  # read b, c; write
    return (copy + triad) / 2


def _transcendental_rate(clock: _Clock, dtype: torch.dtype, budget: float) -> float:
    n = 16 * 1024  # fits in cache: the function's arithmetic, not memory
    x = torch.rand(n, device=clock.device).to(dtype)
    functional = torch.nn.functional
    kinds = (torch.exp, torch.sigmoid, torch.tanh, functional.gelu, functional.silu, torch.erf)
    return statistics.median(n / clock.per_call(functools.partial(kind, x), budget / len(kinds), batch=10) for kind in kinds)


def _pooling_rate(clock: _Clock, dtype: torch.dtype, budget: float) -> float:
    image = torch.rand(1, 32, 56, 56, device=clock.device).to(dtype)
    functional = torch.nn.functional
    flops = 9 * 32 * 28 * 28  # 3x3 windows, 28x28 outputs per channel
    kinds = (functional.max_pool2d, functional.avg_pool2d)
    return statistics.median(
        flops / clock.per_call(functools.partial(kind, image, 3, 2, 1), budget / len(kinds)) for kind in kinds
    )


def _grouped_conv(clock: _Clock, budget: float, peak: float) -> tuple[float, float]:
    """A depthwise convolution's fixed cost per call (one on a 2x2 image) and the fraction
    of ``peak`` it reaches at CNN-like sizes, its fixed cost taken off (median of three:
    3x3 over 32 channels at 112x112, 3x3 over 96 at 28x28, 5x5 over 240 at 14x14)."""
    device = clock.device
    conv = torch.nn.functional.conv2d

    def depthwise(channels: int, side: int, kernel: int) -> tuple[Callable[[], object], int]:
        x = torch.randn(1, channels, side, side, device=device)
        w = torch.randn(channels, 1, kernel, kernel, device=device)
        return functools.partial(conv, x, w, padding=kernel // 2, groups=channels), 2 * channels * side * side * kernel**2

    tiny, _ = depthwise(4, 2, 3)
    for _ in range(3):  # the first calls generate its kernel: not the cost of a call
        tiny()
    fixed = clock.per_call(tiny, budget / 4, batch=5)
    fractions = []
    for channels, side, kernel in ((32, 112, 3), (96, 28, 3), (240, 14, 5)):
        fn, flops = depthwise(channels, side, kernel)
        seconds = clock.per_call(fn, budget / 4)
        fractions.append(min(1.0, flops / max(seconds - fixed, seconds / 10) / peak))
    return fixed, statistics.median(fractions)


def _module_overhead(clock: _Clock, budget: float) -> float:
    """A module call's cost beyond its operators: the median over common modules (with
    parameters, without, a container) of calling it less calling its operator directly."""
    nn, functional = torch.nn, torch.nn.functional
    device = clock.device
    row = torch.ones(1, 4, device=device)
    image = torch.ones(1, 4, 2, 2, device=device)
    linear, conv = nn.Linear(4, 4).to(device), nn.Conv2d(4, 4, 1).to(device)
    norm, layer_norm = nn.BatchNorm2d(4).to(device).eval(), nn.LayerNorm(4).to(device)
    pairs: list[tuple[Callable[[], object], Callable[[], object]]] = [
        (functools.partial(linear, row), functools.partial(functional.linear, row, linear.weight, linear.bias)),
        (functools.partial(conv, image), functools.partial(functional.conv2d, image, conv.weight, conv.bias)),
        (functools.partial(norm, image), functools.partial(
            functional.batch_norm, image, norm.running_mean, norm.running_var, norm.weight, norm.bias)),
        (functools.partial(layer_norm, row), functools.partial(
            functional.layer_norm, row, (4,), layer_norm.weight, layer_norm.bias)),
        (functools.partial(nn.ReLU(), image), functools.partial(torch.relu, image)),
        (functools.partial(nn.Dropout().eval(), image), functools.partial(functional.dropout, image, training=False)),
        (functools.partial(nn.Sequential(), image), functools.partial(torch.Tensor.view, image, -1)),
    ]
    slice_ = budget / (2 * len(pairs))
    costs = [clock.per_call(module, slice_, batch=20) - clock.per_call(direct, slice_, batch=20) for module, direct in pairs]
    return max(0.0, statistics.median(costs))


def _call_costs(clock: _Clock, budget: float) -> tuple[float, float]:
    """The fixed cost of an operator call: the median over common kinds of operator on
    tensors so small that their work is nothing (an add, a matmul, a softmax, a layer norm,
    a convolution, a batch norm: their fixed costs differ several-fold; grouped convolutions
    are measured apart); and of a view."""
    device = clock.device
    functional = torch.nn.functional
    x = torch.ones(1, device=device)
    a = torch.ones(1, 1, device=device)
    image = torch.ones(1, 4, 2, 2, device=device)
    kernel = torch.ones(4, 4, 1, 1, device=device)
    channels = torch.ones(4, device=device)
    kinds: list[Callable[[], object]] = [
        functools.partial(torch.add, x, x),
        functools.partial(torch.mm, a, a),
        functools.partial(torch.softmax, a, -1),
        functools.partial(functional.layer_norm, a, (1,)),
        functools.partial(functional.conv2d, image, kernel),
        functools.partial(functional.batch_norm, image, channels, channels, channels, channels),
    ]
    work = statistics.median(clock.per_call(kind, budget / 4, batch=20) for kind in kinds)
    view = clock.per_call(functools.partial(x.view, -1), budget / 4, batch=100)
    return work, view


def _device(device: str | torch.device | None) -> torch.device:
    if device is None:
        return torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")
    try:
        found = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InputError(f"calibrate(device={device!r}): not a device torch knows") from exc
    if found.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"calibrate(device={device!r}): CUDA is not available here")
        return torch.device("cuda", torch.cuda.current_device() if found.index is None else found.index)
    if found.type != "cpu":
        raise InputError(f"calibrate() measures a CPU or a CUDA device; got {device!r}")
    return found


def calibrate(device: str | torch.device | None = None, *, quick: bool = False) -> Hardware:
    """Measure this machine (the first CUDA device when there is one, else the CPU) and
    return its figures as a `Hardware` named ``"local (<device>)"``. Takes about 10 s (2-3 s
    with ``quick=True``, coarser); the result is kept for the rest of the process."""
    where = _device(device)
    key = (str(where), quick)
    cached = _CACHE.get(key)
    if cached is None:
        cached = _CACHE[key] = measure(where, quick)
    return cached


def measure(where: torch.device, quick: bool = False) -> Hardware:
    """`calibrate` without the cache: measures again (the load of a shared machine changes)."""
    clock = _Clock(where)
    budget = 0.05 if quick else 0.25
    devices = [where] if where.type == "cuda" else []
    with torch.no_grad(), torch.random.fork_rng(devices=devices):  # random inputs leave the user's RNG as it was
        peaks: dict[str, float] = {}
        vector: dict[str, float] = {}
        transcendental: dict[str, float] = {}
        pooling: dict[str, float] = {}
        curve: tuple[tuple[float, float], ...] = ()
        cpu = where.type == "cpu"
        for name, dtype in _DTYPES.items():
            if quick and name == "fp16" and cpu:
                continue  # slow on many CPUs; a quick calibration leaves it out
            rates, convs = _matrix_rates(clock, dtype, quick, budget)
            peaks[name] = statistics.median(rates)
            if name == "fp32":  # a convolution's share of the peak by its size, measured once
                curve = _conv_curve(convs, _conv_rate(clock, dtype, _SMALL_CONV, budget))
            vector[name] = _vector_rate(clock, dtype, budget)
            if cpu:
                transcendental[name] = _transcendental_rate(clock, dtype, budget)
                pooling[name] = _pooling_rate(clock, dtype, budget)
        bandwidth = _bandwidth(clock, quick, budget)
        call, view = _call_costs(clock, budget)
        grouped_call, grouped_efficiency = _grouped_conv(clock, budget, peaks["fp32"])
        module = _module_overhead(clock, budget) if cpu else 0.0
    found = Hardware(
        name=f"local ({where})",
        peak_flops=peaks,
        vector_flops=vector,
        memory_bandwidth=bandwidth,
        memory_bytes=_memory_bytes(where),
        call_overhead=call,
        view_overhead=view,
        module_overhead=module,
        transcendental_flops=transcendental,
        pooling_flops=pooling,
        conv_efficiency=curve,
        grouped_conv_overhead=grouped_call,
        grouped_conv_efficiency=grouped_efficiency,
        source="calibrated",
    )
    return found


def _memory_bytes(device: torch.device) -> int | None:
    if device.type == "cuda":
        return int(torch.cuda.get_device_properties(device).total_memory)
    try:
        import os

        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None
