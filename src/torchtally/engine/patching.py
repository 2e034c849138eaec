"""Wrapping every module's ``forward`` for the length of a run, and unwrapping it after.

The wrapper is an instance attribute over the class's method: a module with forward hooks
takes PyTorch's slow call path, a wrapper does not. ``detach`` puts back exactly what was
there (a module's own instance ``forward``, if it had one).

Only the thread that attached the wrappers goes through them: another thread calling the
model meanwhile runs its plain forward, so an analysis records only its own calls."""

from __future__ import annotations

import contextlib
import functools
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

from .tree import ModuleNode

_MISSING = object()
Wrap = Callable[[int, Callable[..., Any]], Callable[..., Any]]  # (module's row, its forward) -> wrapper


class ForwardPatches:
    def __init__(self) -> None:
        self._patched: list[tuple[Any, object]] = []  # (module, its own instance `forward` or _MISSING)

    def attach(self, nodes: list[ModuleNode], wrap: Wrap) -> None:
        owner = threading.get_ident()
        for node in nodes:
            module = node.module
            own = module.__dict__.get("forward", _MISSING)
            module.__dict__["forward"] = _for_thread(owner, module.forward, wrap(node.index, module.forward))
            self._patched.append((module, own))

    def detach(self) -> None:
        for module, own in reversed(self._patched):
            if own is _MISSING:
                module.__dict__.pop("forward", None)
            else:
                module.__dict__["forward"] = own
        self._patched.clear()


def _for_thread(owner: int, forward: Callable[..., Any], wrapped: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(forward)
    def forward_of_this_thread(*args: Any, **kwargs: Any) -> Any:
        if threading.get_ident() == owner:
            return wrapped(*args, **kwargs)
        return forward(*args, **kwargs)

    return forward_of_this_thread


# Python frames each nested module call adds under analysis: the thread check and the wrapper.
FRAMES_PER_MODULE = 2


@contextlib.contextmanager
def room_for_wrappers(nodes: list[ModuleNode]) -> Iterator[None]:
    """Raise Python's recursion limit by the frames the wrappers add (one per nested module,
    and a few for the dispatch mode), so a model as deep as plain PyTorch can run still runs
    under analysis. The limit is put back afterwards."""
    before = sys.getrecursionlimit()
    depth = max((node.depth for node in nodes), default=0)
    sys.setrecursionlimit(before + (FRAMES_PER_MODULE + 1) * depth + 100)
    try:
        yield
    finally:
        sys.setrecursionlimit(before)
