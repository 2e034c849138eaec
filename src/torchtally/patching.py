"""Wrapping every module's ``forward`` for the length of a run, and unwrapping it after.

The wrapper is an instance attribute over the class's method: a module with forward hooks
takes PyTorch's slow call path, a wrapper does not. ``detach`` puts back exactly what was
there (a module's own instance ``forward``, if it had one)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .tree import ModuleNode

_MISSING = object()
Wrap = Callable[[int, Callable[..., Any]], Callable[..., Any]]  # (module's row, its forward) -> wrapper


class ForwardPatches:
    def __init__(self) -> None:
        self._patched: list[tuple[Any, object]] = []  # (module, its own instance `forward` or _MISSING)

    def attach(self, nodes: list[ModuleNode], wrap: Wrap) -> None:
        for node in nodes:
            module = node.module
            own = module.__dict__.get("forward", _MISSING)
            module.__dict__["forward"] = wrap(node.index, module.forward)
            self._patched.append((module, own))

    def detach(self) -> None:
        for module, own in reversed(self._patched):
            if own is _MISSING:
                module.__dict__.pop("forward", None)
            else:
                module.__dict__["forward"] = own
        self._patched.clear()
