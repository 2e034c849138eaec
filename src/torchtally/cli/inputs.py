"""The inputs of the run: the model's usual ones (from where it was found) unless
``--input-size`` gives others, with ``--dtype`` and ``--batch-size`` applied, turned into
`tt.analyze`'s ``input_size`` and ``dtypes``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

from ..engine.inputs import model_device, model_float_dtype
from .errors import CLIError
from .values import parse_dtype, parse_shape, parse_values


@dataclass(frozen=True)
class InputShape:
    """One input of the forward call: positional (name None) or the keyword ``name``."""

    name: str | None
    shape: tuple[int, ...]
    dtype: torch.dtype | None = None  # None: the model's own floating dtype
    # An input given by value, as a real tensor whose values the run follows (a forward may
    # read them): ``values``, nested like the shape (a vision tower's ``grid_thw``), or token
    # ids below ``vocab`` made for the shape (see token_ids).
    values: tuple[Any, ...] | None = None
    vocab: int | None = None

    @property
    def valued(self) -> bool:
        return self.values is not None or self.vocab is not None

    def text(self) -> str:
        count = 1
        for size in self.shape:
            count *= size
        if self.values is not None and count <= 8:  # a grid by its values; a mask by its shape
            return f"{self.name}={_nested(self.values)}"
        shape = "x".join(str(d) for d in self.shape)
        return f"{self.name}={shape}" if self.name else shape

    def tensor(self, device: torch.device | None = None) -> torch.Tensor:
        """The input with its values (only for one that has them)."""
        if self.values is not None:
            return torch.tensor(self.values, dtype=self.dtype, device=device)
        assert self.vocab is not None
        return token_ids(self.shape, self.vocab).to(device=device, dtype=self.dtype or torch.long)


def token_ids(shape: tuple[int, ...], vocab: int) -> torch.Tensor:
    """Token ids of this shape spread over the second quarter of the vocabulary, away from the
    special tokens most vocabularies keep at either end (padding, image placeholders); the
    same every time."""
    count = 1
    for size in shape:
        count *= size
    steps = torch.arange(count, dtype=torch.long)
    if vocab < 8:
        return (steps % max(vocab, 1)).reshape(shape)
    span = vocab // 4
    return (vocab // 4 + steps * 7919 % span).reshape(shape)


def _nested(values: Any) -> str:
    if isinstance(values, (list, tuple)):
        return "[" + ",".join(_nested(v) for v in values) + "]"
    return str(values)


def from_options(sizes: Sequence[Sequence[str]] | None) -> list[InputShape] | None:
    """``--input-size`` as given (None when it was not)."""
    if not sizes:
        return None
    shapes = [_given(tokens) for tokens in sizes]
    named = [s.name for s in shapes if s.name is not None]
    if named and len(named) != len(shapes):
        raise CLIError("--input-size: name every input (input_ids=1 128) or none of them, not some")
    if len(set(named)) != len(named):
        raise CLIError(f"--input-size: the input {sorted(n for n in named if named.count(n) > 1)[0]!r} is given twice")
    return shapes


def _given(tokens: Sequence[str]) -> InputShape:
    """One ``--input-size``: a shape, or ``NAME=[[1,32,32]]``, an int64 input given by its
    values (as the hints for a grid the forward reads write it)."""
    name, sep, rest = tokens[0].partition("=") if tokens else ("", "", "")
    if sep and rest.lstrip().startswith("["):
        if not name.isidentifier():
            raise CLIError(f"--input-size: {name!r} is not an argument name (NAME=[[1,32,32]] gives a forward argument's values)")
        shape, values = parse_values(" ".join([rest, *tokens[1:]]))
        return InputShape(name, shape, torch.int64, values=values)
    return InputShape(*parse_shape(tokens))


def resolve(
    given: list[InputShape] | None,
    defaults: list[InputShape] | None,
    dtypes: Sequence[str] | None,
    batch_size: int | None,
    model_label: str,
    hint: str | None = None,
) -> list[InputShape]:
    """The inputs to run with: ``given`` (else ``defaults``), then ``--dtype``, then ``--batch-size``.
    ``hint`` says what to give when neither is known (the model's main input, by name)."""
    shapes = given if given is not None else defaults
    if given is not None and defaults and not dtypes:
        shapes = _usual_dtypes(given, defaults)
    if shapes is None:
        example = hint or "--input-size 1 3 224 224"
        raise CLIError(f"no usual input size is known for {model_label}: give one, e.g. {example}")
    if dtypes:
        parsed = [parse_dtype(text, "--dtype") for text in dtypes]
        if len(parsed) not in (1, len(shapes)):
            raise CLIError(f"--dtype is given {len(parsed)} times for {len(shapes)} inputs: give one for all or one per input")
        shapes = [
            s if s.values is not None else replace(s, dtype=parsed[0] if len(parsed) == 1 else parsed[i], vocab=None)
            for i, s in enumerate(shapes)
        ]  # fmt: skip
    if batch_size is not None:
        if batch_size < 1:
            raise CLIError(f"--batch-size must be at least 1, got {batch_size}")
        scalar = next((s for s in shapes if not s.shape), None)
        if scalar is not None:
            raise CLIError(f"--batch-size: the input {scalar.text() or '()'} has no batch dimension to replace")
        # An input given by its values (a grid) describes the others: it keeps them.
        shapes = [s if s.values is not None else replace(s, shape=(batch_size, *s.shape[1:])) for s in shapes]
    return shapes


# Keyword inputs that hold integer ids in every Hugging Face model.
_TOKEN_DTYPES = {
    name: torch.long
    for name in ("input_ids", "decoder_input_ids", "token_type_ids", "position_ids", "attention_mask", "labels")
}


def _usual_dtypes(given: list[InputShape], defaults: list[InputShape]) -> list[InputShape]:
    """New sizes for the usual inputs keep their dtypes (a token model's ids stay int64): by
    name, else by position when there are as many."""
    by_name: dict[str | None, InputShape] = {s.name: s for s in defaults if s.name is not None}
    if given[0].name is not None:
        # A token model's usual input has no name; its ids keep their dtype by their usual names.
        return [_like(s, by_name.get(s.name), _TOKEN_DTYPES.get(str(s.name))) for s in given]
    if len(given) == len(defaults):
        return [_like(s, d, None) for s, d in zip(given, defaults)]
    return given


def _like(given: InputShape, usual: InputShape | None, dtype: torch.dtype | None) -> InputShape:
    """A new size for a usual input: its dtype, and token ids stay token ids of the vocabulary."""
    if usual is None:
        return replace(given, dtype=given.dtype or dtype)
    same_ids = usual.vocab is not None and len(given.shape) == len(usual.shape)
    return replace(given, dtype=given.dtype or usual.dtype, vocab=usual.vocab if same_ids else None)


def analyze_arguments(shapes: list[InputShape], model: nn.Module) -> dict[str, Any]:
    """``input_size`` and ``dtypes`` for `tt.analyze` (keyword inputs as dicts); inputs given
    by value as real tensors (on the CPU for a meta-device model): ``input_data`` when every
    input is, else keyword inputs in ``forward_kwargs``."""
    float_dtype = model_float_dtype(model)
    device = model_device(model)
    device = torch.device("cpu") if device.type == "meta" else device
    if shapes and all(s.valued for s in shapes):
        positional = tuple(s.tensor(device) for s in shapes if s.name is None)
        named = {s.name: s.tensor(device) for s in shapes if s.name is not None}
        if not positional:
            return {"input_data": named}
        return {"input_data": positional, "forward_kwargs": named} if named else {"input_data": positional}
    valued = {s.name: s.tensor(device) for s in shapes if s.valued and s.name is not None}
    shapes = [s for s in shapes if s.name not in valued]
    arguments: dict[str, Any]
    if shapes and shapes[0].name is not None:
        named_sizes = {s.name: s.shape for s in shapes if s.name is not None}
        dtypes = {s.name: s.dtype or float_dtype for s in shapes if s.name is not None}
        arguments = {"input_size": named_sizes, "dtypes": dtypes}
    else:
        arguments = {"input_size": [s.shape for s in shapes], "dtypes": [s.dtype or float_dtype for s in shapes]}
    if valued:
        arguments["forward_kwargs"] = valued
    return arguments
