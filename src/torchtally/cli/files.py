"""Files of tensors and pickles. A whole pickled model is only loaded with --trust-pickle:
unpickling can run any code the file's author wrote. State dicts load with
``weights_only=True`` (or from safetensors), which cannot."""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import CLIError, one_line
from .usercode import importable_from

PICKLE_SUFFIXES = (".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".bin")
# Checkpoints often wrap the state dict: {"state_dict": {...}, "epoch": 3, ...}.
WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "module")


def _existing(path_text: str) -> Path:
    path = Path(path_text)
    if not path.is_file():
        raise CLIError(f"{path_text}: no such file")
    return path


def load_pickled_model(path_text: str, device: torch.device, trust_pickle: bool) -> nn.Module:
    path = _existing(path_text)
    if not trust_pickle:
        try:
            content = torch.load(path, map_location=device, weights_only=True)
        except pickle.UnpicklingError as exc:
            raise CLIError(
                f"{path_text} holds pickled Python objects (a whole model), and unpickling runs code from the "
                "file: pass --trust-pickle only if you trust its source (or save a state dict and use --weights)"
            ) from exc
        except Exception as exc:  # noqa: BLE001 - not a torch file at all, truncated, ...
            raise CLIError(f"{path_text}: cannot load it: {one_line(exc)}") from exc
        raise CLIError(
            f"{path_text} holds {_describe(content)}, not a model: name the architecture as MODEL "
            f"and pass --weights {path_text} --device cpu"
        )
    try:
        # Unpickling imports the model's classes: from the working directory or beside the
        # file, as `python -c "torch.load(...)"` run there would.
        with importable_from(os.getcwd()), importable_from(str(path.resolve().parent)):
            content = torch.load(path, map_location=device, weights_only=False)
    except ModuleNotFoundError as exc:
        raise CLIError(
            f"{path_text}: cannot load it: {one_line(exc)} (the model's classes must be importable: "
            "run from the folder of their code or set PYTHONPATH)"
        ) from exc
    except Exception as exc:  # noqa: BLE001
        raise CLIError(f"{path_text}: cannot load it: {one_line(exc)}") from exc
    if not isinstance(content, nn.Module):
        raise CLIError(f"{path_text} holds {_describe(content)}, not an nn.Module")
    return content


def _describe(content: Any) -> str:
    if isinstance(content, Mapping) and content and all(isinstance(v, torch.Tensor) for v in content.values()):
        return f"a state dict ({len(content)} tensors)"
    return f"a {type(content).__name__}"


def _state_dict(content: Any, path_text: str) -> Mapping[str, torch.Tensor]:
    if isinstance(content, Mapping):
        for key in WRAPPER_KEYS:
            inner = content.get(key)
            if isinstance(inner, Mapping) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
                return inner
        if all(isinstance(v, torch.Tensor) for v in content.values()):
            return content
    raise CLIError(f"{path_text} holds {_describe(content)}, not a state dict of tensors")


def load_weights(model: nn.Module, path_text: str, device: torch.device) -> None:
    """Load a state dict into ``model`` (strictly: every key must match)."""
    if device.type == "meta":
        raise CLIError("--weights needs real tensors, and models are built on the meta device by default: add --device cpu")
    path = _existing(path_text)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            content: Any = load_file(str(path), device=str(device))
        else:
            content = torch.load(path, map_location=device, weights_only=True)
    except ImportError:
        raise CLIError(f"{path_text}: reading .safetensors needs safetensors: pip install safetensors") from None
    except pickle.UnpicklingError as exc:
        raise CLIError(
            f"{path_text} holds pickled Python objects, not only tensors; --weights loads tensors only "
            "(a whole pickled model can be given as MODEL with --trust-pickle)"
        ) from exc
    except Exception as exc:  # noqa: BLE001
        raise CLIError(f"{path_text}: cannot load it: {one_line(exc)}") from exc
    state = _state_dict(content, path_text)
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shapes that do not fit: the first "size mismatch for ..." says which
        lines = [line.strip() for line in str(exc).splitlines() if "size mismatch" in line]
        reason = lines[0].rstrip(".") if lines else one_line(exc)
        raise CLIError(f"--weights {path_text} does not fit the model: {reason}") from exc
    if missing or unexpected:
        parts = [f"{label}: {_some(keys)}" for label, keys in (("missing", missing), ("unexpected", unexpected)) if keys]
        raise CLIError(f"--weights {path_text} does not fit the model: {'; '.join(parts)}")


def _some(keys: list[str], shown: int = 3) -> str:
    more = f" (+{len(keys) - shown} more)" if len(keys) > shown else ""
    return ", ".join(keys[:shown]) + more
