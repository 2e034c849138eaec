"""Many GPUs on one CPU: a simulated cluster (PyTorch's "fake" process group, whose
collectives send nothing) in which PyTorch's own ``parallelize_module`` (tensor parallel)
and ``fully_shard`` (FSDP2) shard a fake copy of the model for real. The engine then runs
one rank of it: what that rank computes, holds and sends.

Two ways in, one engine path, so they give the same report for the same layout:

* ``tt.analyze(model, ..., parallel=tt.Parallel(fsdp=8, tp=2))``: the layout is applied for
  the user, to a copy (a meta model copies for free; the user's model is never sharded);
* ``with tt.simulated_cluster(world_size=16) as cluster:`` the user's own parallelization
  code (torchtitan style) runs on ``cluster.materialize(model)`` (a fake copy: no memory;
  the model may be built on ``meta``) with ``cluster.mesh(...)``, and the result goes to
  ``tt.analyze``.
"""

from __future__ import annotations

import contextlib
import copy
import fnmatch
import math
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch._subclasses.fake_tensor import FakeTensor, FakeTensorMode

from ..errors import InputError
from ..report.parallel import CollectiveStats, ParallelLayout
from .communication import COLLECTIVE_KINDS
from .tree import ModuleNode, model_tensors

MIXED_PRECISION = {"bf16": torch.bfloat16, "fp16": torch.float16}
TP_STYLES = ("colwise", "rowwise", "colwise_gather_output", "embedding_rowwise", "sequence_parallel")


@dataclass(frozen=True)
class Parallel:
    """A parallel layout for ``tt.analyze(..., parallel=...)``: world size = dp x fsdp x tp.

    fsdp: ranks each parameter is sharded over (FSDP2's ``fully_shard``); with dp > 1 too,
        hybrid sharding (HSDP): sharded within a group of ``fsdp`` ranks, replicated across ``dp``.
    tp: tensor-parallel degree (``parallelize_module``): from the Hugging Face model's own
        plan (``base_model_tp_plan``), or from ``tp_plan={"layers.*.mlp.up_proj": "colwise", ...}``.
    dp: plain data parallel (replicas).
    reshard_after_forward: FSDP frees the gathered parameters after each block's forward and
        gathers them again for its backward (True), or keeps them until the backward (False).
        The root keeps FSDP2's default (kept: the backward starts right after its forward).
    mixed_precision: "bf16" or "fp16": parameters gathered in that dtype for compute,
        gradients reduced in float32 (FSDP2's ``MixedPrecisionPolicy``); None: the model's dtype.
    blocks: class names of the modules ``fully_shard`` wraps one by one (default: the Hugging
        Face model's ``_no_split_modules``); the root is always wrapped.
    rank: the rank the report describes.
    """

    fsdp: int = 1
    tp: int = 1
    dp: int = 1
    reshard_after_forward: bool = True
    mixed_precision: str | None = None
    tp_plan: Mapping[str, str] | None = None
    blocks: Sequence[str] | None = None
    rank: int = 0

    def __post_init__(self) -> None:
        for name in ("fsdp", "tp", "dp"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"Parallel({name}={value!r}): a degree is a whole number of ranks, at least 1")
        if not isinstance(self.reshard_after_forward, bool):
            raise InputError(f"Parallel(reshard_after_forward={self.reshard_after_forward!r}): True or False")
        if self.tp_plan is not None and not isinstance(self.tp_plan, Mapping):
            raise InputError(f"Parallel(tp_plan=...) maps module path patterns to styles; got {type(self.tp_plan).__name__}")
        if self.blocks is not None and (isinstance(self.blocks, str) or not all(isinstance(b, str) for b in self.blocks)):
            raise InputError(f"Parallel(blocks=...) is a list of module class names; got {self.blocks!r}")
        if self.mixed_precision not in (None, *MIXED_PRECISION):
            raise InputError(f"Parallel(mixed_precision={self.mixed_precision!r}): use None, 'bf16' or 'fp16'")
        if isinstance(self.rank, bool) or not isinstance(self.rank, int) or not 0 <= self.rank < self.world_size:
            raise InputError(f"Parallel(rank={self.rank!r}): a rank of a world of {self.world_size} is 0..{self.world_size - 1}")
        for pattern, style in (self.tp_plan or {}).items():
            if style not in TP_STYLES:
                raise InputError(f"tp_plan[{pattern!r}] = {style!r}: a style is one of {', '.join(TP_STYLES)}")

    @property
    def world_size(self) -> int:
        return self.dp * self.fsdp * self.tp


# -- the simulated cluster ------------------------------------------------------------------


@dataclass
class Cluster:
    """A simulated cluster: its size, this process's rank, and the fake mode its tensors live in."""

    world_size: int
    rank: int
    fake_mode: FakeTensorMode
    _meshes: dict[tuple[tuple[int, ...], tuple[str, ...]], Any] = field(default_factory=dict)

    def mesh(self, shape: Sequence[int] | None = None, names: Sequence[str] | None = None) -> Any:
        """A device mesh over the cluster (``init_device_mesh("cpu", shape, mesh_dim_names=names)``)."""
        from torch.distributed.device_mesh import init_device_mesh

        dims = tuple(shape) if shape is not None else (self.world_size,)
        if math.prod(dims) != self.world_size:
            raise InputError(f"a mesh of shape {dims} has {math.prod(dims)} ranks; the cluster has {self.world_size}")
        labels = tuple(names) if names is not None else tuple(f"dim{i}" for i in range(len(dims)))
        key = (dims, labels)
        if key not in self._meshes:
            self._meshes[key] = init_device_mesh("cpu", dims, mesh_dim_names=labels)
        return self._meshes[key]

    def materialize(self, model: nn.Module) -> nn.Module:
        """A copy of ``model`` whose parameters and buffers are fake tensors of this cluster
        on the CPU (no memory): what ``fully_shard`` needs of a model built on ``meta``."""
        return fake_copy(model, self.fake_mode)

    def shard(self, model: nn.Module, plan: Parallel) -> nn.Module:
        """A fake copy of ``model`` with ``plan`` applied (tensor parallel, then FSDP)."""
        return apply_plan(fake_copy(model, self.fake_mode), plan, self)


@contextlib.contextmanager
def simulated_cluster(world_size: int, *, rank: int = 0) -> Iterator[Cluster]:
    """A simulated cluster of ``world_size`` ranks, this process being ``rank``: PyTorch's fake
    process group (collectives send nothing) and a fake tensor mode for the model's tensors
    (``cluster.materialize(model)``: a copy holding no memory, that PyTorch's parallel code
    can shard). Leaving the block tears the group down."""
    import torch.distributed as dist

    if isinstance(world_size, bool) or not isinstance(world_size, int) or world_size < 1:
        raise InputError(f"simulated_cluster(world_size={world_size!r}): a world size is a whole number of ranks, at least 1")
    if isinstance(rank, bool) or not isinstance(rank, int) or not 0 <= rank < world_size:
        raise InputError(f"simulated_cluster(rank={rank!r}): a rank of a world of {world_size} is 0..{world_size - 1}")
    if not dist.is_available():
        raise InputError("this torch build has no torch.distributed: parallel layouts cannot be simulated")
    if dist.is_initialized():
        raise InputError(
            f"a process group is already initialised here (backend {dist.get_backend()!r}, world size "
            f"{dist.get_world_size()}): torchtally will not touch it; analyse parallel layouts in a process "
            "without one (or inside one tt.simulated_cluster)"
        )
    from torch.testing._internal.distributed.fake_pg import FakeStore

    hook = sys.excepthook  # init_process_group installs a rank-prefixing hook of its own, for good
    dist.init_process_group("fake", store=FakeStore(), rank=rank, world_size=world_size)
    try:
        yield Cluster(world_size, rank, FakeTensorMode(allow_non_fake_inputs=True))
    finally:
        dist.destroy_process_group()
        sys.excepthook = hook


# -- the fake copy and the plan ---------------------------------------------------------------


def fake_copy(model: nn.Module, fake_mode: FakeTensorMode) -> nn.Module:
    """A structural copy of ``model`` whose parameters and buffers are fresh fake tensors on
    the CPU (same shapes, dtypes, ``requires_grad``; a tensor held twice stays one tensor)."""
    memo: dict[int, Any] = {id(t): None for t in (*model.parameters(), *model.buffers())}
    try:
        twin = copy.deepcopy(model, memo)  # the tensors themselves are not copied (None for now)
    except Exception as exc:  # noqa: BLE001 - any attribute may refuse copying
        raise InputError(f"parallel analysis works on a copy of the model, which cannot be deep-copied ({type(exc).__name__}: {exc})") from exc
    made: dict[int, torch.Tensor] = {}
    with fake_mode:
        for original, copied in zip(model.modules(), twin.modules()):
            for slot, values in (("_parameters", original._parameters), ("_buffers", original._buffers)):
                target = getattr(copied, slot)
                for name, tensor in values.items():
                    if tensor is None:
                        continue
                    fresh = made.get(id(tensor))
                    if fresh is None:
                        data = torch.empty(tensor.shape, dtype=tensor.dtype, device="cpu")
                        fresh = nn.Parameter(data, requires_grad=tensor.requires_grad) if slot == "_parameters" else data
                        made[id(tensor)] = fresh
                    target[name] = fresh
    return twin


def _tp_styles(plan: Mapping[str, str]) -> dict[str, Any]:
    from torch.distributed.tensor import Replicate
    from torch.distributed.tensor.parallel import ColwiseParallel, RowwiseParallel, SequenceParallel

    made = {
        "colwise": lambda: ColwiseParallel(),
        "rowwise": lambda: RowwiseParallel(),
        "colwise_gather_output": lambda: ColwiseParallel(output_layouts=Replicate()),
        "embedding_rowwise": lambda: RowwiseParallel(input_layouts=Replicate()),  # vocabulary split, outputs summed
        "sequence_parallel": lambda: SequenceParallel(),
    }
    return {pattern: made[style]() for pattern, style in plan.items()}  # type: ignore[no-untyped-call]


def huggingface_tp_plan(model: nn.Module) -> dict[str, str] | None:
    """A Hugging Face model's own tensor-parallel plan, with paths from its root: the
    config's ``base_model_tp_plan`` (under the base model's prefix) and the head's ``_tp_plan``."""
    own = getattr(model, "_tp_plan", None)
    if isinstance(own, Mapping) and any(isinstance(m, nn.Module) for m in model.children()) and len(own) > 1:
        plan = dict(own)  # transformers >= 5 gathers the whole plan, with paths from the root
    else:
        config = getattr(model, "config", None)
        base_plan = getattr(config, "base_model_tp_plan", None) or {}
        prefix = getattr(model, "base_model_prefix", "")
        under = f"{prefix}." if prefix and isinstance(getattr(model, prefix, None), nn.Module) else ""
        plan = {f"{under}{pattern}": style for pattern, style in base_plan.items()}
        plan.update(own or {})
    unknown = sorted({style for style in plan.values() if style not in TP_STYLES})
    if unknown:
        raise InputError(
            f"{type(model).__name__}'s own tensor-parallel plan uses {', '.join(unknown)}, which torchtally does not "
            f"apply yet (it applies {', '.join(TP_STYLES)}): pass tp_plan= yourself"
        )
    return plan or None


def _check_divisible(model: nn.Module, plan: dict[str, str], tp: int) -> None:
    """A TP degree must divide what it splits: the features of each split Linear, and the
    attention heads of the modules whose projections are split."""
    for path, module in model.named_modules():
        style = next((s for p, s in plan.items() if fnmatch.fnmatchcase(path, p)), None)
        if style is None or style == "sequence_parallel":
            continue
        if isinstance(module, nn.Embedding):  # split by rows (the vocabulary) whatever the style
            what, size = "num_embeddings", module.num_embeddings
        elif isinstance(module, nn.Linear):
            what, size = ("in_features", module.in_features) if style == "rowwise" else ("out_features", module.out_features)
        else:
            raise InputError(
                f"tp_plan splits {path} ({type(module).__name__}) {style}: PyTorch's tensor parallelism splits "
                "nn.Linear and nn.Embedding modules only"
            )
        if size % tp:
            raise InputError(
                f"tp={tp} does not divide {path} ({type(module).__name__}): a {style} split needs its {what} ({size}) "
                f"divisible by {tp} (uneven shards differ from rank to rank)"
            )
    for path, module in model.named_modules():
        config = getattr(module, "config", None)
        for name in ("num_attention_heads", "num_key_value_heads", "n_head"):
            heads = getattr(config, name, None)
            if isinstance(heads, int) and heads % tp:
                raise InputError(f"tp={tp} does not divide the model's {name} ({heads}) (config of {path or 'the root'})")


def _check_no_tied_split(model: nn.Module, plan: dict[str, str]) -> None:
    """``parallelize_module`` shards each module's weight on its own: a weight two modules share
    (tied embeddings) would silently become two, and the model would no longer be the one given."""
    holders: dict[int, list[str]] = {}
    for path, module in model.named_modules(remove_duplicate=False):
        for name, param in module.named_parameters(recurse=False, remove_duplicate=False):
            holders.setdefault(id(param), []).append(f"{path}.{name}" if path else name)
    split = {path for path, _ in model.named_modules() if any(fnmatch.fnmatchcase(path, p) for p in plan)}
    for names in holders.values():
        owners = {name.rpartition(".")[0] for name in names}
        if len(names) > 1 and owners & split:
            raise InputError(
                f"tensor parallelism would untie {' and '.join(names)} (one weight, held by both): PyTorch shards "
                "each module's weight apart; untie them (e.g. tie_word_embeddings=False) or leave them out of tp_plan"
            )


def apply_plan(model: nn.Module, plan: Parallel, cluster: Cluster) -> nn.Module:
    """Shard ``model`` (a fake copy) in place as ``plan`` says; returns it."""
    if plan.world_size != cluster.world_size:
        raise InputError(f"the plan needs {plan.world_size} ranks; the cluster has {cluster.world_size}")
    mesh = cluster.mesh((plan.dp, plan.fsdp, plan.tp), ("dp", "fsdp", "tp"))
    if plan.tp > 1:
        from torch.distributed.tensor.parallel import parallelize_module

        tp_plan = dict(plan.tp_plan) if plan.tp_plan is not None else huggingface_tp_plan(model)
        if not tp_plan:
            raise InputError(
                f"tp={plan.tp} needs a plan: the model has no Hugging Face tensor-parallel plan; pass "
                "tp_plan={'module.path.pattern': 'colwise' | 'rowwise', ...}"
            )
        paths = [path for path, _ in model.named_modules()]
        for pattern in tp_plan:
            if not any(fnmatch.fnmatchcase(path, pattern) for path in paths):
                raise InputError(f"tp_plan names {pattern!r}, which matches no module of {type(model).__name__}")
        _check_divisible(model, tp_plan, plan.tp)
        _check_no_tied_split(model, tp_plan)
        parallelize_module(model, mesh["tp"], _tp_styles(tp_plan))
    if plan.fsdp > 1 or plan.dp > 1 or plan.mixed_precision is not None:  # mixed precision is FSDP's, even on one rank
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

        if not any(True for _ in model.parameters()):
            raise InputError(f"fsdp={plan.fsdp}: {type(model).__name__} has no parameters to shard")
        # dp > 1 is hybrid sharding over a 2-D mesh: replicated across "dp", sharded within
        # "fsdp" (with fsdp == 1: plain data parallel, every rank holding everything)
        shard_mesh = mesh["dp", "fsdp"] if plan.dp > 1 else mesh["fsdp"]
        policy = MixedPrecisionPolicy()
        if plan.mixed_precision is not None:
            policy = MixedPrecisionPolicy(param_dtype=MIXED_PRECISION[plan.mixed_precision], reduce_dtype=torch.float32)
        blocks = set(plan.blocks) if plan.blocks is not None else set(getattr(model, "_no_split_modules", None) or ())
        wrapped = [module for module in list(model.modules())[1:] if type(module).__name__ in blocks]
        if plan.blocks is not None and not wrapped:
            raise InputError(f"blocks={sorted(blocks)} names no module class of {type(model).__name__}")
        for module in wrapped:
            fully_shard(module, mesh=shard_mesh, mp_policy=policy, reshard_after_forward=plan.reshard_after_forward)
        # The root keeps FSDP2's own default: not resharded after the forward, whose end the
        # backward follows at once.
        fully_shard(model, mesh=shard_mesh, mp_policy=policy)
    return model


# -- what the engine asks of a sharded model --------------------------------------------------


def original_class(module: nn.Module) -> type:
    """The module's own class: FSDP2 swaps a sharded module's class for a subclass of it
    named ``FSDP<Name>``, which reports should not show."""
    cls = type(module)
    for base in cls.__bases__:
        if base.__name__ == "FSDPModule":
            return next(b for b in cls.__bases__ if b is not base)
    return cls


def check_cluster_open(model: nn.Module) -> None:
    """A model sharded in a simulated cluster runs only while the cluster is open."""
    import torch.distributed as dist

    if not dist.is_initialized() and any(is_distributed(p) for p in model_tensors(model)[0]):
        raise InputError(
            "the model is sharded (DTensor parameters) but no process group is open: analyse a model sharded in "
            "tt.simulated_cluster inside its `with` block"
        )


def fake_mode_of(model: nn.Module) -> FakeTensorMode | None:
    """The fake mode a model's tensors already live in (built under a simulated cluster or a
    FakeTensorMode), or None for a model of real or meta tensors."""
    params, buffers = model_tensors(model)
    for tensor in (*params, *buffers):
        local = getattr(tensor, "_local_tensor", tensor)
        if isinstance(local, FakeTensor):
            return local.fake_mode
    return None


_DTENSOR: list[type] = []  # DTensor, imported on first use


def is_distributed(tensor: torch.Tensor) -> bool:
    if not _DTENSOR:
        from torch.distributed.tensor import DTensor

        _DTENSOR.append(DTensor)
    return isinstance(tensor, _DTENSOR[0])


@contextlib.contextmanager
def dtensor_shaping_flagged(counting: Any) -> Iterator[None]:
    """While active, ``counting.shaping`` is True whenever DTensor runs an operator on
    global-shape fake tensors to learn its output's metadata (it does so inside the
    ``_fake_mode_lock`` of its sharding propagator, a context it lets tests replace). Those
    runs are DTensor's bookkeeping, not this rank's work, and are left uncounted."""
    from torch.distributed.tensor._sharding_prop import ShardingPropagator

    previous = ShardingPropagator._fake_mode_lock

    @contextlib.contextmanager
    def flagged() -> Iterator[None]:
        with previous:
            counting.shaping = True
            try:
                yield
            finally:
                counting.shaping = False

    class _Flag:  # a reusable context manager, as the lock it stands in for
        def __enter__(self) -> None:
            self._inner = flagged()
            self._inner.__enter__()

        def __exit__(self, *exc: Any) -> None:
            self._inner.__exit__(*exc)

    ShardingPropagator._fake_mode_lock = _Flag()  # type: ignore[assignment]
    try:
        yield
    finally:
        ShardingPropagator._fake_mode_lock = previous


@contextlib.contextmanager
def fsdp_storage_followed(live: Any) -> Iterator[None]:
    """While active, FSDP2's frees and re-allocations of gathered parameters (storages it
    resizes in place, which no operator does) reach ``live.storage_resized``: a block's
    gathered parameters leave the live set when it reshards."""
    from torch.distributed.fsdp._fully_shard import _fsdp_param, _fsdp_param_group

    free, alloc = _fsdp_param.free_storage, _fsdp_param.alloc_storage

    def freed(tensor: torch.Tensor) -> None:
        free(tensor)
        live.storage_resized(tensor.untyped_storage())

    def allocated(tensor: torch.Tensor) -> None:
        alloc(tensor)
        live.storage_resized(tensor.untyped_storage())

    patched = [(_fsdp_param, "free_storage", freed), (_fsdp_param, "alloc_storage", allocated),
               (_fsdp_param_group, "alloc_storage", allocated)]  # fmt: skip
    originals = [(module, name, getattr(module, name)) for module, name, _ in patched if hasattr(module, name)]
    for module, name, replacement in patched:
        if hasattr(module, name):
            setattr(module, name, replacement)
    try:
        yield
    finally:
        for module, name, original in originals:
            setattr(module, name, original)


def local_gradient(param: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """This rank's gradient of ``param``, shaped like its shard: a DTensor gradient may come
    back replicated where its parameter is sharded (a vocabulary-parallel embedding's), and the
    optimizer steps on the shard. A meta tensor: only its shape and dtype are read."""
    local = local_tensor(grad)
    shard = local_tensor(param)
    if local.shape == shard.shape:
        return local
    return torch.empty(shard.shape, dtype=local.dtype, device="meta")


def local_tensor(tensor: torch.Tensor) -> torch.Tensor:
    return getattr(tensor, "_local_tensor", tensor)


def fsdp_groups(nodes: list[ModuleNode]) -> list[tuple[int, list[torch.Tensor]]]:
    """Each module FSDP2 wraps (its row) with the parameters its group gathers."""
    found = []
    for node in nodes:
        # Looked up on the class (FSDP2 makes one per wrapped class): on the instance, every
        # plain module would raise and catch an AttributeError in nn.Module.__getattr__.
        get_state = getattr(type(node.module), "_get_fsdp_state", None)
        if not callable(get_state):
            continue
        state = get_state(node.module)
        group = getattr(state, "_fsdp_param_group", None)
        if group is not None:
            found.append((node.index, [fp.sharded_param for fp in group.fsdp_params]))
    return found


def describe_layout(
    model: nn.Module, nodes: list[ModuleNode], local_params: int, transfers: Mapping[str, tuple[int, int, int]]
) -> ParallelLayout | None:
    """The layout of a sharded model, read from its DTensors and FSDP2's state (so a layout
    the user built by hand reads the same as one from ``Parallel``), with the collectives the
    run made (kind -> calls, bytes, wire bytes); None when nothing in it is distributed."""
    import torch.distributed as dist

    specs = [getattr(t, "_spec", None) for t in (*model.parameters(), *model.buffers())]
    meshes = [spec.mesh for spec in specs if spec is not None]
    if not meshes or not dist.is_initialized():
        return None
    mesh = max(meshes, key=lambda m: m.ndim)
    root = getattr(mesh, "_get_root_mesh", lambda: mesh)()
    world = dist.get_world_size()
    fsdp = dp = 1
    reshard: bool | None = None
    precision: str | None = None
    groups = fsdp_groups(nodes)
    if groups:
        # a block's group, when there are blocks: the root keeps FSDP2's own resharding default
        row = groups[1][0] if len(groups) > 1 else groups[0][0]
        group = nodes[row].module._get_fsdp_state()._fsdp_param_group  # type: ignore[operator]
        fsdp = int(group.mesh_info.shard_mesh_size)
        dp = int(getattr(group.mesh_info, "replicate_mesh_size", 1))
        reshard = group.post_forward_mesh_info is not None
        precision = next((name for name, dtype in MIXED_PRECISION.items() if dtype == group.mp_policy.param_dtype), None)
    return ParallelLayout(
        world_size=world,
        rank=dist.get_rank(),
        mesh_shape=tuple(int(size) for size in root.shape),
        mesh_dims=tuple(root.mesh_dim_names or (f"dim{i}" for i in range(root.ndim))),
        fsdp=fsdp,
        tp=max(world // (fsdp * dp), 1),
        dp=dp,
        reshard_after_forward=reshard,
        mixed_precision=precision,
        local_params=local_params,
        communication=tuple(CollectiveStats(kind, *transfers[kind]) for kind in COLLECTIVE_KINDS if kind in transfers),
    )
