"""Default inputs of Hugging Face vision and multimodal models that the signature alone does
not tell, read from what the model's own forward says about them:

- the image a VQ-GAN encodes into the latent grid its config names (Janus);
- an image big enough for the pyramid of scaled images the config describes (DepthPro);
- the shape its own error message demands of the main input (``raise ValueError("Input must
  be a 5D tensor of shape (batch_size, 2, num_channels, height, width)")``: image pairs of
  keypoint matchers), where that differs from the usual one;
- arguments that look optional in the signature but that the forward refuses to run without
  (``if bbox is None: raise ...``: Bros's boxes, LXMERT's visual features), shaped as the
  docstring documents them, each dimension from the config or the text's length;
- a vision tower's patch grid, where its docstring says an argument is one (MiniCPM-V), and
  each image's downsampling ratio where it documents one (VideoLLaMA3).

``hf_inputs`` asks this module where its own rules give no shape or a wrong one."""

from __future__ import annotations

import ast
import inspect
import math
import re
import textwrap
from typing import Any

import torch
from torch import nn

from . import hf_inputs
from .inputs import InputShape

# `of shape (batch_size, 2, num_channels, height, width)` in a message the forward raises
_DEMANDED = re.compile(r"of shape \(([^()]*)\)")
# `name (`torch.LongTensor` of shape `(batch_size, num_boxes, 4)`)`: the docstring's shape of an
# argument (quoted with backticks or single quotes, as Bros's docstring does)
_DOC_SHAPE = r"{name}\s*\([`']+([^`']*)[`']+ of shape [`']+\(([^)]*)\)[`']"


def forward_tree(model: nn.Module) -> ast.AST | None:
    """The syntax tree of the model class's own forward; None where its source is not at hand."""
    try:
        source = inspect.getsource(type(model).forward)
    except (OSError, TypeError):
        return None
    try:
        return ast.parse(textwrap.dedent(source))
    except SyntaxError:
        return None


def _raised_texts(tree: ast.AST) -> list[str]:
    """The string constants of every exception the forward raises itself."""
    texts = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) and node.exc is not None:
            texts += [c.value for c in ast.walk(node.exc) if isinstance(c, ast.Constant) and isinstance(c.value, str)]
    return texts


def image_as_read(model: nn.Module, configs: list[Any], made: InputShape) -> InputShape:
    """The usual image ``made``, resized for an image pyramid the config describes, then
    reshaped as the forward demands (both below); ``made`` itself where neither applies."""
    made = pyramid_image(configs, latent_grid_image(configs, made))
    return demanded_image(model, configs, made) or linear_patches(model, configs, made) or made


def linear_patches(model: nn.Module, configs: list[Any], made: InputShape) -> InputShape | None:
    """Patches already cut and flattened, where the forward passes the pixels straight to a
    linear layer of its own (``self.patch_embedding(pixel_values)``, Molmo2's vision tower):
    ``(batch, patches, channels x patch x patch)``, the image ``made`` cut into the config's
    ``patch_size``; None where the forward does not, or the layer's width is no such patch."""
    tree = forward_tree(model)
    patch = hf_inputs._first_int(configs, "patch_size")
    if tree is None or patch is None or len(made.shape) != 4 or made.name not in (None, "pixel_values"):
        return None
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not _calls_own_layer(node):
            continue
        assert isinstance(node.func, ast.Attribute)
        layer = getattr(model, node.func.attr, None)
        reads_pixels = any(isinstance(n, ast.Name) and n.id == "pixel_values" for a in node.args for n in ast.walk(a))
        if isinstance(layer, nn.Linear) and reads_pixels and layer.in_features == made.shape[1] * patch * patch:
            patches = (made.shape[2] // patch) * (made.shape[3] // patch)
            return InputShape(made.name, (1, patches, layer.in_features), made.dtype)
    return None


def latent_grid_image(configs: list[Any], made: InputShape) -> InputShape:
    """The image a VQ-GAN encoder turns into the latent grid its config names: ``num_patches``
    latents a side, the encoder halving the image at each of its ``channel_multiplier``
    levels but the last (Janus's VQ-VAE: 32 x 2**4 = 512 px, its quantizer checks the
    count); ``made`` as it is where no config names both."""
    for config in configs:
        levels, side = getattr(config, "channel_multiplier", None), getattr(config, "num_patches", None)
        if isinstance(levels, (list, tuple)) and levels and isinstance(side, int) and side > 0:
            pixels = side * 2 ** (len(levels) - 1)
            return InputShape(made.name, (*made.shape[:-2], pixels, pixels), made.dtype)
    return made


def pyramid_image(configs: list[Any], made: InputShape) -> InputShape:
    """An image big enough for every level of a pyramid the config describes: a model that
    scales the image by each of ``scaled_images_ratios`` and cuts patches of ``patch_size``
    from each level (DepthPro: 384 px patches from a quarter of the image) needs a side of
    ``patch_size / min(ratios)`` (1536 px) at least; ``made`` as it is where it is that big."""
    ratios = next((getattr(c, "scaled_images_ratios", None) for c in configs if getattr(c, "scaled_images_ratios", None)), None)
    patch = hf_inputs._first_int(configs, "patch_size")
    if not isinstance(ratios, (list, tuple)) or patch is None or len(made.shape) < 2:
        return made
    if not all(isinstance(r, (int, float)) and 0 < r <= 1 for r in ratios):
        return made
    side = math.ceil(patch / min(ratios))
    if min(made.shape[-2:]) >= side:
        return made
    return InputShape(made.name, (*made.shape[:-2], max(side, made.shape[-2]), max(side, made.shape[-1])), made.dtype)


def _calls_own_layer(call: ast.Call) -> bool:
    """A call ``self.name(...)``."""
    func = call.func
    return isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "self"


def demanded_image(model: nn.Module, configs: list[Any], made: InputShape) -> InputShape | None:
    """``made`` (an image, ``(batch, channels, height, width)``) reshaped as the forward's own
    code gives it, where that has more dimensions: the shape its error message demands
    (keypoint matchers, SuperGlue, LightGlue, EfficientLoFTR, take a pair of images,
    ``(batch_size, 2, num_channels, height, width)``), or the names it unpacks the input's
    shape into (InstructBLIP-Video: ``batch_size, frames, channel, height, width =
    pixel_values.shape``). Each dimension: the batch 1, a number as it is, frames as many as
    the config's ``num_frames`` (8 where it names none, as for any clip), channels as
    ``made`` has them, a name the config gives, height and width as ``made`` has them; None
    when the forward says no such shape or a dimension cannot be told."""
    tree = forward_tree(model)
    if tree is None or len(made.shape) != 4 or made.name not in (None, "pixel_values"):
        return None
    shapes = [[dim.strip() for dim in found.group(1).split(",")] for found in map(_DEMANDED.search, _raised_texts(tree)) if found]
    for dims in shapes + unpacked_shapes(tree, "pixel_values"):
        if len(dims) <= len(made.shape) or dims[-2:] != ["height", "width"]:
            continue
        shape = [_dimension(dim, configs, made) for dim in dims[:-2]]
        if all(size is not None for size in shape):
            return InputShape(made.name, (*(int(size) for size in shape if size), *made.shape[-2:]), made.dtype)
    return None


def unpacked_shapes(tree: ast.AST, name: str) -> list[list[str]]:
    """The names the forward unpacks ``name.shape`` into (``b, f, c, h, w = name.shape``)."""
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Tuple)):
            continue
        value = node.value
        if (
            isinstance(value, ast.Attribute)
            and value.attr == "shape"
            and isinstance(value.value, ast.Name)
            and value.value.id == name
        ):
            found.append([target.id if isinstance(target, ast.Name) else "?" for target in node.targets[0].elts])
    return found


def _dimension(dim: str, configs: list[Any], made: InputShape) -> int | None:
    """The size of a leading image dimension the forward names (see `demanded_image`)."""
    if dim in ("batch_size", "batch"):
        return 1
    if dim.isdigit():
        return int(dim)
    if dim in ("channel", "channels", "num_channels"):
        return hf_inputs._first_int(configs, "num_channels") or made.shape[1]
    if dim in ("frames", "num_frames"):
        return hf_inputs._first_int(configs, "num_frames") or 8  # a short clip where the config names no length
    return hf_inputs._first_int(configs, dim)


def refused_without(model: nn.Module) -> list[str]:
    """The forward's arguments it refuses to run without although their default is None: a
    check ``if name is None: raise ...`` in the forward itself (Bros's ``bbox``, LXMERT's
    ``visual_feats`` and ``visual_pos``)."""
    tree = forward_tree(model)
    if tree is None:
        return []
    try:
        parameters = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return []
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.If) and node.body and isinstance(node.body[0], ast.Raise)):
            continue
        test = node.test
        if (
            isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) and len(test.ops) == 1
            and isinstance(test.ops[0], ast.Is) and isinstance(test.comparators[0], ast.Constant)
            and test.comparators[0].value is None and test.left.id in parameters and test.left.id not in found
        ):  # fmt: skip
            found.append(test.left.id)
    return found


def needed(model: nn.Module, config: Any, tokens: int) -> list[str]:
    """Arguments that look optional but that the forward needs: those it refuses to run
    without (`refused_without`), a vision tower's patch grid (`grid_arguments`), and where
    the text of ``tokens`` has room for them, the slots of the image's features in it
    (`slot_masks`)."""
    found = refused_without(model)
    found += [name for name in grid_arguments(model) if name not in found]
    if image_slots(config, tokens) is not None:
        found += [name for name in slot_masks(model) if name not in found]
    return found


# the number of features an image becomes in the text, as configs name it
_IMAGE_FEATURES = ("latent_query_num", "num_query_tokens", "image_seq_length")


def image_slots(config: Any, tokens: int) -> int | None:
    """How many of the text's ``tokens`` the image's features take (Kosmos-2's
    ``latent_query_num``: 64), where the config names it and the text has room for them and
    a token before; else None."""
    count = next((found for key in _IMAGE_FEATURES if (found := hf_inputs._first_int([config], key)) is not None), None)
    return count if count is not None and count < tokens else None


def slot_masks(model: nn.Module) -> list[str]:
    """Arguments the docstring gives as the places in the text where the image's features
    go, ``(batch_size, sequence_length)`` (Kosmos-2's ``image_embeds_position_mask``: "Mask
    to indicate the location in a sequence to insert the image features"): the forward
    writes the features there and fails without them."""
    doc = inspect.getdoc(model.forward) or ""
    found = []
    for entry in re.finditer(r"\n\s*(\w+)\s*\(`[^`]*` of shape `\(batch_size, sequence_length\)`[^\n]*\n([^\n]*)", doc):
        if "insert the image features" in entry.group(2):
            found.append(entry.group(1))
    return found


def refused_input(model: nn.Module, configs: list[Any], name: str, tokens: int) -> InputShape | None:
    """An argument of `needed`: a patch grid by value, else as documented; None for any other
    (the main input and arguments without a default are left to the hint where the config
    does not tell them: their siblings, unnamed, would fail the forward)."""
    if name in grid_arguments(model):
        return patch_grid(configs, name)
    slots = image_slots(configs[0], tokens) if name in slot_masks(model) else None
    if slots is not None:  # the features right after the first token, the rest text
        return InputShape(name, (1, tokens), torch.long, values=((0, *(1,) * slots, *(0,) * (tokens - slots - 1)),))
    if _documents_ratios(model, name):
        return InputShape(name, (1,), torch.long, values=(hf_inputs._first_int(configs, "spatial_merge_size") or 1,))
    return documented_input(model, configs, name, tokens) if name in refused_without(model) else None


def _documents_ratios(model: nn.Module, name: str) -> bool:
    """Whether the docstring gives ``name`` one number per image, its spatial downsampling
    ratio (VideoLLaMA3's ``merge_sizes``, `(num_images_or_videos,)`): the config's
    ``spatial_merge_size`` for the one image made (packed with a grid of as many merged
    patches), else 1, no merging, which any grid allows."""
    doc = inspect.getdoc(model.forward) or ""
    entry = re.search(rf"\n\s*{re.escape(name)}\s*\(`[^`]*` of shape `\(num_\w+,\)`[^\n]*\n([^\n]*)", doc)
    return entry is not None and "downsampling ratio" in entry.group(1).lower()


def grid_arguments(model: nn.Module) -> list[str]:
    """A vision tower's arguments documented as its image's patch grid, ``(batch_size, 2)``
    (MiniCPM-V's ``target_sizes``: "Patch grid sizes `(h, w)` for computing position
    embeddings"): the position embeddings are looked up from them, None fails. Only where
    the forward takes pixels and no text (a full model's grid goes with its text)."""
    try:
        parameters = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return []
    if "pixel_values" not in parameters or "input_ids" in parameters:
        return []
    doc = inspect.getdoc(model.forward) or ""
    found = []
    for name in parameters:
        entry = re.search(rf"\n\s*{re.escape(name)}\s*\(`[^`]*` of shape `\(batch_size, 2\)`[^\n]*\n([^\n]*)", doc)
        if entry is not None and "patch grid" in entry.group(1).lower():
            found.append(name)
    return found


def patch_grid(configs: list[Any], name: str) -> InputShape | None:
    """The grid ``[[rows, columns]]`` of the config's image (``image_size``) in its
    ``patch_size`` patches, by value (the forward reads it); None where the config names
    neither."""
    size, patch = hf_inputs._first_int(configs, "image_size"), hf_inputs._first_int(configs, "patch_size")
    if size is None or patch is None or size < patch:
        return None
    return InputShape(name, (1, 2), torch.long, values=((size // patch, size // patch),))


def documented_input(model: nn.Module, configs: list[Any], name: str, tokens: int) -> InputShape | None:
    """The argument ``name`` as the forward's docstring documents it (`bbox (`torch.Tensor` of
    shape `(batch_size, num_boxes, 4)`)`): the batch 1, a number as it is, a dimension the
    config names (``visual_feat_dim``) from it, any other count (boxes, visual features, the
    sequence) as many as the text's ``tokens``; floats. None for ids (``LongTensor``): the
    range of their values no doc gives."""
    found = re.search(_DOC_SHAPE.format(name=re.escape(name)), inspect.getdoc(model.forward) or "")
    if found is None:
        return None
    kind, dims = found.group(1), [dim.strip() for dim in found.group(2).split(",")]
    if "Long" in kind or not dims or not all(re.fullmatch(r"\w+", dim) for dim in dims):
        return None  # ids whose range no doc gives are left to the hint
    shape = []
    for position, dim in enumerate(dims):
        if dim == "batch_size" and position == 0:
            shape.append(1)
        elif dim.isdigit():
            shape.append(int(dim))
        else:
            shape.append(hf_inputs._first_int(configs, dim) or tokens)
    return InputShape(name, tuple(shape))
