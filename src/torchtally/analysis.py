"""The public ``analyze``: the engine's run, then the estimate when a chip is asked for (see
DESIGN.md: the top level composes the layers; the engine never imports estimate/)."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torch.export import ExportedProgram

from .engine import run as engine
from .engine.inputs import DtypeSpec, InputSize
from .engine.optim import OptimizerSpec
from .engine.exported import as_module
from .engine.global_state import process_state_kept
from .engine.parallel import Parallel, simulated_cluster
from .errors import InputError
from .engine.timing import TimingOptions
from .engine.training import LossFn
from .estimate import Hardware, estimate_time
from .estimate.apply import resolve
from .formulas.registry import Formula, OpLike
from .report.model import ModelReport


def analyze(
    model: nn.Module | ExportedProgram,
    input_size: InputSize | None = None,
    *,
    input_data: Any = None,
    dtypes: DtypeSpec = None,
    device: str | torch.device | None = None,
    mode: str | None = None,
    run: str = "auto",
    training: bool = False,
    optimizer: OptimizerSpec | None = None,
    loss_fn: LossFn | None = None,
    formulas: Mapping[OpLike, Formula] | None = None,
    timing: bool | TimingOptions = False,
    hardware: Hardware | str | None = None,
    parallel: Parallel | None = None,
    forward_kwargs: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> ModelReport:
    chip = None if hardware is None else resolve(hardware)  # a bad name fails before a long run
    if parallel is not None:  # the engine unwraps an exported program itself; the layout needs its module first
        model, input_data, forward_kwargs = as_module(model, input_size, input_data, forward_kwargs, kwargs)
    options: dict[str, Any] = dict(
        input_data=input_data, dtypes=dtypes, device=device, mode=mode, run=run, training=training,
        optimizer=optimizer, loss_fn=loss_fn, formulas=formulas, timing=timing, forward_kwargs=forward_kwargs, **kwargs,
    )  # fmt: skip
    if parallel is None:
        report = engine.analyze(model, input_size, **options)
    else:
        report = analyze_parallel(model, input_size, parallel, options)
    return report if chip is None else estimate_time(report, chip)


def analyze_parallel(model: nn.Module | ExportedProgram, input_size: InputSize | None, plan: Parallel, options: dict[str, Any]) -> ModelReport:
    """One rank of ``plan``: the layout applied to a fake copy of ``model`` in a simulated
    cluster, then the same analysis as a model sharded by hand there gets."""
    if not isinstance(plan, Parallel):
        raise InputError(f"parallel= takes a tt.Parallel(fsdp=..., tp=..., dp=...); got {type(plan).__name__}")
    if not isinstance(model, nn.Module):
        raise InputError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    if options.get("timing"):
        raise InputError("timing=True measures real passes on this machine; a simulated parallel layout has none")
    if options.get("device") not in (None, "cpu", "meta"):
        raise InputError("parallel= simulates the ranks on this CPU: leave device= unset")
    with engine.ANALYSIS_LOCK, process_state_kept(), simulated_cluster(plan.world_size, rank=plan.rank) as cluster, warnings.catch_warnings():
        # FSDP2 warns about every model whose output is a view (most Hugging Face models): about
        # in-place edits of it after the forward, which the analysis never makes.
        warnings.filterwarnings("ignore", message="FSDP2-wrapped module", category=UserWarning)
        sharded = cluster.shard(model, plan)
        return engine.analyze(sharded, input_size, **{**options, "device": None})


analyze.__doc__ = (engine.analyze.__doc__ or "").replace(
    "        forward_kwargs / **kwargs:",
    "        hardware: also estimate the time on a chip: a catalog name (``\"h100-sxm\"``, see\n"
    "            ``tt.hardware_names()``), ``\"local\"`` (this machine, calibrated) or a ``tt.Hardware``;\n"
    "            every layer gets ``estimated_time`` and ``bound``, the report ``estimate``.\n"
    "        parallel: analyse one rank of a parallel layout (``tt.Parallel(fsdp=8, tp=2, ...)``),\n"
    "            applied to a fake copy of the model in a simulated cluster: per-rank MACs and memory,\n"
    "            ``report.parallel`` with the layout and the collectives' bytes.\n"
    "        forward_kwargs / **kwargs:",
)
