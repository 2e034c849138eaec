"""A real build for a model whose forward reads values its own layers compute.

The command line builds models on the meta device by default: no memory, no weights. A
forward that reads values its layers compute (a mixture of experts routing tokens, a speech
model predicting durations, a detector decoding keypoints, an encoder deciding on global
attention from a mask) cannot run there: those values do not exist. Such a model, when the
user chose no device, is built again on the CPU with random weights and analysed by a real
run, provided its weights take at most a quarter of this machine's memory; a notice on
stderr says so, since the counts that depend on values (which experts, how many frames)
then follow these random weights. Larger models keep the one-line error that says to pass
``--device cpu``."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from typing import TypeVar

import torch
from torch import nn

from ..errors import NeedsRealValues
from ..render.units import binary_bytes
from .models import BuiltModel, ModelOptions, build

Result = TypeVar("Result")
# Where the machine's memory cannot be read (not a POSIX system): what a real build may take.
_UNKNOWN_MEMORY_BUDGET = 4 * 2**30


def weight_bytes(model: nn.Module) -> int:
    """Bytes of the model's parameters and buffers, a tensor shared by several modules once."""
    seen: set[int] = set()
    total = 0
    for tensor in (*model.parameters(), *model.buffers()):
        if id(tensor) not in seen:
            seen.add(id(tensor))
            total += tensor.numel() * tensor.element_size()
    return total


def memory_budget() -> int:
    """What a real build may take: a quarter of this machine's memory (the rest for the run)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4
    except (AttributeError, ValueError, OSError):
        return _UNKNOWN_MEMORY_BUDGET


def analyse_built(
    spec: str,
    options: ModelOptions,
    analyse: Callable[[BuiltModel], Result],
    notice: Callable[[str], None],
    allowed: bool,
) -> Result:
    """``analyse(build(spec, options))``; where that needs real values and ``allowed`` (the
    device was the default meta), once more on a real CPU build that fits `memory_budget`."""
    built = build(spec, options)
    try:
        return analyse(built)
    except NeedsRealValues as limit:
        if not allowed or options.device.type != "meta":
            raise
        size = weight_bytes(built.module)
        if size > memory_budget():
            raise NeedsRealValues(
                f"{limit}; a real build would take {binary_bytes(size)} of weights, more than a quarter of this "
                "machine's memory"
            ) from limit
    del built  # the meta build: nothing of it is needed any more
    notice(
        f"{spec} reads values its own layers compute, which the meta device does not have: built again "
        f"on the CPU with random weights ({binary_bytes(size)}) and run for real; the counts that depend on "
        "values (routing, lengths) follow these weights. Pass --device to choose where it is built."
    )
    return analyse(build(spec, replace(options, device=torch.device("cpu"))))
