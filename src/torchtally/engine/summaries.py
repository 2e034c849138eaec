"""What one operator call adds to the report beyond its module and its memory, remembered
per replay key so a replayed call does not work it out again.

A call with a replay key (replay.py) has arguments of known metadata (shapes, strides,
dtypes, devices, offsets, scalars) and, when its result is replayable, a result whose
metadata the key fixes too. What is derived from metadata alone is then the same for every
call with that key:

- its cost, when only the built-in formulas cost the run: they read shapes, dtypes and
  scalars (formulas/registry.py). With formulas of the user's (registered, or given to one
  ``analyze``) nothing is remembered or used: those may read anything.
- the bytes it reads and writes, when every tensor it touches holds no more elements than
  the storage it needs: each then moves its elements' bytes whatever its storage's size
  (traffic.py counts a tensor at most its storage's bytes, which the key does not fix).
- the dtype it computes in, and its name.

The figures are remembered from the first call of each key, computed the ordinary way."""

from __future__ import annotations

from typing import Any

import torch

from ..formulas.registry import BUILTIN, USER, Cost

# (name, cost, bytes read, bytes written, compute dtype)
Summary = tuple[str, "Cost | None", int, int, "str | None"]

# Keyed by what else a result's metadata or a cost depends on: the default dtype (as replay.py's
# results are) and the built-in table's version (a formula registered or replaced changes it).
_SUMMARIES: dict[tuple[torch.dtype, int], dict[Any, Summary]] = {}
_MAX_SUMMARIES = 200_000


def summaries_for(cost_model: Any) -> dict[Any, Summary] | None:
    """The remembered summaries valid for a run costed by ``cost_model``; None when it may
    use a formula of the user's (its registries are then not just the built-in table and
    an empty user table)."""
    registries = getattr(cost_model, "_registries", None)
    if not (isinstance(registries, list) and len(registries) == 2 and registries[0] is USER and registries[1] is BUILTIN):
        return None
    if next(iter(USER), None) is not None:
        return None
    found = _SUMMARIES.setdefault((torch.get_default_dtype(), BUILTIN.version), {})
    if len(found) > _MAX_SUMMARIES:
        found.clear()
    return found


def spans_its_elements(tensor: torch.Tensor) -> bool:
    """Whether the storage ``tensor`` needs (its offset and strided extent) holds at least
    its elements: then an operator moves ``numel * element_size`` bytes for it, whatever
    its storage's actual size. False for a broadcast (stride 0) tensor."""
    elements = tensor.numel()
    if elements == 0:
        return True
    extent = tensor.storage_offset() + 1
    for size, stride in zip(tensor.shape, tensor.stride()):
        extent += (size - 1) * stride
    return elements <= extent


def forget() -> None:
    """Drop every summary (tests compare runs with and without what the process learnt)."""
    _SUMMARIES.clear()
