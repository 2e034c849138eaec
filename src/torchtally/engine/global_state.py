"""The process-wide state a model's forward can change, captured before a run and put back
after it: the random number generators (torch's CPU and CUDA ones, Python's `random`,
numpy's global one), the default dtype and device, grad mode, autocast, the recursion
limit, and the global module hooks of ``torch.nn.modules.module``."""

from __future__ import annotations

import random
import sys
from typing import Any

import torch
import torch.nn.modules.module as module_globals

from .containers import restore_container

# Device types whose autocast state torch keeps per process (others raise on query).
_AUTOCAST_DEVICES = ("cpu", "cuda")


def _global_hook_dicts() -> list[dict[Any, Any]]:
    """torch's process-wide hook registries (``register_module_forward_hook`` and friends)."""
    return [value for name, value in vars(module_globals).items() if name.startswith("_global_") and isinstance(value, dict)]


def _autocast_state(device_type: str) -> tuple[bool, torch.dtype] | None:
    try:
        return torch.is_autocast_enabled(device_type), torch.get_autocast_dtype(device_type)
    except RuntimeError:  # a device type this build has no autocast for
        return None


class GlobalState:
    def __init__(self) -> None:
        self._cpu_rng = torch.random.get_rng_state()
        self._cuda_ready = bool(torch.cuda.is_initialized())  # type: ignore[no-untyped-call]
        self._cuda_rng = torch.cuda.get_rng_state_all() if self._cuda_ready else None
        self._python_rng = random.getstate()
        numpy = sys.modules.get("numpy")
        self._numpy_rng = numpy.random.get_state() if numpy is not None else None
        self._default_dtype = torch.get_default_dtype()
        self._default_device = torch.get_default_device()
        self._grad_enabled = torch.is_grad_enabled()
        self._autocast = {device: _autocast_state(device) for device in _AUTOCAST_DEVICES}
        self._autocast_cache = torch.is_autocast_cache_enabled()
        self._recursion_limit = sys.getrecursionlimit()
        self._hooks = [(hooks, list(hooks.items())) for hooks in _global_hook_dicts()]
        # Set by register_module_full_backward_hook beside its dict (None, True or False).
        self._full_backward = getattr(module_globals, "_global_is_full_backward_hook", None)

    def restore(self) -> None:
        torch.random.set_rng_state(self._cpu_rng)
        if self._cuda_rng is not None:
            torch.cuda.set_rng_state_all(self._cuda_rng)
        elif torch.cuda.is_initialized():  # type: ignore[no-untyped-call]
            # The run initialised CUDA: its generators start from their seeds, as they would
            # have when the user's own code first touched CUDA.
            for generator in torch.cuda.default_generators:
                generator.manual_seed(generator.initial_seed())
        random.setstate(self._python_rng)
        numpy = sys.modules.get("numpy")
        if self._numpy_rng is not None and numpy is not None:
            numpy.random.set_state(self._numpy_rng)
        if torch.get_default_dtype() != self._default_dtype:
            torch.set_default_dtype(self._default_dtype)
        if torch.get_default_device() != self._default_device:
            torch.set_default_device(self._default_device)
        torch.set_grad_enabled(self._grad_enabled)
        for device, state in self._autocast.items():
            if state is not None and _autocast_state(device) != state:
                torch.set_autocast_enabled(device, state[0])
                torch.set_autocast_dtype(device, state[1])
        torch.set_autocast_cache_enabled(self._autocast_cache)
        sys.setrecursionlimit(self._recursion_limit)
        for hooks, before in self._hooks:
            restore_container(hooks, before)
        if hasattr(module_globals, "_global_is_full_backward_hook"):
            module_globals._global_is_full_backward_hook = self._full_backward
