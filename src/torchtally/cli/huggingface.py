"""Hugging Face architectures from a config (a model type with overrides, or a local
config.json), built without weights. Nothing is downloaded (only local files are read) and
remote code is never run (``trust_remote_code=False``)."""

from __future__ import annotations

import json

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from .errors import CLIError, one_line
from .hf_classes import candidate_classes
from .hf_inputs import default_inputs
from .inputs import InputShape
from .suggest import did_you_mean

NEVER_DOWNLOADS = "torchtally never downloads: save the config.json locally and pass its path"


class _ScalarsOnCpu(TorchFunctionMode):
    """Inside a meta-device build: a tensor made from one Python integer or bool
    (``torch.tensor(stride)``, a convolution's stride kept as a buffer) stays real, on the
    CPU, so a forward that computes its padding from it can run; everything else goes to the
    meta device. A 0-dimensional CPU tensor mixes with tensors of any device."""

    def __torch_function__(self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        if (
            func in _SCALAR_MAKERS
            and kwargs.get("device") is None
            and args
            and type(args[0]) in (int, bool)
            and kwargs.get("dtype", torch.int64) in _INTEGRAL
        ):
            kwargs["device"] = "cpu"
        return func(*args, **kwargs)


_SCALAR_MAKERS = (torch.tensor, torch.as_tensor)
_INTEGRAL = (None, torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)


def _scalars_kept_real(device: torch.device) -> contextlib.AbstractContextManager[Any]:
    return _ScalarsOnCpu() if device.type == "meta" else contextlib.nullcontext()


def _transformers() -> Any:
    try:
        import transformers
    except ImportError:
        raise CLIError("Hugging Face models need transformers: pip install transformers") from None
    return transformers


def model_types() -> list[str]:
    try:
        from transformers.models.auto import configuration_auto
    except ImportError:
        return []
    return list(getattr(configuration_auto, "CONFIG_MAPPING_NAMES", {}))


@contextlib.contextmanager
def _quiet(transformers: Any, debug: bool) -> Iterator[None]:
    """transformers logs advice about configs (token ids out of a small vocabulary, ...) that
    is noise for an analysis; --debug keeps it."""
    logging = transformers.logging
    previous = logging.get_verbosity()
    if not debug:
        logging.set_verbosity_error()
    try:
        yield
    finally:
        logging.set_verbosity(previous)


def _config(transformers: Any, target: str, overrides: dict[str, Any]) -> Any:
    path = Path(target)
    try:
        if path.exists():
            if path.is_dir() and not (path / "config.json").is_file():
                raise CLIError(f"{target}: no config.json in this directory")
            _refuse_custom_code(path / "config.json" if path.is_dir() else path, target)
            return transformers.AutoConfig.from_pretrained(
                str(path), trust_remote_code=False, local_files_only=True, **overrides
            )
        if target.endswith(".json"):
            raise CLIError(f"{target}: no such file")
        if "/" in target or "\\" in target:
            raise CLIError(f"hf:{target} is not a local file or directory; {NEVER_DOWNLOADS}")
        types = model_types()
        if target not in types:
            raise CLIError(f"unknown Hugging Face model type {target!r}{did_you_mean(target, types, 'hf:')}")
        return transformers.AutoConfig.for_model(target, **overrides)
    except CLIError:
        raise
    except Exception as exc:  # noqa: BLE001 - a bad config file or value, said in one line
        if "trust_remote_code" in str(exc) or "auto_map" in str(exc):
            raise CLIError(f"{target}: this config needs custom (remote) code, which torchtally never runs") from exc
        raise CLIError(f"{target}: cannot read this config: {one_line(exc)}") from exc


def _refuse_custom_code(config_file: Path, target: str) -> None:
    """A config naming its own classes (``auto_map``) means custom code: never run, and never
    silently replaced by the built-in class of its model_type."""
    try:
        data = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return  # unreadable: transformers says why
    if isinstance(data, dict) and data.get("auto_map"):
        raise CLIError(f"{target}: this config names custom (remote) code in auto_map, which torchtally never runs")


def _check_overrides(config: Any, overrides: dict[str, Any]) -> None:
    """A misspelt --set would silently become a new attribute that nothing reads."""
    try:
        fresh = type(config)()
    except Exception:  # noqa: BLE001 - a config class that needs arguments: nothing to check against
        return
    known = list(fresh.to_dict()) + list(getattr(fresh, "attribute_map", {}))
    for key in overrides:
        if not hasattr(fresh, key):
            raise CLIError(f"--set {key}: {type(config).__name__} has no field {key!r}{did_you_mean(key, known)}")


def _classes(transformers: Any, hf_class: str | None, config: Any) -> list[Any]:
    if hf_class is None:
        if getattr(config, "is_encoder_decoder", False):  # the whole model, not its decoder alone
            return [transformers.AutoModel, transformers.AutoModelForCausalLM]
        # A language model's head is part of its cost; other architectures have none.
        return [transformers.AutoModelForCausalLM, transformers.AutoModel]
    found = getattr(transformers, hf_class, None) if hf_class.isidentifier() else None
    if not isinstance(found, type):
        autos = [name for name in dir(transformers) if name.startswith("AutoModel")]
        raise CLIError(f"--hf-class: transformers has no class {hf_class!r}{did_you_mean(hf_class, autos)}")
    return [found]


def _instantiate(cls: Any, config: Any, kwargs: dict[str, Any]) -> nn.Module:
    if cls.__name__.startswith("Auto"):
        return cls.from_config(config, trust_remote_code=False, **kwargs)  # type: ignore[no-any-return]
    return cls._from_config(config, **kwargs)  # type: ignore[no-any-return]


def build_hf(
    target: str, overrides: dict[str, Any], kwargs: dict[str, Any], hf_class: str | None, device: torch.device, debug: bool
) -> tuple[nn.Module, list[InputShape] | None]:
    transformers = _transformers()
    with _quiet(transformers, debug):
        config = _config(transformers, target, overrides)
        _check_overrides(config, overrides)
        classes = _classes(transformers, hf_class, config)
        if hf_class is None:  # after the auto classes, the classes that take this config
            classes += [cls for cls in candidate_classes(transformers, config) if cls not in classes]
        model = None
        for position, cls in enumerate(classes):
            try:
                with torch.device(device), _scalars_kept_real(device):
                    model = _instantiate(cls, config, kwargs)
                break
            except ValueError as exc:  # "Unrecognized configuration class": try the next class
                if position + 1 < len(classes) and "Unrecognized configuration class" in str(exc):
                    continue
                if "Unrecognized configuration class" in str(exc):
                    raise CLIError(
                        f"hf:{target}: no transformers model class takes a {type(config).__name__}; "
                        "name one with --hf-class"
                    ) from exc
                raise CLIError(f"building {cls.__name__} from the {target} config failed: {one_line(exc)}") from exc
            except Exception as exc:  # noqa: BLE001
                raise CLIError(f"building {cls.__name__} from the {target} config failed: {one_line(exc)}") from exc
    assert model is not None
    if device.type == "meta":
        _stray_parameters_to_meta(model)
    return model, default_inputs(model, config)


def _stray_parameters_to_meta(model: nn.Module) -> None:
    """A parameter made by a constructor that ignores the default device (``torch.Tensor(n)``:
    XCodec2's masked_spec_embed) is left real, on the CPU, in a meta-device build, where it
    meets meta tensors in the forward: it joins the others on the meta device."""
    moved: dict[int, nn.Parameter] = {}  # one stand-in per parameter: a tied one stays tied
    for module in model.modules():
        for name, param in module._parameters.items():
            if param is not None and param.device.type != "meta":
                if id(param) not in moved:
                    moved[id(param)] = nn.Parameter(param.to("meta"), requires_grad=param.requires_grad)
                module._parameters[name] = moved[id(param)]
