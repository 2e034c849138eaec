"""Linear-algebra solves.

- triangular solve (``linalg_solve_triangular``, ``triangular_solve``): for each right-hand
  side, substitution through an n x n triangle multiplies each of its n(n-1)/2 off-diagonal
  entries by a known unknown and accumulates it: n(n-1)/2 MACs, plus n divides by the
  diagonal (none when ``unitriangular``). FLOPs = 2 x MACs + the divides, LAPACK's n^2 per
  right-hand side. A right-hand side is a column of B (``left=True``) or a row (``left=False``)."""

from __future__ import annotations

from typing import Any

import torch

from .registry import Cost, aten_ops, first_tensor, formula


def _triangular(n: int, solution: torch.Tensor, unitriangular: bool) -> Cost:
    if n == 0:
        return Cost()
    sides = solution.numel() // n  # right-hand sides, over every batch
    macs = sides * (n * (n - 1) // 2)
    return Cost(macs=macs, flops=2 * macs + (0 if unitriangular else sides * n))


@formula(*aten_ops("linalg_solve_triangular"))
def solve_triangular(
    a: torch.Tensor, b: torch.Tensor, *, upper: bool, left: bool = True, unitriangular: bool = False, out: Any, **kwargs: Any
) -> Cost | None:
    solution = first_tensor(out)
    return None if solution is None else _triangular(a.shape[-1], solution, unitriangular)


@formula(*aten_ops("triangular_solve"))
def triangular_solve(
    b: torch.Tensor, a: torch.Tensor, upper: bool = True, transpose: bool = False, unitriangular: bool = False,
    *, out: Any, **kwargs: Any,
) -> Cost | None:  # fmt: skip
    solution = first_tensor(out)
    return None if solution is None else _triangular(a.shape[-1], solution, unitriangular)
