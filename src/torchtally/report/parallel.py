"""What a report says about a parallel layout: the mesh, this rank, its share of the
parameters, and the collectives it took part in (see engine/communication.py for how a
collective is sized)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class CollectiveStats:
    """One kind of collective over the whole run (forward, backward), as this rank saw it."""

    kind: str  # all_gather, reduce_scatter, all_reduce, all_to_all, broadcast, send_recv
    calls: int
    bytes: int  # data size, summed over calls (nccl-tests' `size`)
    wire_bytes: int  # bytes this rank sends with a ring algorithm

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "calls": self.calls, "bytes": self.bytes, "wire_bytes": self.wire_bytes}


@dataclass(frozen=True)
class ParallelLayout:
    """The layout one rank ran in. Figures elsewhere in the report are this rank's, except
    ``total_params`` and the Param # column, which stay the logical model."""

    world_size: int
    rank: int
    mesh_shape: tuple[int, ...]
    mesh_dims: tuple[str, ...]  # names of the mesh dimensions ("dp", "fsdp", "tp")
    fsdp: int
    tp: int
    dp: int
    reshard_after_forward: bool | None  # None: no FSDP
    mixed_precision: str | None  # "bf16", "fp16" or None
    local_params: int  # elements of this rank's parameter shards, FSDP's padding included
    communication: tuple[CollectiveStats, ...]

    @property
    def communication_bytes(self) -> int:
        return sum(c.bytes for c in self.communication)

    @property
    def wire_bytes(self) -> int:
        return sum(c.wire_bytes for c in self.communication)

    def to_dict(self) -> dict[str, Any]:
        return {
            "world_size": self.world_size,
            "rank": self.rank,
            "mesh_shape": list(self.mesh_shape),
            "mesh_dims": list(self.mesh_dims),
            "fsdp": self.fsdp,
            "tp": self.tp,
            "dp": self.dp,
            "reshard_after_forward": self.reshard_after_forward,
            "mixed_precision": self.mixed_precision,
            "local_params": self.local_params,
            "communication": [c.to_dict() for c in self.communication],
        }
