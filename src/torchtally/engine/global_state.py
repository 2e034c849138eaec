"""The process-wide state a model's forward can change, captured before a run and put back
after it: the random number generators (torch's CPU and CUDA ones, Python's `random`,
numpy's global one), the default dtype and device, grad mode, autocast, the recursion
limit, the global module hooks of ``torch.nn.modules.module``, torch's backend flags
(cuDNN, oneDNN, TF32, matmul precision, deterministic algorithms, anomaly detection), the
number of threads, Python's warning filters, and the dispatch- and function-mode stacks (a
mode the forward entered and never left is popped)."""

from __future__ import annotations

import contextlib
import random
import sys
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.modules.module as module_globals
from torch.utils._python_dispatch import _pop_mode

from .containers import restore_container

# Device types whose autocast state torch keeps per process (others raise on query).
_AUTOCAST_DEVICES = ("cpu", "cuda")


def _global_hook_dicts() -> list[dict[Any, Any]]:
    """torch's process-wide hook registries (``register_module_forward_hook`` and friends)."""
    return [value for name, value in vars(module_globals).items() if name.startswith("_global_") and isinstance(value, dict)]


def _set_deterministic(state: tuple[bool, bool]) -> None:
    torch.use_deterministic_algorithms(state[0], warn_only=state[1])


# (read, write) of each process-wide torch setting a forward may flip.
_SETTINGS: list[tuple[Callable[[], Any], Callable[[Any], None]]] = [
    (lambda: torch.backends.cudnn.benchmark, lambda v: setattr(torch.backends.cudnn, "benchmark", v)),
    (lambda: torch.backends.cudnn.deterministic, lambda v: setattr(torch.backends.cudnn, "deterministic", v)),
    (lambda: torch.backends.cudnn.enabled, lambda v: setattr(torch.backends.cudnn, "enabled", v)),
    (lambda: torch.backends.cudnn.allow_tf32, lambda v: setattr(torch.backends.cudnn, "allow_tf32", v)),
    (lambda: torch.backends.mkldnn.enabled, lambda v: setattr(torch.backends.mkldnn, "enabled", v)),
    (lambda: torch.backends.cuda.matmul.allow_tf32, lambda v: setattr(torch.backends.cuda.matmul, "allow_tf32", v)),
    (torch.get_float32_matmul_precision, torch.set_float32_matmul_precision),
    (torch.get_num_threads, torch.set_num_threads),
    (torch.is_anomaly_enabled, torch.set_anomaly_enabled),
    (lambda: (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()), _set_deterministic),
]


_UNREADABLE = object()


def _read(read: Callable[[], Any]) -> Any:
    try:
        return read()
    except RuntimeError:  # e.g. the matmul precision when the legacy and the new flags disagree
        return _UNREADABLE


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
        self._settings = [(read, write, value) for read, write in _SETTINGS if (value := _read(read)) is not _UNREADABLE]
        self._warning_filters = list(warnings.filters)
        self._dispatch_modes = torch._C._len_torch_dispatch_stack()
        self._function_modes = torch._C._len_torch_function_stack()

    def drop_stray_modes(self) -> None:
        """Pop the dispatch and function modes a forward entered and never left (first of all:
        while one is active, every torch call of the restore would go through it). When a
        forward leaves its own mode on the stack, the run's mode is popped in its place on the
        way out; either way, the stack returns to its length before the run."""
        while torch._C._len_torch_function_stack() > self._function_modes:
            torch._C._pop_torch_function_stack()
        while torch._C._len_torch_dispatch_stack() > self._dispatch_modes:
            _pop_mode()

    def restore(self) -> None:
        self.drop_stray_modes()
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
        for read, write, value in self._settings:
            if _read(read) != value:
                write(value)
        if warnings.filters != self._warning_filters:
            warnings.filters[:] = self._warning_filters  # type: ignore[index]
            warnings._filters_mutated()  # type: ignore[attr-defined]


@contextlib.contextmanager
def process_state_kept() -> Iterator[None]:
    """The process state as it was before the block, also after it: around work of ours
    outside a run (PyTorch's fake collectives draw from Python's `random` when a simulated
    cluster is set up)."""
    state = GlobalState()
    try:
        yield
    finally:
        state.restore()
