"""The usual inputs of a Hugging Face model, from what transformers says about it: its
``main_input_name`` and its config (and sub-configs): token ids within the positions the
model has, images at the vision config's size, video clips of the configured frame count,
audio (a second of waveform at the sampling rate, or log-mel features in the layout the
first convolution reads), time-series windows, Pix2Struct's flattened patches, Mllama's
tiles, both inputs of a dual encoder (CLIP, SigLIP), and every argument the forward cannot
run without (VideoPrism's clip and text). When one cannot be
told (Qwen2-VL's ``grid_thw``): a hint naming each missing argument, with a shape of the
main input's own modality."""

from __future__ import annotations

import ast
import inspect
import re
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from . import hf_audio
from . import hf_vision
from .inputs import InputShape

TOKENS = 128  # the default token batch: 1 x 128
SAMPLE_RATE = 16_000  # a second of audio where the config names no rate
MEL_FRAMES = 3000  # 30 s of 10 ms log-mel frames, what Whisper-like encoders take
# The inputs whose usual shape a config tells (see _make).
MAKERS = (
    "input_ids", "pixel_values", "pixel_values_videos", "input_values", "input_features", "past_values",
    "flattened_patches", "aspect_ratio_ids", "aspect_ratio_mask", "latents",
)


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


def _size(configs: list[Any], model: nn.Module | None = None) -> tuple[int, int]:
    """The image size the config names; else the one a fixed-size patch embedding inside the
    model was built for (a timm tower's ``img_size``); else 224. Rounded down to whole
    attention windows where the backbone cuts its patches into ``num_windows`` per side."""
    height, width = _named_size(configs) or _built_size(model) or (224, 224)
    patch, windows = _first_int(configs, "patch_size"), _first_int(configs, "num_windows")
    if patch is not None and windows is not None and height >= patch * windows and width >= patch * windows:
        step = patch * windows  # RF-DETR: 518 px = 37 patches of 14, not 4 windows of 9: 504
        height, width = height // step * step, width // step * step
    return height, width


def _named_size(configs: list[Any]) -> tuple[int, int] | None:
    for config in configs:
        size = getattr(config, "image_size", None) or getattr(config, "crop_size", None) or getattr(config, "max_img_size", None)
        if isinstance(size, int) and size > 0:
            return size, size
        if isinstance(size, (list, tuple)) and len(size) >= 2:
            return int(size[0]), int(size[1])
    return None


def _built_size(model: nn.Module | None) -> tuple[int, int] | None:
    for module in model.modules() if model is not None else ():
        size = getattr(module, "img_size", None)
        if isinstance(size, (list, tuple)) and len(size) == 2 and all(isinstance(d, int) and d > 0 for d in size):
            return int(size[0]), int(size[1])
    return None


def _vocab(configs: list[Any]) -> int | None:
    """The vocabulary size token ids are drawn below (given by value: a forward may read them,
    padding masks and lengths); None where the config names none (ids then carry no values)."""
    return _first_int(configs, "vocab_size")


def _prefixed_tokens(config: Any, name: str) -> InputShape | None:
    """Token ids of a named part (``qformer_input_ids``): of the sub-config of that name
    (``qformer_config``) where there is one, else of the model's own text."""
    part = getattr(config, name[: -len("_input_ids")] + "_config", None)
    configs = [part] if part is not None and not isinstance(part, (dict, int, str)) else _sub(config, "text_config")
    vocab = _vocab(configs)
    if vocab is None:
        return None
    limit = _first_int(configs, "max_position_embeddings", "n_positions", "max_seq_len")
    return InputShape(name, (1, min(TOKENS, limit or TOKENS)), torch.long, vocab=vocab)


def _tokens(config: Any) -> tuple[int, int]:
    limit = _first_int(_sub(config, "text_config", "decoder"), "max_position_embeddings", "n_positions", "max_seq_len")
    return 1, min(TOKENS, limit or TOKENS)


def _image(model: nn.Module, config: Any, name: str = "pixel_values") -> InputShape:
    configs = _sub(config, "vision_config", "backbone_config", "encoder")
    vision = getattr(config, "vision_config", None)
    if vision is not None and not isinstance(vision, (dict, int, str)):  # SAM2: the size is its backbone's
        configs += _sub(vision, "backbone_config")[1:]
    height, width = _size(configs, model)
    channels = _first_int(configs, "num_channels", "in_channels", "in_chans") or 3
    frames = _first_int(configs, "num_frames", "frames_per_clip")
    if frames is None and name == "pixel_values_videos":
        frames = 8  # a short clip where the config names no length
    if frames is not None:  # a video model: (batch, frames, channels, height, width)
        return InputShape(name, (1, frames, channels, height, width))
    image = InputShape(name, (1, channels, height, width))
    return hf_vision.image_as_read(model, configs, image)  # SuperGlue: an image pair; DepthPro: 1536 px


def _mels_first(model: nn.Module, mels: int) -> bool:
    """Whether the model's first 1-D convolution reads the mel bins as channels (Whisper-like:
    (batch, mels, frames)) rather than frames of mel features (conformer-like)."""
    first = next((m for m in model.modules() if isinstance(m, nn.Conv1d)), None)
    return first is not None and first.in_channels == mels


def _audio(model: nn.Module, config: Any, main: str) -> InputShape | None:
    configs = _sub(config, "audio_config", "encoder", "encoder_config")
    if main == "input_values":
        rate = _first_int(configs, "sampling_rate") or SAMPLE_RATE
        channels = _first_int(configs, "audio_channels")
        return hf_audio.waveform(model, config, InputShape(main, (1, channels, rate) if channels else (1, rate)))
    if (image := hf_audio.spectrogram_image(model, config, main)) is not None:  # CLAP: mel frames as a square image
        return image
    mels = _first_int(configs, "num_mel_bins")
    positions = _first_int(configs, "max_source_positions")
    if mels is not None and positions is None and _mels_first(model, mels):
        positions = _first_int(configs, "max_position_embeddings")  # one position per stride-2 frame pair
    if mels is not None and positions is not None:  # Whisper-like: (batch, mels, frames), frames fixed
        return InputShape(main, (1, mels, 2 * positions))
    if mels is not None:  # conformer-like: (batch, frames, mels), or stacks of frames an input layer reads
        stacked = _input_linear_width(model) or hf_audio.stacked_features(config, mels)
        if stacked is not None and stacked > mels and stacked % mels == 0:
            return InputShape(main, (1, MEL_FRAMES * mels // stacked, stacked))
        return InputShape(main, (1, MEL_FRAMES, mels))
    features = _first_int(configs, "input_feat_per_channel", "input_feat_size", "feature_size", "feature_projection_input_dim")
    if features is not None:  # filterbank frames: (batch, frames, features)
        return InputShape(main, (1, 584, features * (_first_int(configs, "input_channels") or 1)))
    return hf_audio.unnamed_features(model, config, main)


def _input_linear_width(model: nn.Module) -> int | None:
    """The input width of a linear layer named for the input (``input_linear``) that is the
    model's first layer with weights (in registration order; a model with 2-D convolutions
    subsamples its frames with them first, as an image: then None)."""
    if any(isinstance(module, nn.Conv2d) for module in model.modules()):
        return None
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            return int(module.in_features) if "input" in name.rsplit(".", 1)[-1] else None
        if any(True for _ in module.parameters(recurse=False)):
            return None
    return None


def _series(config: Any) -> InputShape | None:
    """A time-series window: (batch, context_length, num_input_channels), or (batch,
    context_length) where the config names no channels (a univariate forecaster: TimesFM)."""
    length, channels = _first_int([config], "context_length"), _first_int([config], "num_input_channels")
    if length is None:
        return None
    return InputShape("past_values", (1, length) if channels is None else (1, length, channels))


def _patches(config: Any) -> InputShape | None:
    """Pix2Struct's flattened patches: (batch, seq_len, 2 + patch_embed_hidden_size), the row
    and column index of each patch, then its pixels."""
    configs = _sub(config, "vision_config")
    length, size = _first_int(configs, "seq_len"), _first_int(configs, "patch_embed_hidden_size")
    return None if length is None or size is None else InputShape("flattened_patches", (1, length, 2 + size))


def _latents(config: Any) -> InputShape | None:
    """A codec decoder's latents: (batch, hidden_size, frames), a second at its frame rate."""
    hidden, rate = _first_int([config], "hidden_size"), getattr(config, "frame_rate", None)
    if hidden is None or not isinstance(rate, (int, float)) or rate < 1:
        return None
    return InputShape("latents", (1, hidden, int(rate)))


def _patch_embedding(model: nn.Module) -> nn.Module | None:
    """The patch embedding: the first 2-D or 3-D convolution whose stride is its kernel, else
    the first linear layer named for patches (``patch_embed``)."""
    linear = None
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Conv3d)) and module.kernel_size == module.stride:
            return module
        if linear is None and isinstance(module, nn.Linear) and "patch" in name:
            linear = module
    return linear


def _grid_name(model: nn.Module) -> str | None:
    """The forward's argument holding the grid of patches (``grid_thw``, ``image_grid_thw``)."""
    return next((name for name in _parameters(model) if name.endswith("grid_thw")), None)


def _packed(model: nn.Module, config: Any, name: str) -> InputShape | None:
    """A vision tower that takes one image's patches packed with their grid (Qwen2-VL-like:
    ``grid_thw``, whose values the forward reads): an image of the config's size (rounded
    down to whole merged patches), the grid ``[[1, rows, columns]]`` in patches, given by
    value, and the patches as the patch embedding reads them: flattened for a 3-D convolution
    or a linear layer (``(patches, channels x frames x patch x patch)``), as the forward
    documents them where it does (``(num_patches, num_channels * patch_size**2)``,
    ``(batch_size, sequence_length, channels, patch, patch)``), else ``(patches, channels,
    patch, patch)`` for a 2-D convolution."""
    embedding = _patch_embedding(model)
    configs = _sub(config, "vision_config")
    if isinstance(embedding, (nn.Conv2d, nn.Conv3d)):
        patch: int | None = int(embedding.kernel_size[-1])
        elements = embedding.in_channels
        for size in embedding.kernel_size:
            elements *= int(size)
    elif isinstance(embedding, nn.Linear):
        patch, elements = _first_int(configs, "patch_size"), embedding.in_features
    else:
        return None
    if patch is None:
        return None
    kernel = getattr(configs[-1], "merge_kernel_size", None)
    merge = _first_int(configs, "spatial_merge_size") or (int(kernel[0]) if isinstance(kernel, (list, tuple)) else 1)
    height, width = _size(configs, model)
    rows, cols = (max(side // patch // merge, 1) * merge for side in (height, width))
    grid = _grid_name(model)
    if name == grid:
        # counted in patches, or in the merged tokens the pixels come in where they are documented so
        main = _main(model)
        counted = (_documented_dims(model, main) or [""])[0] if main != grid else ""
        step = merge if "token" in counted else 1
        return InputShape(name, (1, 3), torch.long, values=((1, rows // step, cols // step),))
    count = rows * cols
    if isinstance(embedding, nn.Conv3d):
        return InputShape(name, (count, elements))
    dims = _documented_dims(model, name) or []
    if isinstance(embedding, nn.Conv2d) and len(dims) == 5:
        return InputShape(name, (1, count, embedding.in_channels, *embedding.kernel_size))
    documented = _packed_as_documented(dims, configs, count * elements)
    if documented is not None:
        return InputShape(name, documented)
    if isinstance(embedding, nn.Conv2d):
        return InputShape(name, (count, embedding.in_channels, *embedding.kernel_size))
    return InputShape(name, (count, elements))


def _navit(model: nn.Module, config: Any, name: str) -> InputShape | None:
    """A NaViT-like tower (SigLIP2: a forward that takes its patches' ``spatial_shapes``): one
    image of the config's patch count (a square grid of ``num_patches``, else the image size
    over the patch size), its patches flattened to the linear patch embedding's width, every
    patch valid, and the grid by value."""
    embedding = _patch_embedding(model)
    configs = _sub(config, "vision_config")
    count, patch = _first_int(configs, "num_patches"), _first_int(configs, "patch_size")
    side = int(count**0.5) if count is not None else (_size(configs, model)[0] // patch if patch else None)
    if not isinstance(embedding, nn.Linear) or not side:
        return None
    if name == "spatial_shapes":
        return InputShape(name, (1, 2), torch.long, values=((side, side),))
    if name == "pixel_attention_mask":
        return InputShape(name, (1, side * side), torch.long, values=((1,) * (side * side),))
    return InputShape(name, (1, side * side, embedding.in_features))


def _packed_as_documented(dims: list[str], configs: list[Any], elements: int) -> tuple[int, ...] | None:
    """Packed patches as documented: a count first, then dimensions the config gives (names,
    numbers and their products and powers, ``patch_size * spatial_merge_size``); the count is
    what holds ``elements`` values. None when the docs give no such shape or it does not fit."""
    if len(dims) < 2 or dims[0] == "batch_size":
        return None
    rest = [_evaluated(dim, configs) for dim in dims[1:]]
    if any(size is None or size < 1 for size in rest):
        return None
    sizes = [int(size) for size in rest if size is not None]
    each = 1
    for size in sizes:
        each *= size
    if elements % each:
        return None
    return (elements // each, *sizes)


def _evaluated(expression: str, configs: list[Any]) -> int | None:
    """An arithmetic expression over the config's integers (``in_channels * patch_size**2``)."""
    try:
        tree = ast.parse(expression.strip(), mode="eval").body
    except SyntaxError:
        return None

    def value(node: ast.AST) -> int | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, ast.Name):
            return _first_int(configs, node.id)
        if isinstance(node, ast.BinOp):
            left, right = value(node.left), value(node.right)
            if left is None or right is None:
                return None
            if isinstance(node.op, ast.Mult):
                return left * right
            if isinstance(node.op, ast.Pow) and 0 <= right <= 4:
                return int(left**right)
            if isinstance(node.op, ast.FloorDiv) and right:
                return left // right
        return None

    return value(tree)


def _parameters(model: nn.Module) -> dict[str, inspect.Parameter]:
    try:
        return dict(inspect.signature(model.forward).parameters)
    except (TypeError, ValueError):
        return {}


def _takes(model: nn.Module, name: str) -> bool:
    return name in _parameters(model)


def _required(model: nn.Module) -> list[str]:
    """The forward's arguments without a default: the call fails without them. A vision
    tower's ``grid_thw`` too, even with a default (PaddleOCR-VL's): its patches mean nothing
    without their grid (full models take ``image_grid_thw`` and run on text alone)."""
    plain = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [
        name for name, p in _parameters(model).items()
        if p.kind in plain and (p.default is inspect.Parameter.empty or name == "grid_thw")
    ]  # fmt: skip


def _reads_embeddings(model: nn.Module) -> bool:
    """A model whose token embedding is no single table (one per codebook: Qwen3-Omni's code
    predictor, MusicGen's decoder) is fed embeddings: ``inputs_embeds``."""
    getter = getattr(model, "get_input_embeddings", None)
    try:
        table = getter() if callable(getter) else None
    except Exception:  # noqa: BLE001 - a model that does not say: keep its main input
        return False
    return isinstance(table, nn.Module) and not isinstance(table, nn.Embedding) and _takes(model, "inputs_embeds")


def _main(model: nn.Module) -> str:
    """The main input's name; a sub-model whose class keeps the default ``input_ids`` but
    whose forward takes none (vision towers) is named by the first input its forward takes
    that a config describes, else by its first required argument."""
    main = str(getattr(model, "main_input_name", "input_ids"))
    names = _parameters(model)
    if main == "input_ids" and _reads_embeddings(model):
        return "inputs_embeds"
    if names and main not in names:
        required = _required(model)
        return next((name for name in names if name in MAKERS), required[0] if required else main)
    return main


def _make(model: nn.Module, config: Any, name: str) -> InputShape | None:
    """The usual shape of the input ``name``, from the config; None when none can be told.
    Where the forward documents a different number of dimensions for it (an audio model
    reading mel frames, not a waveform), the documented shape, its dimensions read from the
    config."""
    made = _from_config(model, config, name)
    if made is None or made.valued or name not in ("input_values", "input_features"):
        return made
    return _documented(model, config, made) or hf_audio.as_unpacked(model, config, made)


def _documented(model: nn.Module, config: Any, made: InputShape) -> InputShape | None:
    """``made`` reshaped as the forward's docstring gives it (`of shape `(batch_size, 1,
    time_steps)``), when that has more dimensions: each named dimension from the
    config (or its sub-configs), a number as it is, the batch 1, any other the size ``made``
    has in the same place from the right; None when the docs say no different shape."""
    assert made.name is not None
    dims = _documented_dims(model, made.name)
    if dims is None or len(dims) <= len(made.shape):  # fewer: a doc naming a waveform for mel features
        return None
    configs = _sub(config, "audio_config", "vision_config", "encoder", "encoder_config", "text_config")
    shape = []
    for position, dim in enumerate(dims):
        from_right = len(dims) - position
        if dim == "batch_size":
            shape.append(1)
        elif dim.isdigit():
            shape.append(int(dim))
        elif (value := _first_int(configs, dim)) is not None:
            shape.append(value)
        elif from_right <= len(made.shape) and from_right < len(dims):
            shape.append(made.shape[-from_right])
        else:
            return None
    return InputShape(made.name, tuple(shape), made.dtype)


def _documented_dims(model: nn.Module, name: str) -> list[str] | None:
    """The dimensions the forward's docstring gives ``name`` (`of shape `(a, b, c)``)."""
    found = re.search(rf"{re.escape(name)}\s*\(`[^`]*` of shape `\(([^)]*)\)`", inspect.getdoc(model.forward) or "")
    return None if found is None else [dim.strip() for dim in found.group(1).split(",")]


def _from_config(model: nn.Module, config: Any, name: str) -> InputShape | None:
    grid = _grid_name(model)
    if grid is not None and name != "input_ids" and name in (grid, _main(model)):
        return _packed(model, config, name)
    if _takes(model, "spatial_shapes") and name in ("pixel_values", "pixel_attention_mask", "spatial_shapes"):
        return _navit(model, config, name)
    if name == "input_ids":
        return InputShape(name, _tokens(config), torch.long, vocab=_vocab(_sub(config, "text_config")))
    if name.endswith("_input_ids") and name != "decoder_input_ids":
        return _prefixed_tokens(config, name) or hf_audio.mel_tokens(model, config, name)
    if name in ("aspect_ratio_ids", "aspect_ratio_mask") or (name == "pixel_values" and _takes(model, "aspect_ratio_ids")):
        return _tiles(config, name)
    if name in ("pixel_values", "pixel_values_videos"):
        return _image(model, config, name)
    if name in ("input_values", "input_features"):
        return _audio(model, config, name)
    if name == "past_values":
        return _series(config)
    if name == "flattened_patches":
        return _patches(config)
    if name == "latents":
        return _latents(config)
    if name == "inputs_embeds":
        hidden = _first_int([config], "hidden_size", "d_model")
        return None if hidden is None else InputShape(name, (*_tokens(config), hidden))
    return hf_audio.audio_input(model, config, name)


# The inputs of one medium beside the text, in the order they are looked for.
_MEDIA = ("pixel_values", "pixel_values_videos", "input_features", "input_values")
# A config key naming a token that stands for a medium inside the text (a VLM's image token).
_MEDIA_TOKEN = re.compile(r"(image|video|audio|vision|speech|img|boi|boa|media)\w*_token")


def _names_media_token(config: Any, depth: int = 0) -> bool:
    """Whether the config (or a sub-config) names a token that stands for images, video or
    audio inside the text: its media are spliced into the text, which runs on its own."""
    items = config.items() if isinstance(config, dict) else vars(config).items() if hasattr(config, "__dict__") else ()
    for key, value in items:
        if isinstance(key, str) and _MEDIA_TOKEN.search(key):
            return True
        if depth < 2 and (isinstance(value, dict) or hasattr(value, "to_dict")) and _names_media_token(value, depth + 1):
            return True
    return False


def _text_and_media(model: nn.Module, config: Any) -> list[str] | None:
    """Token ids and one medium, both: a dual encoder (CLIP: text and images compared), or a
    model that takes ids and a medium while its config names no token for that medium in the
    text (TVP's clip and query, CLVP's text and speech): the medium is not spliced into the
    text, the forward reads both."""
    if not _takes(model, "input_ids"):
        return None
    media = next((name for name in _MEDIA if _takes(model, name)), None)
    if media is None:
        return None
    if (_dual_encoder(model) or not _names_media_token(config)) and _make(model, config, media) is not None:
        return ["input_ids", media]
    return None


def _dual_encoder(model: nn.Module) -> bool:
    """CLIP-like: text and image towers compared, nothing generated. (A VLM's base model
    generates nothing either, but runs on its text alone: its images need their tokens.)"""
    can_generate = getattr(model, "can_generate", None)
    generates = bool(can_generate()) if callable(can_generate) else False
    return (
        hasattr(model, "get_text_features") and hasattr(model, "get_image_features") and not generates
        and _takes(model, "input_ids") and _takes(model, "pixel_values")
    )  # fmt: skip


def _tiles(config: Any, name: str) -> InputShape | None:
    """Mllama-like tiled images: one image cut into the most tiles the config allows, with
    its aspect-ratio id and tile mask (indices: zeros are valid)."""
    configs = _sub(config, "vision_config")
    tiles = _first_int(configs, "max_num_tiles")
    if tiles is None:
        return None
    if name == "aspect_ratio_ids":
        return InputShape(name, (1, 1), torch.long)
    if name == "aspect_ratio_mask":
        return InputShape(name, (1, 1, tiles), torch.long)
    height, width = _size(configs)
    return InputShape(name, (1, 1, tiles, _first_int(configs, "num_channels") or 3, height, width))


def default_inputs(model: nn.Module, config: Any) -> list[InputShape] | None:
    """The inputs a forward of ``model`` usually takes; None when none can be told (then
    `input_hint` says what to pass)."""
    main = _main(model)
    both = _text_and_media(model, config)
    names = [main, *(name for name in both if name != main)] if both and main in both else both or [main]
    if getattr(config, "is_encoder_decoder", False) and _takes(model, "decoder_input_ids"):
        names.append("decoder_input_ids")
    # An input the forward cannot run without (a text-video model's ids beside its clip)
    names += [name for name in _required(model) + hf_audio.companions(model, main) if name not in names]
    names += [name for name in hf_vision.needed(model, config, _tokens(config)[1]) if name not in names]  # Bros's bbox
    if "pixel_values" in names and _takes(model, "spatial_shapes"):  # NaViT-like: patches, their mask, their grid
        names += [name for name in ("pixel_attention_mask", "spatial_shapes") if _takes(model, name) and name not in names]
    inputs: list[InputShape] = []
    for name in names:
        if name == "decoder_input_ids":
            decoder = _first_int(_sub(config, "decoder"), "max_target_positions", "max_position_embeddings")
            vocab = _vocab(_sub(config, "decoder"))
            inputs.append(InputShape(name, (1, min(TOKENS, decoder or TOKENS)), torch.long, vocab=vocab))
            continue
        made = (
            _make(model, config, name)
            or hf_vision.refused_input(model, _sub(config, "vision_config"), name, _tokens(config)[1])
            or _zero_indices(model, name, inputs)
        )
        if made is None:
            return _documented_call(model, config) if name == main else None
        inputs.append(made)
    first = next(iter(_parameters(model)), None)
    if len(inputs) == 1 and first in (None, inputs[0].name):  # positional, as the model's own examples call it
        return [replace(inputs[0], name=None)]
    return inputs


def _zero_indices(model: nn.Module, name: str, made: list[InputShape]) -> InputShape | None:
    """A required integer argument documented per sample or per position of the main input
    (``freq (`torch.LongTensor` of shape `(batch_size,)`)``, a padding indicator of shape
    ``(batch_size, sequence_length)``: TimesFM), given as zeros by value: the first index,
    no padding. Not a mask (zeros would hide everything), and only beside a main input whose
    shape says the sequence's length."""
    documented = _documented_arguments(model).get(name)
    if not made or "mask" in name or len(made[0].shape) < 2 or documented is None or documented[0] not in _INTEGER_KINDS:
        return None
    sizes = {"batch_size": made[0].shape[0], "sequence_length": made[0].shape[1]}
    dims = documented[1]
    if not dims or any(dim not in sizes for dim in dims):
        return None
    shape = tuple(sizes[dim] for dim in dims)
    return InputShape(name, shape, torch.long, values=_zeros(shape))


def _zeros(shape: tuple[int, ...]) -> Any:
    """Nested tuples of zeros of this shape: an integer input's values (the first index)."""
    zeros: Any = 0
    for size in reversed(shape):
        zeros = (zeros,) * size
    return zeros


# `states (`torch.Tensor` of shape `(batch_size, episode_length, state_dim)`):` and whether
# the entry says `*optional*`
_DOC_ARGUMENT = re.compile(r"^\s*(\w+) \(`torch\.(\w+)` of shape `\(([^)]*)\)`(, \*optional\*)?\)", re.MULTILINE)
_INTEGER_KINDS = ("LongTensor", "IntTensor")


def _documented_arguments(model: nn.Module) -> dict[str, tuple[str, list[str], bool]]:
    """Each argument the forward's docstring gives a shape: its tensor kind (``LongTensor``),
    dimensions and whether it is documented as optional."""
    return {
        name: (kind, [dim.strip() for dim in dims.split(",") if dim.strip()], bool(optional))
        for name, kind, dims, optional in _DOC_ARGUMENT.findall(inspect.getdoc(model.forward) or "")
    }


def _documented_call(model: nn.Module, config: Any) -> list[InputShape] | None:
    """Where no config tells the main input: the inputs the forward's docstring documents
    as not optional, each shaped as documented (Decision Transformer's states, actions,
    returns and timesteps): a batch of 1, numbers as they are, a dimension named by the config
    as it says, every length the same (the usual tokens, within the config's positions);
    integer inputs as zeros by value (the first index). None unless every dimension is told."""
    configs = _sub(config, "text_config", "vision_config", "audio_config")
    positions = _first_int(configs, "max_position_embeddings", "max_ep_len")
    length = min(TOKENS, positions) if positions else TOKENS
    taken = _parameters(model)
    inputs = []
    for name, (kind, dims, optional) in _documented_arguments(model).items():
        if optional or name not in taken:
            continue
        shape = []
        for dim in dims:
            size = 1 if dim == "batch_size" else int(dim) if dim.isdigit() else _first_int(configs, dim)
            if size is None and dim.endswith(("length", "_len")):
                size = length
            if size is None:
                return None
            shape.append(size)
        if kind in _INTEGER_KINDS:
            inputs.append(InputShape(name, tuple(shape), torch.long, values=_zeros(tuple(shape))))
        elif kind in ("Tensor", "FloatTensor"):
            inputs.append(InputShape(name, tuple(shape)))
        else:
            return None
    return inputs if any(i.name == _main(model) for i in inputs) else None


# What a main input looks like when the config does not say: shapes of its modality.
EXAMPLES = {
    "input_values": "1x16000",
    "input_features": "1x80x3000",
    "pixel_values": "1x3x224x224",
    "pixel_values_videos": "1x8x3x224x224",
    "input_ids": "1x128",
}


def input_hint(model: nn.Module) -> str:
    """What to pass when no usual input is known: the main input, with the shape its config
    gives (of its own modality), and every other argument the forward cannot run without."""
    config = getattr(model, "config", None)
    main = _main(model)
    needed = [main] + [name for name in _required(model) if name != main]
    parts, unknown = [], []
    for name in needed:
        made = _make(model, config, name) if config is not None else None
        if made is not None:
            parts.append(f"--input-size {made.text()}")
        else:
            parts.append(f"--input-size {name}={EXAMPLES.get(name, '...')}")
            unknown.append(name)
    listed = " and ".join(repr(name) for name in unknown) or repr(main)
    why = f"its forward needs {listed}, which no default can guess" if unknown else f"its main input is {main!r}"
    grids = [name for name in unknown if "grid" in name]  # Qwen2-VL's grid_thw: the forward reads its values
    if grids:
        why += f"; the forward reads the values of {grids[0]!r}: give them as a real tensor, tt.analyze(..., {grids[0]}=torch.tensor([[1, 32, 32]]))"
    return f"{' '.join(parts)} ({why})"
