"""Python's cyclic garbage collector held off during a fake run.

A fake run makes tens of thousands of short-lived objects (fake tensors, argument tuples,
records), and every so many allocations Python's cyclic collector runs; each of its full
passes walks every live object of the process, and with torch and torchvision imported
that is ~350k objects: ~0.1 s a pass, several passes in a first analysis (measured: the
first analysis of mobilenet_v3_small took 300 ms with the collector, 100 ms without).
Reference counting still frees everything acyclic at once; the collector is switched back
on (only if it was on) when the run ends, however it ends. Fake runs only: a real run's
cycles may hold real memory."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
