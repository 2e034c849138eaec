"""Default inputs of Hugging Face audio models that ``hf_inputs`` cannot name from the main
input alone: what a sub-model or vocoder reads, told by the first layer that reads it (a
spectrogram of a vocoder's mel channels, the features a conformer tower's ``hidden_states``
are, a waveform or latents a codec's convolution takes), frames stacked as the config says,
the masks a forward cannot run without (every frame valid), mel frames given as ids, and
layouts the forward's code shows where its docstring says otherwise (the names it unpacks
a shape into; a waveform no forward adds the channel to). Each rule covers a class of
models and reads only what transformers says: config fields, the forward's signature,
docstring and code, the model's layers."""

from __future__ import annotations

import inspect
import re
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from . import hf_inputs, hf_vision
from .inputs import InputShape


# Main inputs that are audio, or features of it a sub-model starts from.
AUDIO_INPUTS = ("input_features", "input_values", "hidden_states")


def _configs(config: Any) -> list[Any]:
    return hf_inputs._sub(config, "audio_config", "encoder", "encoder_config")


def _rate(configs: list[Any]) -> int:
    return hf_inputs._first_int(configs, "sampling_rate", "input_sampling_rate") or hf_inputs.SAMPLE_RATE


def _hop(configs: list[Any]) -> int | None:
    """Samples per frame: the product of the strides a codec or vocoder resamples by
    (``upsample_rates``, ``downsampling_ratios``), where the config lists them."""
    for config in configs:
        for name in ("upsample_rates", "downsampling_ratios", "downsample_rates", "ratios"):
            steps = getattr(config, name, None)
            if isinstance(steps, (list, tuple)) and steps and all(isinstance(s, int) and s > 0 for s in steps):
                hop = 1
                for step in steps:
                    hop *= step
                return hop
    return None


def _first_layer(model: nn.Module) -> nn.Module | None:
    """The first layer with weights, in registration order: the one that reads the input."""
    for module in model.modules():
        if any(True for _ in module.parameters(recurse=False)):
            return module
    return None


def _features(configs: list[Any]) -> int | None:
    """The width of a frame of audio features, where the config names it."""
    return hf_inputs._first_int(configs, "num_mel_bins", "n_mel_bins", "input_feat_size", "input_size", "mel_dim", "model_in_dim", "feature_size")


def _time_last(model: nn.Module, name: str) -> bool | None:
    """Whether the forward's unpacking of the input's shape, else its docstring, puts the
    frames last (``(batch_size, mel_bins, time_steps)``) or second (``(batch_size,
    sequence_length, config.model_in_dim)``); None when neither says."""
    dims = _unpacked(model, name) or hf_inputs._documented_dims(model, name) or _plain_documented_dims(model, name)
    if not dims or len(dims) < 3:
        return None
    frames = re.compile(r"length|frames|time|steps")
    if frames.search(dims[-1]) and not frames.search(dims[1]):
        return True
    if frames.search(dims[1]):
        return False
    return None


def _unpacked(model: nn.Module, name: str) -> list[str] | None:
    """The names the forward unpacks ``name.shape`` into (``batch_size, num_mel_bins,
    padded_feature_length = input_features.shape``): what the code reads, where a docstring
    may say otherwise (Qwen3-ASR's documents frames second)."""
    tree = hf_vision.forward_tree(model)
    unpacked = hf_vision.unpacked_shapes(tree, name) if tree is not None else []
    return next((dims for dims in unpacked if "?" not in dims), None)  # every dimension named


def as_unpacked(model: nn.Module, config: Any, made: InputShape) -> InputShape:
    """Frames of features turned mels-first where the forward unpacks the input's shape so,
    its middle dimension a config field (``num_mel_bins``) that ``made`` has last."""
    dims = _unpacked(model, made.name) if made.name is not None and len(made.shape) == 3 else None
    if dims is None or len(dims) != 3 or _time_last(model, made.name or "") is not True:
        return made
    width = hf_inputs._first_int(_configs(config), dims[1])
    if width is None or made.shape[2] != width or made.shape[1] == width:
        return made
    return replace(made, shape=(1, width, made.shape[1]))


def _plain_documented_dims(model: nn.Module, name: str) -> list[str] | None:
    """The shape a docstring gives ``name`` in prose (``spectrogram (`torch.Tensor`): ... of
    shape `(batch_size, sequence_length, config.model_in_dim)```)."""
    doc = inspect.getdoc(model.forward) or ""
    found = re.search(rf"\b{re.escape(name)} \([^)]*\):\s+[^`]*?of shape `\(([^)]*)\)`", doc, re.S)
    return None if found is None else [dim.strip() for dim in " ".join(found.group(1).split()).split(",")]


def spectrogram(model: nn.Module, config: Any, name: str) -> InputShape | None:
    """A vocoder's spectrogram (an input named for it: HiFi-GAN, BigVGAN): as many channels as
    its first 1-D convolution reads (the mel bins), a second of frames at the hop the upsampling
    strides make; frames second where the docstring says so (the forward transposes them)."""
    first = _first_layer(model)
    if not isinstance(first, nn.Conv1d):
        return None
    configs = _configs(config)
    mels, frames = first.in_channels, _rate(configs) // (_hop(configs) or 256)
    if _time_last(model, name) is False:
        return InputShape(name, (1, frames, mels))
    return InputShape(name, (1, mels, frames))


def hidden_states(model: nn.Module, config: Any, name: str) -> InputShape | None:
    """The ``hidden_states`` a sub-model's forward starts from (an audio tower, a codec's
    encoder or decoder), as its first layer reads them: a linear layer's ``in_features`` per
    frame (1, frames, width); a 2-D convolution of one channel: frames of the config's
    feature width, (1, frames, features); a 1-D convolution: its channels over a second of
    samples, or of frames at the hop its strides make where it reads more than one channel."""
    first, configs = _first_layer(model), _configs(config)
    if isinstance(first, nn.Linear):
        return InputShape(name, (1, hf_inputs.MEL_FRAMES, first.in_features))
    if isinstance(first, nn.Conv2d) and first.in_channels == 1:
        features = _features(configs)
        return None if features is None else InputShape(name, (1, hf_inputs.MEL_FRAMES, features))
    if isinstance(first, nn.Conv1d):
        rate, hop = _rate(configs), _hop(configs)
        if first.in_channels == 1:
            return InputShape(name, (1, 1, rate))
        return None if hop is None else InputShape(name, (1, first.in_channels, max(rate // hop, 1)))
    return None


def stacked_features(config: Any, mels: int) -> int | None:
    """The width of a frame where the config stacks ``num_stacked_frames`` mel frames into one
    (FunASR's low-frame-rate input: 7 x 80)."""
    stack = hf_inputs._first_int(_configs(config), "num_stacked_frames", "stack_frames", "frame_stack")
    return None if stack is None else stack * mels


def mask(model: nn.Module, config: Any, name: str) -> InputShape | None:
    """A mask the forward cannot run without, over the main input's frames: every frame
    valid. Given by value (ones) where it is a long or float mask, whose values the forward
    may sum to lengths; a boolean one (annotated ``BoolTensor``, whose sense the docs do not
    give) is left without values."""
    frames = _main_frames(model, config)
    if frames is None:
        return None
    annotation = str(hf_inputs._parameters(model)[name].annotation)
    if "Bool" in annotation:
        return InputShape(name, (1, frames), torch.bool)
    return InputShape(name, (1, frames), torch.long, values=((1,) * frames,))


def audio_input(model: nn.Module, config: Any, name: str) -> InputShape | None:
    """The usual shape of an input ``hf_inputs`` has no rule for, where it is audio's."""
    if "spectrogram" in name:
        return spectrogram(model, config, name)
    if name == "hidden_states" and hf_inputs._main(model) == name:
        return hidden_states(model, config, name)
    if name == "decoder_input_values":
        made = hf_inputs._make(model, config, hf_inputs._main(model))
        return None if made is None else replace(made, name=name)
    if name.endswith("_mel") or name == "mel":  # log-mel frames named for them (Gemma3n's audio_mel)
        features = _features(_configs(config))
        return None if features is None else InputShape(name, (1, hf_inputs.MEL_FRAMES, features))
    if name.endswith("mask") and (name in hf_inputs._required(model) or name in companions(model, hf_inputs._main(model))):
        return mask(model, config, name)
    return None


def spectrogram_image(model: nn.Module, config: Any, name: str) -> InputShape | None:
    """Log-mel frames a Swin-like tower reads as one square image ``spec_size`` a side (CLAP:
    the frames folded into ``spec_size // num_mel_bins`` rows of mel bins): (batch, channels
    of its patch embedding, frames, mels), the frames filling the square exactly,
    ``spec_size**2 // mels`` (1024 of 64 bins for 256 px), so that nothing is resampled."""
    configs = _configs(config)
    side, mels = hf_inputs._first_int(configs, "spec_size"), hf_inputs._first_int(configs, "num_mel_bins")
    embedding = hf_inputs._patch_embedding(model)
    if side is None or mels is None or not isinstance(embedding, nn.Conv2d) or side % mels:
        return None
    return InputShape(name, (1, embedding.in_channels, side * side // mels, mels))


def waveform(model: nn.Module, config: Any, made: InputShape) -> InputShape:
    """A second of waveform (``made``), padded to whole tokens (`whole_tokens`); or, for a
    model without any convolution whose first layer is a norm or a linear layer (SpeechT5's
    bare encoder-decoder, built without its speech pre-net), what that layer reads: frames of
    its width, (1, frames, width): no layer of it could read samples."""
    first = _first_layer(model)
    if isinstance(first, (nn.LayerNorm, nn.Linear)) and not any(isinstance(m, nn.modules.conv._ConvNd) for m in model.modules()):
        width = int(first.normalized_shape[-1] if isinstance(first, nn.LayerNorm) else first.in_features)
        if width > 1:  # one feature a step: samples after all (Muse Spark's unsqueezed waveform)
            return replace(made, shape=(1, hf_inputs.MEL_FRAMES, width))
    if len(made.shape) == 2 and made.name is not None and _channels_as_given(model, made.name):
        made = replace(made, shape=(1, 1, made.shape[-1]))
    return whole_tokens(config, made)


# What a forward writes to add the channel dimension to a waveform (``input_values[:, None]``).
_ADDS_DIMENSION = re.compile(r"None\s*\]|\[\s*None|\.unsqueeze\(|\.view\(|\.reshape\(")


def _channels_as_given(model: nn.Module, name: str) -> bool:
    """Whether a waveform reaches the model's first 1-D convolution, of one channel, as the
    caller gives it: no forward on the way from the root to it (the modules whose names lead
    there) writes anything that adds a dimension on a line naming its input (wav2vec2's
    feature encoder: ``input_values[:, None]``); then the waveform must carry the channel
    itself, (batch, 1, samples), whatever the docstring says (OmniASR's, PE Audio's DAC
    encoder)."""
    path = next((n for n, m in model.named_modules() if isinstance(m, nn.Conv1d)), None)
    if path is None or model.get_submodule(path).in_channels != 1:
        return False
    parts = path.split(".")
    for depth in range(len(parts)):
        module = model.get_submodule(".".join(parts[:depth]))
        if isinstance(module, (nn.ModuleList, nn.ModuleDict, nn.Sequential)):
            continue
        try:
            source = inspect.getsource(type(module).forward)
            arguments = list(inspect.signature(module.forward).parameters)
        except (OSError, TypeError, ValueError):
            return False
        own = name if depth == 0 else (arguments[0] if arguments else None)
        if own is None:
            return False
        named = re.compile(rf"\b{re.escape(own)}\b")
        if any(named.search(line) and _ADDS_DIMENSION.search(line) for line in source.splitlines()):
            return False
    return True


def whole_tokens(config: Any, made: InputShape) -> InputShape:
    """A waveform padded up to whole tokens where the config says how many samples make one
    (``samples_per_token``: a tower that patches the samples and checks the length)."""
    per_token = hf_inputs._first_int(_configs(config), "samples_per_token")
    if per_token is None or made.shape[-1] % per_token == 0:
        return made
    return replace(made, shape=(*made.shape[:-1], -(-made.shape[-1] // per_token) * per_token))


def _main_frames(model: nn.Module, config: Any) -> int | None:
    """How many frames the main audio input holds (the dimension the docs or the code name
    for time, else the one that is not the feature width); None where it is not audio."""
    main = hf_inputs._main(model)
    if main not in AUDIO_INPUTS and "mel" not in main and "spectrogram" not in main:
        return None
    made = hf_inputs._make(model, config, main)
    if made is None or len(made.shape) < 2:
        return None
    last = _time_last(model, main)
    if last is None:  # undocumented: the frames are the dimension that is not the feature width
        width = _features(_configs(config))
        last = len(made.shape) == 3 and made.shape[1] == width and made.shape[2] != width
    return made.shape[-1] if last else made.shape[1]


def companions(model: nn.Module, main: str) -> list[str]:
    """The mask a feature extractor returns beside audio features (``input_features_mask``),
    where the forward takes it: given even where it defaults to None, as some forwards read
    it all the same (Audio Flamingo 3 sums it to lengths)."""
    name = f"{main}_mask"
    needed = main == "input_features" and hf_inputs._takes(model, name) and name not in hf_inputs._required(model)
    if main == "input_values" and getattr(getattr(model, "config", None), "is_encoder_decoder", False):
        # an encoder-decoder of values (SpeechT5): its decoder reads values too, of the same kind
        return ["decoder_input_values"] if hf_inputs._takes(model, "decoder_input_values") else []
    return [name] if needed else []


def unnamed_features(model: nn.Module, config: Any, main: str) -> InputShape | None:
    """Audio features whose width the usual config fields do not give: those of another
    sub-config that names them (``asr_config``: its ``num_mel_bins``), else (batch, frames,
    width) with the width a 2-D convolutional subsampling implies (`_subsampled_width`)."""
    for key, sub in vars(config).items():
        if key.endswith("_config") and hasattr(sub, "to_dict") and sub not in _configs(config):
            made = hf_inputs._audio(model, sub, main)
            if made is not None and len(made.shape) == 3 and hf_inputs._mels_first(model, made.shape[2]):
                # CLVP: the first 1-D convolution reads the features as its channels
                return replace(made, shape=(1, made.shape[2], made.shape[1]))
            if made is not None:
                return made
    width = _subsampled_width(model)
    return None if width is None else InputShape(main, (1, hf_inputs.MEL_FRAMES, width))


def _subsampled_width(model: nn.Module) -> int | None:
    """The feature width of frames a conformer's subsampling reads as a one-channel image
    (Gemma 4's audio tower): 2-D convolutions from one channel, then a linear layer over the
    last one's channels x the features left; so the width is the linear layer's input over
    those channels, times each convolution's stride along the features (128 = 1024 / 32 x 2 x 2)."""
    convs: list[nn.Conv2d] = []
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            if not convs and module.in_channels != 1:
                return None
            convs.append(module)
        elif isinstance(module, nn.Linear) and convs:
            channels = convs[-1].out_channels
            if module.in_features % channels:
                return None
            width = module.in_features // channels
            for conv in convs:
                width *= int(conv.stride[-1])
            return width
        elif any(True for _ in module.parameters(recurse=False)) and not convs and not isinstance(module, nn.Conv2d):
            return None
    return None


def mel_tokens(model: nn.Module, config: Any, name: str) -> InputShape | None:
    """Quantised mel frames given as ids (Inkling's ``audio_input_ids``, documented ``(num_audios,
    max_num_frames, n_mel_bins)``): (1, frames, the config's bins), the ids below the config's
    vocabulary named for the same thing (``mel_vocab_size`` for ``n_mel_bins``)."""
    dims = hf_inputs._documented_dims(model, name)
    if dims is None or len(dims) != 3:
        return None
    bins = hf_inputs._first_int([config], dims[-1])
    words = set(dims[-1].split("_")) - {"n", "num", "size", "bins"}
    vocabs = [key for key in vars(config) if key.endswith("vocab_size") and words & set(key.split("_"))]
    vocab = hf_inputs._first_int([config], vocabs[0]) if len(vocabs) == 1 else None
    if bins is None or vocab is None:
        return None
    return InputShape(name, (1, hf_inputs.MEL_FRAMES, bins), torch.long, vocab=vocab)
