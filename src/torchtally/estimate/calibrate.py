"""`calibrate()`: measure the machine at hand (this CPU, or a CUDA device) and describe it as
a `Hardware`, so an estimate can be checked against a measurement on the same machine.

What is measured, each as the median of repeated runs after a warm-up:
- matrix FLOP/s per dtype: ``torch.mm`` over a few square sizes and two convolutions (a
  3x3 and a 1x1, as CNNs have them); the peak is the median of those rates, what a model's
  mix of shapes reaches rather than the best shape's record;
- vector FLOP/s per dtype: a fused multiply-add (``addcmul``) on a tensor that fits in cache;
- memory bandwidth: a copy and a STREAM-style triad (``a = b + s * c``) on arrays far larger
  than the caches, counting the bytes read and written; the mean of the two;
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
    """Seconds per call of ``fn``: runs it until ``budget`` seconds passed (at least
    ``least`` times), in batches, and takes the median batch."""

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
        samples: list[float] = []
        deadline = time.perf_counter() + budget
        while len(samples) < 3 or (time.perf_counter() < deadline and len(samples) < 200):
            start = time.perf_counter()
            for _ in range(batch):
                fn()
            self._sync()
            samples.append((time.perf_counter() - start) / batch)
        return statistics.median(samples)


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
    n = (16 if quick else 32) * 2**20  # float32 elements: 64 or 128 MiB per array, far beyond the caches
    a = torch.empty(n, device=clock.device)
    b = torch.rand(n, device=clock.device)
    c = torch.rand(n, device=clock.device)
    copy = 2 * 4 * n / clock.per_call(lambda: a.copy_(b), budget)  # read b, write a
    triad = 3 * 4 * n / clock.per_call(lambda: torch.add(b, c, alpha=3.0, out=a), budget)  # read b, c; write a
    return (copy + triad) / 2


def _call_costs(clock: _Clock, budget: float) -> tuple[float, float]:
    x = torch.ones(1, device=clock.device)
    y = torch.ones(1, device=clock.device)
    work = clock.per_call(lambda: torch.add(x, y), budget, batch=100)
    view = clock.per_call(lambda: x.view(-1), budget, batch=100)
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
    return its figures as a `Hardware` named ``"local (<device>)"``. Takes about 10 s (1-2 s
    with ``quick=True``, coarser); the result is kept for the rest of the process."""
    where = _device(device)
    key = (str(where), quick)
    cached = _CACHE.get(key)
    if cached is not None:
        return cached
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
    _CACHE[key] = found
    return found


def _memory_bytes(device: torch.device) -> int | None:
    if device.type == "cuda":
        return int(torch.cuda.get_device_properties(device).total_memory)
    try:
        import os

        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None
