"""The user's own code: ``path/to/file.py:ClassOrFactory`` or ``package.module:factory``,
called with the ``--arg`` values. Importing it runs it, as ``python file.py`` would: that is
what the user asked for by naming it."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
from torch import nn

from .errors import CLIError, one_line
from .suggest import did_you_mean


def looks_like_code(spec: str) -> bool:
    """``file.py:Name`` or ``package.module:name`` (and not ``hf:...``-style prefixes, which
    the caller checks first)."""
    source, sep, attribute = spec.rpartition(":")
    return bool(sep and source and attribute) and all(part.isidentifier() for part in attribute.split("."))


@contextlib.contextmanager
def importable_from(folder: str) -> Iterator[None]:
    """Imports next to the file (or in the working directory) work, as with ``python file.py``."""
    added = folder not in sys.path
    if added:
        sys.path.insert(0, folder)
    try:
        yield
    finally:
        if added and folder in sys.path:
            sys.path.remove(folder)


def _import(source: str) -> ModuleType:
    if source.endswith(".py") or os.sep in source or "/" in source:
        path = Path(source)
        if not path.is_file():
            raise CLIError(f"{source}: no such file")
        name = f"torchtally_user_{path.stem}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise CLIError(f"{source}: not a Python file that can be imported")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses and pickling look their module up there
        try:
            with importable_from(str(path.resolve().parent)):
                spec.loader.exec_module(module)
        except Exception as exc:  # noqa: BLE001 - the user's code failed: one line, --debug for more
            sys.modules.pop(name, None)
            raise CLIError(f"{source}: importing it failed: {one_line(exc)}") from exc
        return module
    try:
        with importable_from(os.getcwd()):
            return importlib.import_module(source)
    except ModuleNotFoundError as exc:
        if exc.name and source.startswith(exc.name):
            raise CLIError(f"no module named {exc.name!r} (from {source}:...)") from exc
        raise CLIError(f"{source}: importing it failed: {one_line(exc)}") from exc
    except Exception as exc:  # noqa: BLE001
        raise CLIError(f"{source}: importing it failed: {one_line(exc)}") from exc


def _public_names(module: ModuleType) -> list[str]:
    return [name for name, value in vars(module).items() if not name.startswith("_") and callable(value)]


def build_user_model(spec: str, kwargs: dict[str, Any], device: torch.device) -> nn.Module:
    source, _, attribute = spec.rpartition(":")
    module = _import(source)
    target: Any = module
    for depth, part in enumerate(attribute.split(".")):
        if not hasattr(target, part):
            known = _public_names(module) if depth == 0 else [n for n in dir(target) if not n.startswith("_")]
            raise CLIError(f"{source} does not define {attribute!r}{did_you_mean(part, known)}")
        target = getattr(target, part)
    if isinstance(target, nn.Module):  # a module-level model instance
        if kwargs:
            raise CLIError(f"{spec} is a model instance, not a class or factory: it takes no --arg")
        return target
    if not callable(target):
        raise CLIError(f"{spec} is a {type(target).__name__}, not an nn.Module class or a function returning one")
    try:
        with torch.device(device):
            model = target(**kwargs)
    except Exception as exc:  # noqa: BLE001
        if isinstance(exc, TypeError) and "required" in str(exc) and "argument" in str(exc):
            hint = " (give constructor arguments with --arg NAME=VALUE)"
        elif device.type == "meta" and ("meta" in str(exc) or isinstance(exc, NotImplementedError)):
            hint = " (it may need real tensors: try --device cpu)"
        else:
            hint = ""
        raise CLIError(f"{spec}(...) failed: {one_line(exc)}{hint}") from exc
    if not isinstance(model, nn.Module):
        raise CLIError(f"{spec}(...) returned a {type(model).__name__}, not a torch.nn.Module")
    return model
