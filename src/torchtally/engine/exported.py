"""Programs made by ``torch.export``.

An ``ExportedProgram`` is analysed as the module it makes (``program.module()``, a new one
each time: the program itself is never touched), with the example inputs it was exported
with when the caller gives none. That module's mode was fixed when it was traced (its
``train()`` and ``eval()`` raise), so a run never switches it and the report says so: mode
``"fixed"``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import fx, nn
from torch.export import ExportedProgram

from ..errors import InputError

FIXED = "fixed"


def as_module(
    model: Any, input_size: Any, input_data: Any, forward_kwargs: Mapping[str, Any] | None, kwargs: Mapping[str, Any]
) -> tuple[Any, Any, Mapping[str, Any] | None]:
    """``(model, input_data, forward_kwargs)``, with an ExportedProgram replaced by its module
    and, when no inputs were given at all, its example inputs."""
    if not isinstance(model, ExportedProgram):
        return model, input_data, forward_kwargs
    try:
        module = model.module()
    except Exception as exc:  # noqa: BLE001 - whatever unlifting the program raises, said in one line
        raise InputError(f"the exported program cannot make its module (program.module()): {type(exc).__name__}: {exc}") from exc
    if input_size is None and input_data is None and not forward_kwargs and not kwargs:
        args, example_kwargs = model.example_inputs or ((), {})
        if not args and not example_kwargs:
            raise InputError("the exported program holds no example inputs: give input_size= or input_data=")
        input_data = tuple(args) if args or not example_kwargs else dict(example_kwargs)
        if args and example_kwargs:
            forward_kwargs = dict(example_kwargs)
    return module, input_data, forward_kwargs


def _mode_fixed(module: nn.Module) -> bool:
    """torch.export's module: a GraphModule whose own ``train`` (an instance attribute) raises."""
    return isinstance(module, fx.GraphModule) and "train" in vars(module)


def mode_is_fixed(model: nn.Module) -> bool:
    """Whether ``model`` holds a module whose training flag cannot be switched."""
    return any(_mode_fixed(module) for module in model.modules())


def fixed_mode(mode: str | None) -> str:
    """The mode of a run of a model whose mode is fixed; asking for another is an error."""
    if mode not in (None, "same", FIXED):
        raise InputError(
            f"mode={mode!r}: this model is (or holds) a module made by torch.export, whose mode was fixed when "
            "it was exported (its train() and eval() raise); leave mode unset, or export it in the mode you want"
        )
    return FIXED
