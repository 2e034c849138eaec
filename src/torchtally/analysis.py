"""The public ``analyze``: the engine's run, then the estimate when a chip is asked for (see
DESIGN.md: the top level composes the layers; the engine never imports estimate/)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from .engine import run as engine
from .engine.inputs import DtypeSpec, InputSize
from .engine.optim import OptimizerSpec
from .engine.timing import TimingOptions
from .engine.training import LossFn
from .estimate import Hardware, estimate_time
from .estimate.apply import resolve
from .formulas.registry import Formula, OpLike
from .report.model import ModelReport


def analyze(
    model: nn.Module,
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
    forward_kwargs: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> ModelReport:
    chip = None if hardware is None else resolve(hardware)  # a bad name fails before a long run
    report = engine.analyze(
        model, input_size, input_data=input_data, dtypes=dtypes, device=device, mode=mode, run=run,
        training=training, optimizer=optimizer, loss_fn=loss_fn, formulas=formulas, timing=timing,
        forward_kwargs=forward_kwargs, **kwargs,
    )
    return report if chip is None else estimate_time(report, chip)


analyze.__doc__ = (engine.analyze.__doc__ or "").replace(
    "        forward_kwargs / **kwargs:",
    "        hardware: also estimate the time on a chip: a catalog name (``\"h100-sxm\"``, see\n"
    "            ``tt.hardware_names()``), ``\"local\"`` (this machine, calibrated) or a ``tt.Hardware``;\n"
    "            every layer gets ``estimated_time`` and ``bound``, the report ``estimate``.\n"
    "        forward_kwargs / **kwargs:",
)
