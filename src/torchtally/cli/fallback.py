"""A real build for a library model whose forward reads values its own layers compute.

The command line builds models on the meta device by default: no memory, no weights. A
forward that reads values its layers compute (a mixture of experts routing tokens, a speech
model predicting durations, a detector decoding keypoints, an encoder deciding on global
attention from a mask) cannot run there: those values do not exist. Such a model is built
again on the CPU with random weights and analysed by a real run when:

- MODEL names a library model (torchvision, timm, Hugging Face): library code builds it
  with random weights, so building it twice reads no checkpoint and runs no user code twice
  (user code and saved models keep the error, which says to pass ``--device cpu``);
- the user chose no ``--device``, ``--run`` is ``auto`` and no parallel layout is simulated;
- its weights (with their gradients and optimizer state in a training analysis) fit in a
  quarter of the memory this process may use.

The build and the run are seeded (the global RNG restored afterwards), so the counts that
depend on values (which experts, how many frames) are the same on every run; they follow
these random weights, which the report's fallback reason and a note on stderr say."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

import torch
from torch import nn

from ..errors import NeedsRealValues
from ..render.units import binary_bytes
from ..report.model import ModelReport
from .errors import CLIError, one_line
from .models import BuiltModel, ModelOptions, build, names_library_model

Report = TypeVar("Report", bound=ModelReport)
SEED = 0  # of the real build's random weights and of the run's own random draws
# Where the machine's memory cannot be read (not Linux): what a real build may take.
_UNKNOWN_MEMORY_BUDGET = 4 * 2**30
_CGROUP_LIMITS = ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")


def weight_bytes(model: nn.Module) -> int:
    """Bytes of the model's parameters and buffers, a tensor shared by several modules once."""
    seen: set[int] = set()
    total = 0
    for tensor in (*model.parameters(), *model.buffers()):
        if id(tensor) not in seen:
            seen.add(id(tensor))
            total += tensor.numel() * tensor.element_size()
    return total


def _usable_memory() -> int | None:
    """This process's memory: the machine's, or a container's (cgroup) limit when lower."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None
    for path in _CGROUP_LIMITS:
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text.isdigit():
            total = min(total, int(text))
    return total


def memory_budget() -> int:
    """What a real build may take: a quarter of the usable memory (the rest for the run)."""
    usable = _usable_memory()
    return _UNKNOWN_MEMORY_BUDGET if usable is None else usable // 4


def analyse_with_fallback(
    spec: str,
    options: ModelOptions,
    analyse: Callable[[BuiltModel, str | None], Report],
    notice: Callable[[str], None],
    allowed: bool,
    training_copies: int = 1,
) -> Report:
    """``analyse(build(spec, options), None)``; where that needs real values and ``allowed``
    (no device, run or layout chosen that rules a real run out), once more on a seeded real
    CPU build: ``analyse(built, "real")``. ``training_copies``: the weights' bytes a run
    holds per weight byte (4 with gradients and Adam's two states)."""
    built = build(spec, options)
    try:
        return analyse(built, None)
    except NeedsRealValues as limit:
        if not allowed or options.device.type != "meta" or not names_library_model(spec, options):
            raise
        needed = weight_bytes(built.module) * training_copies
        budget = memory_budget()
        if needed > budget:
            raise NeedsRealValues(
                f"{limit}; a real build would hold {binary_bytes(needed)} of weights"
                f"{' and training state' if training_copies > 1 else ''}, more than the quarter of this "
                f"machine's memory ({binary_bytes(budget)}) the command line builds one in by itself"
            ) from limit
        reason = str(limit)
    del built  # the meta build: nothing of it is needed any more
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        try:
            real = build(spec, replace(options, device=torch.device("cpu")))
        except CLIError as error:
            raise NeedsRealValues(f"{reason}; building it on the CPU to run it for real failed: {one_line(error)}") from error
        notice(
            f"{spec} reads values its own layers compute, which the meta device does not have: built again on "
            f"the CPU with random weights (seed {SEED}, {binary_bytes(weight_bytes(real.module))}) and run for real"
        )
        torch.manual_seed(SEED)  # the run's own random draws (noise, sampled patches) from a known state too
        report = analyse(real, "real")
    why = f"the command line built it again on the CPU with random weights (seed {SEED}): {reason}"
    return replace(report, fallback_reason=why)
