"""`calibrate()`: measure the machine at hand (this CPU, or a CUDA device) and describe it as
a `Hardware`, so an estimate can be checked against a measurement on the same machine.

What is measured, each as a sustained rate: calls repeated for a fixed stretch of time
after a warm-up, total work over total time (on a machine shared with other work, that is
the share a model's pass gets too, where the fastest single run would not be):
- matrix FLOP/s per dtype: ``torch.mm`` over a few square sizes and two convolutions (a
  3x3 and a 1x1, as CNNs have them); the peak is the median of those rates, what a model's
  mix of shapes reaches rather than the best shape's record;
- vector FLOP/s per dtype: a fused multiply-add (``addcmul``) on a tensor that fits in cache;
- memory bandwidth: a copy and a STREAM-style triad (``b + s * c``) on arrays larger than
  most caches, each result a new tensor as in a model, counting the bytes read and
  written; the mean of the two;
- the cost of one operator call: an add of one-element tensors (nearly all overhead), and of
  one view (``x.view(-1)``), which moves nothing.

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


def _matrix_rates(clock: _Clock, dtype: torch.dtype, quick: bool, budget: float) -> list[float]:
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
    # CNN-like convolutions: 3x3 over 64 channels at 56x56, 1x1 from 256 to 64 channels.
    for channels_in, channels_out, kernel, side in ((64, 64, 3, 56), (256, 64, 1, 28))[: 1 if quick else 2]:
        x = torch.randn(1, channels_in, side, side, device=device).to(dtype)
        w = torch.randn(channels_out, channels_in, kernel, kernel, device=device).to(dtype)
        pad = kernel // 2
        macs = channels_out * side * side * channels_in * kernel * kernel
        conv = functools.partial(torch.nn.functional.conv2d, x, w, padding=pad)
        rates.append(2 * macs / clock.per_call(conv, budget))
    return rates


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


def _call_costs(clock: _Clock, budget: float) -> tuple[float, float]:
    """The fixed cost of an operator call: the median over common kinds of operator on
    tensors so small that their work is nothing (an add, a matmul, a softmax, a layer norm,
    a convolution, a depthwise one, a batch norm: their fixed costs differ several-fold);
    and of a view."""
    device = clock.device
    functional = torch.nn.functional
    x = torch.ones(1, device=device)
    a = torch.ones(1, 1, device=device)
    image = torch.ones(1, 4, 2, 2, device=device)
    kernel = torch.ones(4, 4, 1, 1, device=device)
    depthwise = torch.ones(4, 1, 3, 3, device=device)
    channels = torch.ones(4, device=device)
    kinds: list[Callable[[], object]] = [
        functools.partial(torch.add, x, x),
        functools.partial(torch.mm, a, a),
        functools.partial(torch.softmax, a, -1),
        functools.partial(functional.layer_norm, a, (1,)),
        functools.partial(functional.conv2d, image, kernel),
        functools.partial(functional.conv2d, image, depthwise, padding=1, groups=4),
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
    with torch.no_grad():
        peaks: dict[str, float] = {}
        vector: dict[str, float] = {}
        for name, dtype in _DTYPES.items():
            if quick and name == "fp16" and where.type == "cpu":
                continue  # slow on many CPUs; a quick calibration leaves it out
            peaks[name] = statistics.median(_matrix_rates(clock, dtype, quick, budget))
            vector[name] = _vector_rate(clock, dtype, budget)
        bandwidth = _bandwidth(clock, quick, budget)
        call, view = _call_costs(clock, budget)
    found = Hardware(
        name=f"local ({where})",
        peak_flops=peaks,
        vector_flops=vector,
        memory_bandwidth=bandwidth,
        memory_bytes=_memory_bytes(where),
        call_overhead=call,
        view_overhead=view,
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
