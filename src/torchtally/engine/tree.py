"""The module tree of a model: one node per module, in ``named_modules()`` order."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass
class ModuleNode:
    index: int
    name: str  # path from the root ("layer1.0.conv1"); "" for the root
    module: nn.Module
    depth: int
    parent: int | None
    children: list[int] = field(default_factory=list)


def module_tree(model: nn.Module) -> list[ModuleNode]:
    """Pre-order walk that names and de-duplicates modules exactly like ``named_modules()``."""
    nodes: list[ModuleNode] = []
    seen: set[int] = set()
    pending: list[tuple[nn.Module, str, int, int | None]] = [(model, "", 0, None)]
    while pending:
        module, name, depth, parent = pending.pop()
        if id(module) in seen:
            continue
        seen.add(id(module))
        node = ModuleNode(len(nodes), name, module, depth, parent)
        nodes.append(node)
        if parent is not None:
            nodes[parent].children.append(node.index)
        children = [(child_name, child) for child_name, child in module._modules.items() if child is not None]
        for child_name, child in reversed(children):
            pending.append((child, f"{name}.{child_name}" if name else child_name, depth + 1, node.index))
    return nodes


def model_tensors(model: nn.Module) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """``list(model.parameters())`` and ``list(model.buffers())``, in one walk: the checks
    made before every analysis (lazy, sharded, already fake) look at them, and torch's
    nested generators cost a millisecond per few hundred modules."""
    params: dict[int, torch.Tensor] = {}
    buffers: dict[int, torch.Tensor] = {}
    seen: set[int] = set()
    pending = [model]
    while pending:
        module = pending.pop()
        if id(module) in seen:
            continue
        seen.add(id(module))
        for param in module._parameters.values():
            if param is not None and id(param) not in params:
                params[id(param)] = param
        for buffer in module._buffers.values():
            if buffer is not None and id(buffer) not in buffers:
                buffers[id(buffer)] = buffer
        pending.extend(reversed([child for child in module._modules.values() if child is not None]))
    return list(params.values()), list(buffers.values())
