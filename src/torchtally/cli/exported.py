"""A saved exported program (``torch.export.save``, a ``.pt2`` archive) as MODEL.

Loading one can run code from the file: ``torch.export.load`` unpickles some entries with
``weights_only=False`` (tensors it cannot store raw, custom objects, and example inputs that
a safe load refuses). So a ``.pt2`` is treated like a pickled model: loaded only with
--trust-pickle. Its example inputs are the usual inputs."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import CLIError, one_line
from .inputs import InputShape

SUFFIX = ".pt2"


def load_exported(path_text: str, trust_pickle: bool) -> tuple[nn.Module, list[InputShape] | None]:
    path = Path(path_text)
    if not path.is_file():
        raise CLIError(f"{path_text}: no such file")
    if not trust_pickle:
        raise CLIError(
            f"{path_text} is a saved exported program, and torch.export.load unpickles parts of it, which can "
            "run code from the file: pass --trust-pickle only if you trust its source"
        )
    try:
        program = torch.export.load(str(path))
    except Exception as exc:  # noqa: BLE001 - not an archive, another torch's format, ...
        raise CLIError(f"{path_text}: cannot load it as an exported program: {one_line(exc)}") from exc
    try:
        module = program.module()
    except Exception as exc:  # noqa: BLE001
        raise CLIError(f"{path_text}: the exported program cannot make its module: {one_line(exc)}") from exc
    return module, _example_shapes(program.example_inputs, module)


def _example_shapes(example: Any, module: nn.Module) -> list[InputShape] | None:
    """The example inputs as the CLI's input shapes: positional ones unnamed, keyword ones
    by name (positional ones then named after the forward's parameters)."""
    if not example:
        return None
    args, kwargs = example
    if not all(isinstance(v, torch.Tensor) for v in (*args, *kwargs.values())):
        return None  # nested or non-tensor inputs: --input-size cannot say them
    if not kwargs:
        return [InputShape(None, tuple(t.shape), t.dtype) for t in args]
    names = list(inspect.signature(module.forward).parameters)
    if len(names) < len(args):
        return None
    named = [InputShape(name, tuple(t.shape), t.dtype) for name, t in zip(names, args)]
    return named + [InputShape(name, tuple(t.shape), t.dtype) for name, t in kwargs.items()]
