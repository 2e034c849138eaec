"""torchinfo's ``summary(model, input_size, ...)``, counted right.

Change ``from torchinfo import summary`` to ``from torchtally.compat.torchinfo import
summary``: the same arguments print torchinfo's layout with torchtally's numbers, and return
the `ModelReport` (torchinfo returns its ModelStatistics; ``print(report)`` shows torchtally's
own tree table). The layout keeps torchinfo's words, so scripts that read them still work:
the ``Layer (type:depth-idx)`` header (``Layer (type (var_name))`` with ``var_names``, whose
labels read ``conv1 (Conv2d)``), ``├─Conv2d: 1-1`` rows under ``=====`` rules, ``Mult-Adds``
as the MACs column's title, and the footer lines in torchinfo's order: ``Total params``,
``Trainable params``, ``Non-trainable params``, ``Total mult-adds (G)`` (M, G or T as
torchinfo picks), then ``Input size (MB)``, ``Forward/backward pass size (MB)``, ``Params
size (MB)``, ``Estimated Total Size (MB)`` in torchinfo's MB of 10^6 bytes. A line under them
says how torchtally counted (mult-adds: the MACs of every aten operator, no bias additions;
each parameter once; real dtypes; forward/backward: twice every leaf module's outputs,
where torchinfo took only the layers holding parameters), then torchtally's own lines
follow (used and unused parameters, FLOPs, peak memory, how the run was made).

Arguments, as torchinfo's:

* ``input_size`` (with the batch dimension; a list of shapes for several inputs) or
  ``input_data`` (tensors, a list of positional arguments or a dict of keyword arguments);
  ``dtypes`` (one per input of ``input_size``); ``**kwargs`` go to ``model.forward``.
* ``batch_dim``: input_size has no batch dimension; one of size 1 is inserted at that
  position in every shape (``input_data`` is used as given, as torchinfo does).
* ``col_names``, mapped to `tt.Column`: ``input_size`` -> Input Shape, ``output_size`` ->
  Output Shape, ``num_params`` -> Param #, ``params_percent`` -> Param %, ``kernel_size`` ->
  Kernel Shape, ``mult_adds`` -> MACs (multiply-accumulates of every operator; torchinfo
  also counted bias additions and guessed from module classes), ``trainable`` -> Trainable.
  torchtally's own column names (``flops``, ``memory_read``, …) are accepted too. Default:
  torchinfo's, ``("output_size", "num_params")``.
* ``row_settings``, mapped to `tt.RowSetting`: ``depth`` -> ``type_names`` (``Conv2d:
  1-1`` labels), ``var_names`` -> labels with the attribute name, ``conv1 (Conv2d)``
  (``var_names`` wins over ``depth``), ``ascii_only`` -> ``ascii_only``,
  ``hide_recursive_layers`` -> nothing to do (a module called N times is already one row,
  ``x N``, never a ``(recursive)`` row). torchtally's ``hide_empty``, ``collapse_repeats``,
  ``type_names`` are accepted too. Default: torchinfo's, ``("depth",)``.
* ``depth`` (default 3), ``mode`` (``"eval"`` by default, ``"train"``, or ``"same"`` to leave
  the modules' flags as they are), ``device`` (where the inputs go; the model is never
  moved: a model elsewhere is an error that says so; torchinfo moved it).
* ``verbose``: 0 prints nothing; 1 and ``None`` (the default) print the table (in a
  notebook too, once: the returned report, as that cell's value, does not show it again;
  torchinfo's default there was to print nothing); 2 also prints the per-operator
  breakdown (``report.by_operator()``).
* ``col_width`` and ``cache_forward_pass`` are accepted and not used: columns fit their
  contents, and there is no global cache (render the returned report again instead:
  ``report.table(depth=1)``).

Unknown column or row names raise `tt.InputError` listing the valid torchinfo names. Unlike
torchinfo, a forward pass is needed: without ``input_size`` or ``input_data`` it is an error.
"""

from __future__ import annotations

from enum import Enum

from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn

from ..errors import InputError
from ..engine.inputs import DtypeSpec
from ..report.model import ModelReport
from ._common import dims, emit
from ..engine.run import analyze
from ..report.settings import Column, RowSetting, Style, ViewOptions
from .torchinfo_text import render

COLUMNS = {
    "input_size": Column.INPUT_SHAPE,
    "output_size": Column.OUTPUT_SHAPE,
    "num_params": Column.PARAMS,
    "params_percent": Column.PARAMS_PERCENT,
    "kernel_size": Column.KERNEL_SIZE,
    "mult_adds": Column.MACS,
    "trainable": Column.TRAINABLE,
}
ROWS: dict[str, RowSetting | None] = {
    "depth": RowSetting.TYPE_NAMES,
    "var_names": None,
    "ascii_only": RowSetting.ASCII_ONLY,
    "hide_recursive_layers": None,
}
DEFAULT_COLUMNS = ("output_size", "num_params")
DEFAULT_ROWS = ("depth",)


def _names(values: Any, what: str) -> list[str]:
    if isinstance(values, str):
        values = (values,)
    if not isinstance(values, Iterable):
        raise InputError(f"{what} must be a list of names; got {values!r}")
    # Any enum by its value: ours, and torchinfo's own ColumnSettings/RowSettings.
    return [str(value.value if isinstance(value, Enum) else value).strip().lower() for value in values]


def _columns(col_names: Any) -> tuple[Column, ...]:
    ours = {column.value: column for column in Column}
    columns = []
    for name in _names(DEFAULT_COLUMNS if col_names is None else col_names, "col_names"):
        column = COLUMNS.get(name) or ours.get(name)
        if column is None:
            raise InputError(
                f"col_names {name!r} is not one of torchinfo's: {', '.join(repr(n) for n in COLUMNS)} "
                f"(torchtally's column names are accepted too: {', '.join(repr(n) for n in ours)})"
            )
        columns.append(column)
    return tuple(dict.fromkeys(columns))


def _rows(row_settings: Any) -> tuple[RowSetting, ...]:
    ours = {setting.value: setting for setting in RowSetting}
    names = _names(DEFAULT_ROWS if row_settings is None else row_settings, "row_settings")
    settings = []
    for name in names:
        if name not in ROWS and name not in ours:
            raise InputError(
                f"row_settings {name!r} is not one of torchinfo's: {', '.join(repr(n) for n in ROWS)} "
                f"(torchtally's row settings are accepted too: {', '.join(repr(n) for n in ours)})"
            )
        setting = ROWS[name] if name in ROWS else ours[name]
        if setting is RowSetting.TYPE_NAMES and "var_names" in names:
            continue  # the attribute name says more, and the label keeps the type
        if setting is not None:
            settings.append(setting)
    return tuple(dict.fromkeys(settings))


def _with_batch(shape: Any, batch_dim: int) -> Any:
    whole = dims(shape)
    if whole is not None:
        dims_ = list(whole)
        position = batch_dim if batch_dim >= 0 else len(dims_) + 1 + batch_dim
        if not 0 <= position <= len(dims_):
            raise InputError(f"batch_dim={batch_dim} is outside the shape {list(shape)} (with the batch added)")
        return tuple(dims_[:position] + [1] + dims_[position:])
    if isinstance(shape, Mapping):
        return {name: _with_batch(value, batch_dim) for name, value in shape.items()}
    if isinstance(shape, (tuple, list)):
        return [_with_batch(value, batch_dim) for value in shape]
    raise InputError(f"input_size must be a shape or a list of shapes; got {shape!r}")


def summary(
    model: nn.Module,
    input_size: Any = None,
    input_data: Any = None,
    batch_dim: int | None = None,
    cache_forward_pass: bool | None = None,
    col_names: Iterable[str] | None = None,
    col_width: int = 25,
    depth: int = 3,
    device: torch.device | str | None = None,
    dtypes: DtypeSpec = None,
    mode: str | None = None,
    row_settings: Iterable[str] | None = None,
    verbose: int | None = None,
    **kwargs: Any,
) -> ModelReport:
    """torchinfo's ``summary``: print the table (see ``verbose``) and return the report.
    See the module docstring for how each argument maps to torchtally."""
    if isinstance(verbose, bool):  # torchinfo compares verbose with its levels: True is 1
        verbose = int(verbose)
    if isinstance(verbose, Enum):  # torchinfo's Verbosity
        verbose = verbose.value
    if verbose not in (None, 0, 1, 2):
        raise InputError(f"verbose must be 0 (quiet), 1 (the table) or 2 (also the operators); got {verbose!r}")
    columns, rows = _columns(col_names), _rows(row_settings)
    ViewOptions.parse(depth, columns, rows, Style.TREE)  # a bad depth fails before a long analysis
    if batch_dim is not None:
        if isinstance(batch_dim, bool) or not isinstance(batch_dim, int):
            raise InputError(f"batch_dim must be a whole number (where to insert a batch of 1); got {batch_dim!r}")
        if input_size is not None:
            input_size = _with_batch(input_size, batch_dim)
    options: dict[str, Any] = {
        "input_data": input_data, "dtypes": dtypes, "device": device, "mode": mode, "forward_kwargs": kwargs,
    }
    report = analyze(model, input_size, **options)
    report = report.with_view(depth, columns=columns, rows=rows, style=Style.TREE)
    if verbose == 0:
        return report
    var_names = "var_names" in _names(DEFAULT_ROWS if row_settings is None else row_settings, "row_settings")
    text = render(report, var_names)
    return emit(text + "\n" + str(report.by_operator()) if verbose == 2 else text, report)
