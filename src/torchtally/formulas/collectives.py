"""Collective communication and the copy-in/copy-out operators around it (FSDP2's
``fsdp::all_gather_copy_in``, ``split_with_sizes_copy``, ``chunk_cat``): no arithmetic of
the model's, so 0 FLOPs, known. Their cost is network time and bytes on the wire, which the
engine records apart (engine/communication.py); a reduction inside a collective is the
network library's work, not counted as FLOPs.

Recognised by namespace, because these operators are registered only once
``torch.distributed`` is imported, which this package must not force."""

from __future__ import annotations

from torch._ops import OpOverload

# c10d: process-group collectives (and their Work handles); _c10d_functional: the functional
# collectives DTensor and torch.compile use (and `wait_tensor`); fsdp: FSDP2's copy-in/out.
COMMUNICATION_NAMESPACES = frozenset({"c10d", "_c10d_functional", "_c10d_functional_autograd", "fsdp"})


def is_communication(func: OpOverload) -> bool:
    return func.namespace in COMMUNICATION_NAMESPACES
