"""Which decode steps to run, and the figures of the others.

Running every decode step of a long generation on fake tensors costs one forward each; the
figures of a step (MACs, bytes, cache size, peak, estimated time) are affine in its position
wherever the model's code does the same thing at every position (attention over one more key
per step), and bend only where it changes (a sliding window filling up, a bound switching
from memory to compute). So: run the first, middle and last steps and the midpoints between
them; wherever a stretch's midpoint is not on the line through its ends, run that stretch's
halves' midpoints too (bisection), until every stretch is verified affine. Steps inside a
verified stretch take values on its line.

Each figure is convex or concave in the position (a sum of affine terms, maxima of affine
terms, or minima of them, never mixed in practice), and for such a function a midpoint on
the chord proves the whole stretch is on it; the check is exact for integers."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from fractions import Fraction

Figures = Sequence[float | int]
_RELATIVE = 1e-9  # float figures (estimated seconds) agree with the chord within rounding


def _on_line(left: Figures, middle: Figures, right: Figures, a: int, m: int, b: int) -> bool:
    for va, vm, vb in zip(left, middle, right):
        if isinstance(va, int) and isinstance(vm, int) and isinstance(vb, int):
            if (vm - va) * (b - a) != (vb - va) * (m - a):
                return False
        else:
            expected = va + (vb - va) * (m - a) / (b - a)
            if not math.isclose(vm, expected, rel_tol=_RELATIVE, abs_tol=1e-15):
                return False
    return True


def sample_steps(measure: Callable[[int], Figures], count: int, *, run_all_below: int = 8) -> dict[int, Figures]:
    """The figures of the steps run, by index (0 .. count-1), chosen as the module says;
    every step when there are fewer than ``run_all_below``."""
    done: dict[int, Figures] = {}

    def at(index: int) -> Figures:
        if index not in done:
            done[index] = measure(index)
        return done[index]

    if count < run_all_below:
        for index in range(count):
            at(index)
        return done

    def verify(a: int, b: int) -> None:
        if b - a < 2:
            return
        m = (a + b) // 2
        if not _on_line(at(a), at(m), at(b), a, m, b):
            verify(a, m)
            verify(m, b)

    last = count - 1
    middle = last // 2
    for index in (0, middle, last):
        at(index)
    verify(0, middle)  # each half checked at its own midpoint: five steps at least
    verify(middle, last)
    return done


def interpolated(done: dict[int, Figures], count: int) -> list[tuple[Figures, bool]]:
    """Every step's figures, and whether the step was run: a step not run takes the values on
    the line through the run steps either side of it (integers rounded, exact when the line
    has a whole slope)."""
    run = sorted(done)
    steps: list[tuple[Figures, bool]] = []
    for index in range(count):
        if index in done:
            steps.append((done[index], True))
            continue
        right = next(i for i in run if i > index)
        left = max(i for i in run if i < index)
        share = Fraction(index - left, right - left)
        values: list[float | int] = []
        for va, vb in zip(done[left], done[right]):
            if isinstance(va, int) and isinstance(vb, int):
                values.append(round(va + (vb - va) * share))
            else:
                values.append(float(va + (vb - va) * float(share)))
        steps.append((values, False))
    return steps
