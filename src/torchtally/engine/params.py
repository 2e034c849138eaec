"""Parameter and buffer accounting by tensor identity.

A tensor reachable from several modules (tied embeddings, a module registered twice) is
owned by the first module that holds it in ``named_modules()`` order; later holders say
they share it. Quantized modules keep their weights packed in a TorchScript object rather
than in ``nn.Parameter`` s; those are unpacked once and counted as (non-trainable)
parameters of the module that holds them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from collections.abc import Callable
from typing import Any

import torch
from torch.nn.parameter import UninitializedBuffer, UninitializedParameter

from .tree import ModuleNode, model_tensors


def local_elements(tensor: torch.Tensor) -> int:
    """Elements this rank holds of a parameter: a DTensor's shard (each sharded dimension
    rounded up, as ``torch.chunk`` gives rank 0 and FSDP2 pads every rank), else all of it."""
    spec = getattr(tensor, "_spec", None)
    if spec is None:
        return tensor.numel()
    shape = list(tensor.shape)
    for mesh_dim, placement in enumerate(spec.placements):
        dim = getattr(placement, "dim", None)  # Shard and FSDP x TP's _StridedShard; Replicate and Partial have none
        if isinstance(dim, int):
            shape[dim] = -(-shape[dim] // spec.mesh.size(mesh_dim))
    return math.prod(shape)


@dataclass
class HeldTensors:
    """What one module holds directly."""

    params: list[tuple[str, torch.Tensor]] = field(default_factory=list)  # owned here (first holder)
    shared: list[tuple[str, int]] = field(default_factory=list)  # (name, index of the owning row)
    buffers: list[tuple[str, torch.Tensor]] = field(default_factory=list)  # owned here
    packed: list[tuple[object, list[torch.Tensor]]] = field(default_factory=list)  # (packed object, weights)
    lazy: bool = False


@dataclass(frozen=True)
class ParamCounts:
    """Counts of one row's own parameters, taken after the run (lazy ones are materialised)."""

    params: int
    trainable: int
    used: int
    param_bytes: int
    buffers: int
    buffer_bytes: int


def _packed_weights(module: torch.nn.Module) -> tuple[object, list[torch.Tensor]] | None:
    """The packed weights of a ``torch.ao`` quantized module, if it holds them directly."""
    packed = module.__dict__.get("_packed_params")
    if not isinstance(packed, torch.ScriptObject):
        return None
    unpack: Callable[[], Any] | None = getattr(module, "_weight_bias", None) or getattr(module, "_weight", None)
    if not callable(unpack):
        return None
    weights = unpack()
    if isinstance(weights, torch.Tensor):
        weights = (weights,)
    return packed, [w for w in weights if isinstance(w, torch.Tensor)]


class ParameterIndex:
    """Who holds which parameter, buffer and packed weight; and which of them were read."""

    def __init__(self, nodes: list[ModuleNode]):
        self.held: list[HeldTensors] = []
        self.owner: dict[int, int] = {}  # id(param or packed object) -> owning row
        self._tensors_by_id: dict[int, Any] = {}  # keeps identities stable for the run
        self.read: set[int] = set()
        # Packed weights reach operators as a fresh wrapper object each time, so they are
        # marked read by module instead: row -> ids of the packed objects it or a child holds.
        self._packed_near: dict[int, list[int]] = {}
        buffer_owner: dict[int, int] = {}
        for node in nodes:
            held = HeldTensors()
            for name, param in node.module._parameters.items():
                if param is None:
                    continue
                held.lazy |= isinstance(param, UninitializedParameter)
                if id(param) in self.owner:
                    held.shared.append((name, self.owner[id(param)]))
                else:
                    self.owner[id(param)] = node.index
                    self._tensors_by_id[id(param)] = param
                    held.params.append((name, param))
            for name, buffer in node.module._buffers.items():
                if buffer is None or id(buffer) in buffer_owner:
                    continue
                held.lazy |= isinstance(buffer, UninitializedBuffer)
                buffer_owner[id(buffer)] = node.index
                held.buffers.append((name, buffer))
            packed = _packed_weights(node.module)
            if packed is not None and id(packed[0]) not in self.owner:
                self.owner[id(packed[0])] = node.index
                self._tensors_by_id[id(packed[0])] = packed[0]
                held.packed.append(packed)
                for row in (node.index, node.parent):
                    if row is not None:
                        self._packed_near.setdefault(row, []).append(id(packed[0]))
            self.held.append(held)

        # The ids the run watches: an operator argument with one of them reads the weight
        # whose id it maps to (itself, or the parameter a training run stands it in for).
        self.tracked_ids: dict[int, int] = {key: key for key in self.owner}

    def local_params(self) -> int:
        """Elements of this rank's parameters (their shards under a parallel layout)."""
        return sum(local_elements(param) for param in self.parameters())

    def parameters(self) -> list[torch.Tensor]:
        """Every parameter, once (packed weights excluded)."""
        return [param for held in self.held for _, param in held.params]

    def add_stand_in(self, param: torch.Tensor, stand_in: torch.Tensor) -> None:
        """``stand_in`` takes ``param``'s place in the run: reading it reads ``param``."""
        self._tensors_by_id[id(stand_in)] = stand_in
        self.tracked_ids[id(stand_in)] = id(param)

    def note_packed_read(self, row: int) -> None:
        """An operator running in module ``row`` received packed weights: those it (or a child) holds."""
        self.read.update(self._packed_near.get(row, ()))

    def counts(self, index: int) -> ParamCounts:
        held = self.held[index]
        params = trainable = used = param_bytes = 0
        for _, param in held.params:
            n = param.numel()
            params += n
            trainable += n if param.requires_grad else 0
            used += n if id(param) in self.read else 0
            param_bytes += local_elements(param) * param.element_size()  # this rank's shard under a layout
        for packed, weights in held.packed:  # packed weights cannot be trained
            n = sum(w.numel() for w in weights)
            params += n
            used += n if id(packed) in self.read else 0
            param_bytes += sum(w.numel() * w.element_size() for w in weights)
        buffers = sum(b.numel() for _, b in held.buffers)
        buffer_bytes = sum(b.numel() * b.element_size() for _, b in held.buffers)
        return ParamCounts(params, trainable, used, param_bytes, buffers, buffer_bytes)


def has_lazy_tensors(model: torch.nn.Module) -> bool:
    params, buffers = model_tensors(model)
    return any(isinstance(p, UninitializedParameter) for p in params) or any(
        isinstance(b, UninitializedBuffer) for b in buffers
    )
