"""Text from the command line turned into Python values: ``key=value`` pairs, dtypes and
shapes. Every failure is a one-line `CLIError` naming the option it came from."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Sequence
from typing import Any

import torch

from .errors import CLIError

# The spellings people use beside torch's own attribute names (torch.float16, torch.long, ...).
DTYPE_ALIASES = {
    "fp16": torch.float16, "half": torch.float16, "bf16": torch.bfloat16,
    "fp32": torch.float32, "float": torch.float32, "fp64": torch.float64, "double": torch.float64,
    "long": torch.int64, "int": torch.int32, "short": torch.int16, "bool": torch.bool,
}
COMMON_DTYPES = "float32, float16 (fp16), bfloat16 (bf16), float64, int64 (long), int32, int8, uint8, bool"


def parse_dtype(text: str, option: str) -> torch.dtype:
    name = text.strip().lower().removeprefix("torch.")
    found = DTYPE_ALIASES.get(name, getattr(torch, name, None) if name.isidentifier() else None)
    if not isinstance(found, torch.dtype):
        raise CLIError(f"{option}: {text!r} is not a dtype; use one of {COMMON_DTYPES}")
    return found


def parse_literal(text: str) -> Any:
    """``10`` -> 10, ``0.5`` -> 0.5, ``true``/``True`` -> True, ``none`` -> None, ``[1, 2]`` ->
    a list; anything else stays the string it is (so ``--arg act=gelu`` needs no quotes)."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


def parse_pairs(items: Iterable[str] | None, option: str) -> dict[str, Any]:
    """``["num_classes=10", "act=gelu"]`` -> ``{"num_classes": 10, "act": "gelu"}``."""
    pairs: dict[str, Any] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise CLIError(f"{option}: expected KEY=VALUE with KEY a Python name, got {item!r}")
        pairs[key] = parse_literal(value)
    return pairs


_SEPARATORS = re.compile(r"[,\s]+")
_TIMES = re.compile(r"\d+(?:[x×]\d+)+")  # 1x3x224x224


def parse_shape(tokens: Sequence[str], option: str = "--input-size") -> tuple[str | None, tuple[int, ...]]:
    """One ``--input-size``: ``1 3 224 224``, ``1x3x224x224`` or ``1,3,224,224``, optionally
    prefixed by the forward argument's name (``input_ids=1 128``). Returns (name, shape)."""
    words = list(tokens)
    name = None
    if words and "=" in words[0]:
        name, _, first = words[0].partition("=")
        if not name.isidentifier():
            raise CLIError(f"{option}: {name!r} is not an argument name (NAME=1 128 names a forward argument)")
        words[0] = first
    dims: list[int] = []
    for word in words:
        parts = [p for p in _SEPARATORS.split(word.strip()) if p]
        for part in [d for p in parts for d in (re.split("[x×]", p) if _TIMES.fullmatch(p) else [p])]:
            try:
                dim = int(part)
            except ValueError:
                hint = " (put MODEL before the options)" if part.isidentifier() else ""
                raise CLIError(f"{option}: {part!r} is not a whole number{hint}") from None
            if dim < 0:
                raise CLIError(f"{option}: dimensions must be >= 0, got {dim}")
            dims.append(dim)
    if not dims:
        raise CLIError(f"{option}: give the dimensions, e.g. {option} 1 3 224 224")
    return name, tuple(dims)


def parse_values(text: str, option: str = "--input-size") -> tuple[tuple[int, ...], Any]:
    """``[[1,32,32]]`` (an input given by its values: a grid the forward reads) -> its shape
    and the nested values; whole numbers in a rectangular nest only."""
    try:
        values = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        raise CLIError(f"{option}: {text!r} is not a list of whole numbers, e.g. [[1,32,32]]") from None

    def shape_of(value: Any) -> tuple[int, ...]:
        if isinstance(value, bool) or not isinstance(value, (int, list, tuple)):
            raise CLIError(f"{option}: {text!r} holds {value!r}, not a whole number")
        if isinstance(value, int):
            return ()
        inner = {shape_of(item) for item in value}
        if len(inner) > 1:
            raise CLIError(f"{option}: {text!r} is ragged: every row needs as many numbers")
        return (len(value), *(inner.pop() if inner else ()))

    def frozen(value: Any) -> Any:
        return tuple(frozen(item) for item in value) if isinstance(value, (list, tuple)) else value

    return shape_of(values), frozen(values)


def split_names(values: Iterable[str] | None) -> list[str] | None:
    """``--columns a,b --columns c`` -> ``["a", "b", "c"]``; None when the option was not given."""
    if values is None:
        return None
    return [name.strip() for value in values for name in value.split(",") if name.strip()]
