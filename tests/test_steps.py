"""Which decode steps are run (estimate/steps.py), on made-up figures whose shape is known."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from torchtally.estimate.steps import interpolated, sample_steps


def counted(figure: Callable[[int], list[float | int]]) -> tuple[Callable[[int], list[float | int]], list[int]]:
    calls: list[int] = []

    def measure(index: int) -> list[float | int]:
        calls.append(index)
        return figure(index)

    return measure, calls


def test_affine_figures_run_five_steps_and_the_rest_are_exact() -> None:
    measure, calls = counted(lambda i: [1000 + 7 * i, 3 * i, 2.5e-3 + 1e-6 * i])
    done = sample_steps(measure, 512)
    assert sorted(calls) == sorted(set(calls)) == [0, 127, 255, 383, 511]  # each run once: ends, middle, quarters
    steps = interpolated(done, 512)
    assert [figures[0] for figures, _ in steps] == [1000 + 7 * i for i in range(512)]
    assert [run for _, run in steps].count(True) == 5
    assert steps[300][0][2] == pytest.approx(2.5e-3 + 1e-6 * 300, rel=1e-12)


def test_a_kink_is_found_by_bisection_and_never_interpolated_across() -> None:
    window = 300  # a sliding window: the attention grows until the cache holds `window` tokens
    measure, calls = counted(lambda i: [min(i, window) * 64 + 5000])
    steps = interpolated(sample_steps(measure, 1000), 1000)
    assert [figures[0] for figures, _ in steps] == [min(i, window) * 64 + 5000 for i in range(1000)]
    assert window in calls or (window - 1 in calls and window + 1 in calls)  # the bend's neighbours are run
    assert len(calls) < 40  # a bisection, not every step


def test_a_convex_float_figure_is_exact_on_every_stretch() -> None:
    # A roofline time: the larger of a constant compute term and a growing memory term.
    def time(i: int) -> list[float | int]:
        return [max(1e-3, 2e-4 + 3e-6 * i)]

    steps = interpolated(sample_steps(time, 700), 700)
    assert all(figures[0] == pytest.approx(time(i)[0], rel=1e-9) for i, (figures, _) in enumerate(steps))


def test_few_steps_are_all_run() -> None:
    for count in (1, 2, 7):
        measure, calls = counted(lambda i: [i * i])  # not affine at all: nothing to interpolate anyway
        steps = interpolated(sample_steps(measure, count), count)
        assert sorted(calls) == list(range(count)) and all(run for _, run in steps)


def test_a_figure_that_is_never_affine_runs_every_step() -> None:
    measure, calls = counted(lambda i: [i * i])
    steps = interpolated(sample_steps(measure, 40), 40)
    assert sorted(set(calls)) == list(range(40))
    assert [figures[0] for figures, _ in steps] == [i * i for i in range(40)]
