"""What a collective operator puts on the network: its kind, its data size, and the bytes one
rank sends with a ring algorithm.

The size is the data size nccl-tests reports as ``size``: the whole gathered tensor of an
all-gather, the whole tensor before a reduce-scatter, the tensor of an all-reduce or a
broadcast, one rank's send buffer of an all-to-all, the tensor of a send or a receive. A
rank of a group of n sends, in a ring:

* all-gather, reduce-scatter, all-to-all: size x (n - 1) / n
* all-reduce (a reduce-scatter then an all-gather): 2 x size x (n - 1) / n
* broadcast, send/recv: size (broadcast: every rank but the last forwards it whole)

These bytes are the network's, never counted as memory traffic."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch._ops import OpOverload

from ..formulas.registry import tensor_args

# operator name (namespace.name, without overload) -> (kind, which tensors hold the data size)
_KINDS: dict[str, tuple[str, str]] = {
    "c10d._allgather_base_": ("all_gather", "output"),
    "c10d.allgather_": ("all_gather", "output"),
    "c10d.allgather_into_tensor_coalesced_": ("all_gather", "output"),
    "_c10d_functional.all_gather_into_tensor": ("all_gather", "result"),
    "_c10d_functional.all_gather_into_tensor_coalesced": ("all_gather", "result"),
    "_c10d_functional.all_gather_into_tensor_out": ("all_gather", "result"),
    "c10d._reduce_scatter_base_": ("reduce_scatter", "input"),
    "c10d.reduce_scatter_": ("reduce_scatter", "input"),
    "c10d.reduce_scatter_tensor_coalesced_": ("reduce_scatter", "input"),
    "_c10d_functional.reduce_scatter_tensor": ("reduce_scatter", "input"),
    "_c10d_functional.reduce_scatter_tensor_coalesced": ("reduce_scatter", "input"),
    "c10d.allreduce_": ("all_reduce", "input"),
    "c10d.allreduce_coalesced_": ("all_reduce", "input"),
    "_c10d_functional.all_reduce": ("all_reduce", "input"),
    "_c10d_functional.all_reduce_": ("all_reduce", "input"),
    "_c10d_functional.all_reduce_coalesced": ("all_reduce", "input"),
    "c10d.alltoall_base_": ("all_to_all", "input"),
    "c10d.alltoall_": ("all_to_all", "input"),
    "_c10d_functional.all_to_all_single": ("all_to_all", "input"),
    "c10d.broadcast_": ("broadcast", "input"),
    "_c10d_functional.broadcast": ("broadcast", "input"),
    "c10d.send": ("send_recv", "input"),
    "c10d.recv_": ("send_recv", "input"),
}
COLLECTIVE_KINDS = ("all_gather", "reduce_scatter", "all_reduce", "all_to_all", "broadcast", "send_recv")


@dataclass(frozen=True)
class Transfer:
    kind: str
    size: int  # bytes: the data size (nccl-tests' `size`)
    wire: int  # bytes this rank sends, for a ring algorithm
    group_size: int


def ring_bytes(kind: str, size: int, group_size: int) -> int:
    """Bytes one rank sends for a collective of ``size`` over ``group_size`` ranks (see above)."""
    n = max(group_size, 1)
    if kind in ("broadcast", "send_recv"):
        return size if n > 1 else 0
    factor = 2 if kind == "all_reduce" else 1
    return factor * size * (n - 1) // n


def _group_size(args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    from torch.distributed import ProcessGroup

    for value in (*args, *kwargs.values()):
        if isinstance(value, ProcessGroup):
            return int(value.size())
        if isinstance(value, torch.ScriptObject):  # a c10d operator's group, boxed
            try:
                return int(ProcessGroup.unbox(value).size())
            except (RuntimeError, TypeError):
                continue
        if isinstance(value, str):  # the group name of a functional collective
            try:
                from torch.distributed import distributed_c10d

                return int(distributed_c10d._resolve_process_group(value).size())  # type: ignore[attr-defined, arg-type]
            except (ValueError, RuntimeError, KeyError, AttributeError):
                continue
    return 1


def _bytes(tensors: Any) -> int:
    return sum(t.numel() * t.element_size() for t in tensor_args((tensors,)))


def transfer_of(func: OpOverload, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> Transfer | None:
    """The collective ``func`` is, sized; None for any other operator."""
    if func.namespace not in ("c10d", "_c10d_functional"):
        return None
    known = _KINDS.get(f"{func.namespace}.{func.overloadpacket.__name__}")
    if known is None:
        return None
    kind, held_by = known
    if held_by == "result":
        size = _bytes(out)
    elif held_by == "output":  # c10d in-place collectives: the first argument is the output buffer
        size = _bytes(args[0])
    else:
        # c10d's reduce-scatter and all-to-all take (outputs, inputs): the data is the second
        size = _bytes(args[1] if func.namespace == "c10d" and kind in ("reduce_scatter", "all_to_all") else args[0])
    group = _group_size(args, kwargs)
    return Transfer(kind, size, ring_bytes(kind, size, group), group)
