"""Model zoos: torchvision's builders and timm's, always without weights (nothing is ever
downloaded), with the input size their pretrained weights were trained at."""

from __future__ import annotations

import inspect
import warnings
from typing import Any

import torch
from torch import nn

from .errors import CLIError, one_line
from .inputs import InputShape
from .suggest import did_you_mean

VIDEO_FRAMES = 16  # torchvision's video models are trained on 16-frame clips


def torchvision_names() -> list[str]:
    try:
        from torchvision import models  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        return []
    return list(models.list_models())


DOWNLOADING = ("weights", "weights_backbone", "pretrained", "checkpoint_path", "pretrained_cfg_overlay")


def _refuse_downloads(kwargs: dict[str, Any], what: str) -> dict[str, Any]:
    """``kwargs`` without the arguments that fetch weights (an error when one asks for them)."""
    for key in DOWNLOADING:
        if kwargs.get(key) not in (None, False, ""):
            raise CLIError(f"--arg {key}=... would make {what} download or load weights; torchtally never does: use --weights FILE")
    return {key: value for key, value in kwargs.items() if key not in DOWNLOADING}


def build_torchvision(name: str, kwargs: dict[str, Any], device: torch.device) -> tuple[nn.Module, list[InputShape]]:
    try:
        from torchvision import models  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        raise CLIError(f"torchvision:{name} needs torchvision: pip install torchvision") from None
    names = models.list_models()
    if name not in names:
        raise CLIError(f"unknown torchvision model {name!r}{did_you_mean(name, names)}")
    kwargs = _refuse_downloads(kwargs, "torchvision")
    builder = models.get_model_builder(name)
    # Detection and segmentation builders fetch ImageNet backbone weights unless told not to.
    accepted = inspect.signature(builder).parameters
    options: dict[str, Any] = {"weights": None}
    if "weights_backbone" in accepted:
        options["weights_backbone"] = None
    try:
        # Some builders warn that their default initialisation will change: not the analysis' business.
        with torch.device(device), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            model = builder(**options, **kwargs)
    except Exception as exc:  # noqa: BLE001 - the builder's own error, said in one line
        raise CLIError(f"building torchvision model {name!r} failed: {one_line(exc)}") from exc
    return model, _torchvision_inputs(name, model)


def _torchvision_inputs(name: str, model: nn.Module) -> list[InputShape]:
    """The input the model's first pretrained weights expect (their transforms say the
    size), for the architecture as built (a ViT's own ``image_size`` wins)."""
    from torchvision import models  # type: ignore[import-untyped,unused-ignore]

    weights = list(models.get_model_weights(name))
    transforms = weights[0].transforms() if weights else None
    kind = type(transforms).__name__
    crop = getattr(transforms, "crop_size", None) or getattr(transforms, "resize_size", None) or [224]
    height, width = (crop[0], crop[0]) if len(crop) == 1 else (crop[0], crop[1])
    image_size = getattr(model, "image_size", None)
    if isinstance(image_size, int):  # ViTs are built for one size, whatever the weights were
        height = width = image_size
    if kind == "VideoClassification":
        frames = max(VIDEO_FRAMES, int(weights[0].meta.get("min_temporal_size", 1)))
        return [InputShape(None, (1, 3, frames, height, width))]
    if kind == "OpticalFlow":  # two frames in, the flow between them out
        return [InputShape(None, (1, 3, 224, 224)), InputShape(None, (1, 3, 224, 224))]
    if kind == "ObjectDetection":  # the model resizes images itself; use the size it resizes to
        size = getattr(getattr(model, "transform", None), "min_size", (800,))
        side = int(size[0]) if isinstance(size, (tuple, list)) and size else 800
        return [InputShape(None, (1, 3, side, side))]
    return [InputShape(None, (1, 3, height, width))]


def timm_names() -> list[str]:
    try:
        import timm  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        return []
    return list(timm.list_models())


def build_timm(name: str, kwargs: dict[str, Any], device: torch.device) -> tuple[nn.Module, list[InputShape]]:
    try:
        import timm
    except ImportError:
        raise CLIError(f"timm:{name} needs timm, which is not installed: pip install timm") from None
    if not timm.is_model(name):
        raise CLIError(f"unknown timm model {name!r}{did_you_mean(name, timm.list_models(), 'timm:')}")
    kwargs = _refuse_downloads(kwargs, "timm")
    try:
        with torch.device(device):
            model = timm.create_model(name, pretrained=False, **kwargs)
    except Exception as exc:  # noqa: BLE001
        raise CLIError(f"building timm model {name!r} failed: {one_line(exc)}") from exc
    config = getattr(model, "pretrained_cfg", None) or {}
    size = config.get("input_size") if isinstance(config, dict) else None
    if isinstance(size, (tuple, list)) and all(isinstance(d, int) for d in size):
        return model, [InputShape(None, (1, *size))]
    return model, [InputShape(None, (1, 3, 224, 224))]
