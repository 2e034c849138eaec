"""The errors torchtally raises: each says what was wrong and where."""

from __future__ import annotations

from collections.abc import Sequence


def describe_module(path: str, type_name: str) -> str:
    """How messages name a module: ``module 'layer1.0' (BasicBlock)`` or ``the root module (ResNet)``."""
    return f"module '{path}' ({type_name})" if path else f"the root module ({type_name})"


class TorchtallyError(Exception):
    """Base class of every error raised by torchtally."""


class InputError(TorchtallyError, ValueError):
    """The arguments given to `analyze`/`summary` do not describe a valid run."""


class ForwardError(TorchtallyError, RuntimeError):
    """The model's forward pass failed; names the module where it failed and its inputs.

    The original exception is chained as ``__cause__``.
    """

    def __init__(self, module_path: str, module_type: str, input_shapes: Sequence[str], reason: str):
        self.module_path = module_path
        self.module_type = module_type
        self.input_shapes = tuple(input_shapes)
        self.reason = reason
        where = describe_module(module_path, module_type)
        shapes = ", ".join(self.input_shapes) if self.input_shapes else "no tensors"
        super().__init__(f"forward pass failed in {where}, called with inputs {shapes}: {reason}")


class NeedsRealValues(TorchtallyError):
    """The forward reads values its own layers compute (expert routing, predicted durations,
    keypoints), which fake tensors do not have, and no real run was possible or allowed:
    the model is on the meta device (or made of fake tensors), or ``run="fake"`` was asked."""


class FormulaError(TorchtallyError):
    """A cost formula raised while counting an operator."""
