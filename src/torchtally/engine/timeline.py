"""The memory timeline of a report: the live set's recorded changes (`LiveTrace`) turned into
absolute bytes by category, thinned to a bounded number of moments.

The totals follow the same steady-state model as `Memory.peak` (see build.py's `_memory`):
parameters, buffers and inputs exist throughout; the optimizer state exists during forward
and backward; the step runs with everything the backward left alive. So the timeline's
highest total is the reported peak, by construction of the same figures."""

from __future__ import annotations

from array import array
from collections.abc import Sequence

from .memory import LiveTrace, RunMemory
from ..report.model import TIMELINE_CATEGORIES, MemoryTimeline

# The most moments a timeline keeps (its JSON stays near 100 kB however long the run).
MAX_POINTS = 1200


def thin(values: Sequence[int], budget: int) -> list[int]:
    """Indices of ``values`` to keep, in order, at most about ``budget``: all of them when few;
    else the first, the last and each stretch's lowest and highest (so the maximum and the
    minimum are always kept)."""
    count = len(values)
    if count <= budget:
        return list(range(count))
    stretches = max(1, (budget - 2) // 2)
    keep = {0, count - 1}
    for stretch in range(stretches):
        low, high = stretch * count // stretches, (stretch + 1) * count // stretches
        if high > low:
            span = range(low, high)
            keep.add(max(span, key=values.__getitem__))
            keep.add(min(span, key=values.__getitem__))
    return sorted(keep)


class _Points:
    def __init__(self) -> None:
        self.phases: list[tuple[str, int]] = []
        self.operators: list[int] = []
        self.modules: list[int | None] = []
        self.values: list[tuple[int, ...]] = []

    def phase(self, name: str) -> None:
        self.phases.append((name, len(self.values)))

    def add(self, operators: int, row: int, values: tuple[int, ...]) -> None:
        self.operators.append(operators)
        self.modules.append(row if row >= 0 else None)
        self.values.append(values)


def _stretches(trace: LiveTrace) -> list[tuple[int, int, int, int]]:
    """Per phase of ``trace``: its first and last change (exclusive), the bytes alive at its
    start and the operators run by then."""
    starts = [(0, 0)] + list(trace.phases)
    found = []
    for number, (first, alive) in enumerate(starts):
        end = starts[number + 1][0] if number + 1 < len(starts) else len(trace.live)
        operators = trace.operators[first - 1] if first > 0 else 0
        found.append((first, end, alive, operators))
    return found


def _budget(sizes: list[int], total: int) -> list[int]:
    count = sum(sizes) or 1
    return [max(8, total * size // count) for size in sizes]


def memory_timeline(figures: RunMemory, base: tuple[int, int, int], state: int) -> MemoryTimeline | None:
    """The timeline of a run whose ``figures`` carry a trace; ``base`` is the parameter,
    buffer and input bytes, ``state`` the optimizer state alive during forward and backward."""
    trace = figures.trace
    if trace is None:
        return None
    parameters, buffers, inputs = base
    points = _Points()
    run = _stretches(trace)[:2]  # forward, and backward when training
    step = figures.step
    step_stretch = _stretches(step.trace)[-1] if step is not None and step.trace is not None and step.trace.phases else None
    sizes = [end - first + 1 for first, end, _, _ in run] + ([step_stretch[1] - step_stretch[0] + 1] if step_stretch else [])
    budgets = _budget(sizes, MAX_POINTS)
    names = ("forward", "backward")
    for number, (first, end, alive, operators) in enumerate(run):
        points.phase(names[number])
        live = array("q", [alive]) + trace.live[first:end]
        grads = array("q", [trace.gradients[first - 1] if first > 0 else 0]) + trace.gradients[first:end]
        clock = array("q", [operators]) + trace.operators[first:end]
        rows = array("q", [trace.rows[first] if first < end else 0]) + trace.rows[first:end]
        for index in thin(live, budgets[number]):
            points.add(clock[index], rows[index], (parameters, buffers, inputs, live[index] - grads[index], grads[index], state))
    if step is not None:
        # The step runs with what the backward left alive: its gradients and the outputs held.
        end_live = figures.backward_end or 0
        grad_bytes = trace.gradients[-1] if len(trace.gradients) else 0
        held = (parameters, buffers, inputs, end_live - grad_bytes, grad_bytes)
        points.phase("optimizer step")
        offset = trace.operators_run
        if step_stretch is None or step.trace is None:
            points.add(offset, -1, (*held, step.step_peak))
        else:
            first, end, alive, operators = step_stretch
            live = array("q", [alive]) + step.trace.live[first:end]
            clock = array("q", [operators]) + step.trace.operators[first:end]
            for index in thin(live, budgets[-1]):
                points.add(offset + clock[index] - operators, -1, (*held, live[index]))
    return MemoryTimeline(
        TIMELINE_CATEGORIES, tuple(points.phases), tuple(points.operators), tuple(points.modules), tuple(points.values)
    )
