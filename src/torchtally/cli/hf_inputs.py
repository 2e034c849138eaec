"""The usual inputs of a Hugging Face model, from what transformers says about it: its
``main_input_name`` and its config (and sub-configs): token ids within the positions the
model has, images at the vision config's size, video clips of the configured frame count,
audio (a second of waveform at the sampling rate, or log-mel features), and both inputs of
a dual encoder (CLIP, SigLIP). When none of these fits: a hint naming the input."""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import nn

from .inputs import InputShape

TOKENS = 128  # the default token batch: 1 x 128
SAMPLE_RATE = 16_000  # a second of audio where the config names no rate
MEL_FRAMES = 3000  # 30 s of 10 ms log-mel frames, what Whisper-like encoders take


def _sub(config: Any, *names: str) -> list[Any]:
    """The config, then its sub-configs of these names that exist."""
    found = [config]
    for name in names:
        sub = getattr(config, name, None)
        if sub is not None and not isinstance(sub, (dict, int, str)):
            found.append(sub)
    return found


def _first_int(configs: list[Any], *names: str) -> int | None:
    for config in configs:
        for name in names:
            value = getattr(config, name, None)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
    return None


def _size(configs: list[Any]) -> tuple[int, int]:
    for config in configs:
        size = getattr(config, "image_size", None) or getattr(config, "crop_size", None)
        if isinstance(size, int) and size > 0:
            return size, size
        if isinstance(size, (list, tuple)) and len(size) >= 2:
            return int(size[0]), int(size[1])
    return 224, 224


def _tokens(config: Any) -> tuple[int, int]:
    limit = _first_int(_sub(config, "text_config", "decoder"), "max_position_embeddings", "n_positions", "max_seq_len")
    return 1, min(TOKENS, limit or TOKENS)


def _image(config: Any, name: str = "pixel_values") -> InputShape:
    configs = _sub(config, "vision_config", "backbone_config", "encoder")
    height, width = _size(configs)
    channels = _first_int(configs, "num_channels", "in_channels", "in_chans") or 3
    frames = _first_int(configs, "num_frames", "frames_per_clip")
    if frames is None and name == "pixel_values_videos":
        frames = 8  # a short clip where the config names no length
    if frames is not None:  # a video model: (batch, frames, channels, height, width)
        return InputShape(name, (1, frames, channels, height, width))
    return InputShape(name, (1, channels, height, width))


def _audio(config: Any, main: str) -> InputShape | None:
    configs = _sub(config, "audio_config", "encoder", "encoder_config")
    if main == "input_values":
        rate = _first_int(configs, "sampling_rate") or SAMPLE_RATE
        channels = _first_int(configs, "audio_channels")
        return InputShape(main, (1, channels, rate) if channels else (1, rate))
    mels = _first_int(configs, "num_mel_bins")
    positions = _first_int(configs, "max_source_positions")
    if mels is not None and positions is not None:  # Whisper-like: (batch, mels, frames), frames fixed
        return InputShape(main, (1, mels, 2 * positions))
    if mels is not None:  # conformer-like: (batch, frames, mels)
        return InputShape(main, (1, MEL_FRAMES, mels))
    features = _first_int(configs, "input_feat_per_channel", "input_feat_size", "feature_size", "feature_projection_input_dim")
    if features is not None:  # filterbank frames: (batch, frames, features)
        return InputShape(main, (1, 584, features * (_first_int(configs, "input_channels") or 1)))
    return None


def _takes(model: nn.Module, name: str) -> bool:
    try:
        return name in inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False


def _dual_encoder(model: nn.Module) -> bool:
    """CLIP-like: text and image towers compared, nothing generated."""
    can_generate = getattr(model, "can_generate", None)
    generates = bool(can_generate()) if callable(can_generate) else False
    return (
        hasattr(model, "get_text_features") and hasattr(model, "get_image_features") and not generates
        and _takes(model, "input_ids") and _takes(model, "pixel_values")
    )  # fmt: skip


def default_inputs(model: nn.Module, config: Any) -> list[InputShape] | None:
    """The inputs a forward of ``model`` usually takes; None when none can be told."""
    main = str(getattr(model, "main_input_name", "input_ids"))
    inputs: list[InputShape] = []
    if _dual_encoder(model):
        inputs = [InputShape("input_ids", _tokens(config), torch.long), _image(config)]
    elif main == "input_ids":
        inputs = [InputShape("input_ids", _tokens(config), torch.long)]
    elif main in ("pixel_values", "pixel_values_videos"):
        inputs = [_image(config, main)]
    elif main in ("input_values", "input_features"):
        audio = _audio(config, main)
        if audio is None:
            return None
        inputs = [audio]
    else:
        return None
    if getattr(config, "is_encoder_decoder", False) and _takes(model, "decoder_input_ids"):
        decoder = _first_int(_sub(config, "decoder"), "max_target_positions", "max_position_embeddings")
        inputs.append(InputShape("decoder_input_ids", (1, min(TOKENS, decoder or TOKENS)), torch.long))
    if len(inputs) == 1:  # one input: positional, as the model's own examples call it
        return [InputShape(None, inputs[0].shape, inputs[0].dtype)]
    return inputs


def input_hint(model: nn.Module) -> str:
    """What to pass when no usual input is known: the model's main input, by name."""
    main = str(getattr(model, "main_input_name", "input_ids"))
    examples = {
        "input_values": "input_values=1x16000",
        "input_features": "input_features=1x80x3000",
        "pixel_values": "pixel_values=1x3x224x224",
        "pixel_values_videos": "pixel_values_videos=1x8x3x224x224",
        "input_ids": "input_ids=1x128",
    }
    return f"--input-size {examples.get(main, main + '=...')} (its main input is {main!r})"
