"""MODEL, as the user names it, turned into a module and the inputs it usually takes.

The forms, tried in this order: ``torchvision:NAME``, ``timm:NAME``, ``hf:TYPE`` or
``hf:path/config.json``; user code ``file.py:Name`` / ``package.module:name``; a pickled
model file (``.pt``) or a saved exported program (``.pt2``), with --trust-pickle; a ``config.json`` or a folder holding one; a bare
name (torchvision, then timm, then a Hugging Face model type).

Models are built on the meta device unless --device asks for real tensors, so building one
costs no memory and never needs weights."""

from __future__ import annotations

import inspect
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import CLIError, one_line
from .exported import SUFFIX as EXPORTED_SUFFIX, load_exported
from .files import PICKLE_SUFFIXES, load_pickled_model, load_weights
from .hf_inputs import input_hint
from .huggingface import build_hf, model_types
from .inputs import InputShape
from .suggest import close_matches
from .usercode import build_user_model, looks_like_code
from .zoo import build_timm, build_torchvision, timm_names, torchvision_names

FORMS = "a torchvision name, timm:NAME, hf:TYPE, a config.json, file.py:Class, package.module:factory, a .pt or a .pt2 file"


@dataclass(frozen=True)
class ModelOptions:
    """Everything besides MODEL that says how to build it."""

    args: dict[str, Any] = field(default_factory=dict)  # --arg: constructor / factory keywords
    overrides: dict[str, Any] = field(default_factory=dict)  # --set: Hugging Face config fields
    hf_class: str | None = None
    device: torch.device = torch.device("meta")
    model_dtype: torch.dtype | None = None
    weights: str | None = None
    trust_pickle: bool = False
    debug: bool = False


@dataclass(frozen=True)
class BuiltModel:
    module: nn.Module
    inputs: list[InputShape] | None  # what it usually takes; None when unknown
    hint: str | None = None  # when unknown: what to pass, if the model says (its main input)


def parse_device(text: str | None) -> torch.device:
    if text is None:
        return torch.device("meta")
    try:
        device = torch.device(text)
    except (RuntimeError, TypeError):
        raise CLIError(f"--device: {text!r} is not a device (use cpu, cuda, cuda:1, meta, ...)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise CLIError("--device cuda: CUDA is not available on this machine")
    if device.type not in ("cpu", "cuda", "meta"):  # mps, xla, ...: only when this torch can use it
        try:
            torch.empty(0, device=device)
        except (RuntimeError, AssertionError):
            raise CLIError(f"--device {text}: not available with this PyTorch build on this machine") from None
    return device


def build(spec: str, options: ModelOptions) -> BuiltModel:
    with warnings.catch_warnings():
        # What a model's construction warns about (deprecations, config advice) is the model
        # author's business, not the analysis's: shown only with --debug.
        if not options.debug:
            warnings.simplefilter("ignore")
        model, inputs = _build(spec.strip(), options)
    if options.model_dtype is not None:
        try:
            model = model.to(options.model_dtype)
        except (RuntimeError, TypeError) as exc:
            raise CLIError(f"--model-dtype {options.model_dtype}: {one_line(exc)}") from exc
    if options.weights is not None:
        load_weights(model, options.weights, options.device)
    _check_forward(model, spec)
    hint = input_hint(model) if inputs is None and hasattr(model, "main_input_name") else None
    return BuiltModel(model, inputs, hint)


def _check_forward(model: nn.Module, spec: str) -> None:
    """A module class without a forward of its own (a VQ-VAE used through encode/decode) has no
    forward pass to analyse: said in one line, not as a TypeError from inside torch."""
    if type(model).forward is not nn.Module.forward:
        return
    methods = [name for name in ("encode", "decode", "generate") if inspect.ismethod(getattr(model, name, None))]
    used = f" (it is used through {', '.join(m + '()' for m in methods)})" if methods else ""
    raise CLIError(
        f"{spec}: {type(model).__name__} has no forward(){used}: there is no forward pass to analyse; "
        "wrap the call you want in a module's forward, or name another class with --hf-class"
    )


def _build(spec: str, options: ModelOptions) -> tuple[nn.Module, list[InputShape] | None]:
    if not spec:
        raise CLIError("MODEL is empty")
    if options.overrides and not (spec.startswith("hf:") or _is_hf_config(spec) or _bare_hf(spec)):
        raise CLIError("--set changes a Hugging Face config: use it with hf:TYPE or a config.json")
    prefix, _, name = spec.partition(":")
    if prefix == "torchvision":
        return build_torchvision(name, options.args, options.device)
    if prefix == "timm":
        return build_timm(name, options.args, options.device)
    if prefix == "hf":
        return build_hf(name, options.overrides, options.args, options.hf_class, options.device, options.debug)
    if looks_like_code(spec):
        return build_user_model(spec, options.args, options.device), None
    if spec.lower().endswith(EXPORTED_SUFFIX):
        if options.args:
            raise CLIError(f"{spec} is a saved exported program: it takes no --arg")
        return load_exported(spec, options.trust_pickle)
    if spec.lower().endswith(PICKLE_SUFFIXES):
        if options.args:
            raise CLIError(f"{spec} is a saved model: it takes no --arg")
        return load_pickled_model(spec, options.device, options.trust_pickle), None
    if _is_hf_config(spec):
        return build_hf(spec, options.overrides, options.args, options.hf_class, options.device, options.debug)
    if spec.endswith(".py"):
        raise CLIError(f"{spec}: name the class or factory that builds the model: {spec}:ClassName")
    if Path(spec).exists() or "/" in spec:
        raise CLIError(f"{spec}: not a model torchtally can read; MODEL is {FORMS}")
    return _build_bare(spec, options)


def names_library_model(spec: str, options: ModelOptions) -> bool:
    """Whether MODEL names a torchvision, timm or Hugging Face model (a prefixed or bare name,
    a config.json) built with random weights: library code, no checkpoint read, no user code
    run (cli/fallback.py may build it twice)."""
    spec = spec.strip()
    if options.weights is not None or options.args.get("pretrained"):
        return False
    if spec.partition(":")[0] in ("torchvision", "timm", "hf"):
        return True
    if looks_like_code(spec) or spec.lower().endswith((EXPORTED_SUFFIX, *PICKLE_SUFFIXES)):
        return False
    return _is_hf_config(spec) or (":" not in spec and "/" not in spec and not spec.endswith(".py"))


def _is_hf_config(spec: str) -> bool:
    path = Path(spec)
    return spec.endswith(".json") or (path.is_dir() and (path / "config.json").is_file())


def _bare_hf(spec: str) -> bool:
    return ":" not in spec and spec not in torchvision_names() and spec not in timm_names() and spec in model_types()


def _build_bare(name: str, options: ModelOptions) -> tuple[nn.Module, list[InputShape] | None]:
    """A bare name: torchvision's, else timm's, else a Hugging Face model type."""
    vision = torchvision_names()
    if name in vision:
        return build_torchvision(name, options.args, options.device)
    timm = timm_names()
    if name in timm or (timm and "." in name and name.split(".")[0] in timm):  # timm's name.pretrained_tag
        return build_timm(name, options.args, options.device)
    types = model_types()
    if name in types:
        return build_hf(name, options.overrides, options.args, options.hf_class, options.device, options.debug)
    candidates = vision + [f"timm:{n}" for n in timm] + [f"hf:{n}" for n in types]
    bare = {c.partition(":")[2] if c.startswith(("timm:", "hf:")) else c: c for c in reversed(candidates)}
    matches = [bare[m] for m in close_matches(name, bare)]
    hint = f" (did you mean {', '.join(matches)}?)" if matches else ""
    raise CLIError(f"unknown model {name!r}{hint}; MODEL is {FORMS}")
