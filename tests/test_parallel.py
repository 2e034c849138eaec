"""One rank of a parallel layout (FSDP2, tensor parallel, both, HSDP), simulated on this CPU:
PyTorch's own fully_shard / parallelize_module on a fake copy in a fake process group.
Every expected figure is derived here from the shapes (the derivation beside it)."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
import torch.distributed as dist
import transformers
from torch import nn
from torch.distributed.fsdp import fully_shard
from torch.distributed.tensor.parallel import ColwiseParallel, RowwiseParallel, parallelize_module

import torchtally as tt


class Block(nn.Module):
    def __init__(self, width: int = 64, hidden: int = 256) -> None:
        super().__init__()
        self.up = nn.Linear(width, hidden)
        self.down = nn.Linear(hidden, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(torch.relu(self.up(x)))


class Stack(nn.Module):
    _no_split_modules = ["Block"]  # what fully_shard wraps one by one, as in Hugging Face models

    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.ModuleList([Block(), Block()])
        self.head = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return self.head(x)


def meta_stack() -> Stack:
    with torch.device("meta"):
        return Stack()


TP_PLAN = {"blocks.*.up": "colwise", "blocks.*.down": "rowwise"}


def padded(shape: tuple[int, ...], ranks: int) -> int:
    """Elements FSDP2 keeps per rank of a parameter: dim 0 split in ``ranks`` equal chunks, rounded up."""
    return -(-shape[0] // ranks) * math.prod(shape[1:])


# -- FSDP -----------------------------------------------------------------------------------


def test_fsdp_one_rank_holds_a_shard_and_sends_what_the_schedule_gathers() -> None:
    n = 8
    report = tt.analyze(meta_stack(), (4, 64), training=True, optimizer="adamw", parallel=tt.Parallel(fsdp=n))
    model = Stack()
    shapes = {name: tuple(p.shape) for name, p in model.named_parameters()}
    block = sum(padded(s, n) for name, s in shapes.items() if name.startswith("blocks.0."))  # per rank, one block
    root = sum(padded(s, n) for name, s in shapes.items() if name.startswith("head."))  # head: 10 rows -> 2 per rank
    assert root == 2 * 64 + 2  # 10 rows of 64 pad to 16 (2 per rank); 10 biases pad to 16
    local = 2 * block + root
    assert report.parallel is not None and report.parallel.local_params == local
    assert report.total_params == sum(p.numel() for p in model.parameters())  # the logical model, unchanged
    assert report.used_params == report.total_params  # read through their all-gathers
    memory = report.memory
    assert memory.parameters == 4 * local  # fp32 shards
    assert memory.gradients == 4 * local  # fp32 gradient shards (reduce-scatter outputs)
    # AdamW: exp_avg and exp_avg_sq per element of rank 0's shards (rank 0's chunks are the
    # full, rounded-up ones), and a 4-byte step per parameter tensor.
    assert memory.optimizer_state == 2 * 4 * local + 4 * len(shapes)
    # Collectives: every unit (2 blocks, and the root holding the head) is gathered for its
    # forward, the whole padded unit in fp32; the blocks, resharded after their forward, again
    # for their backward (the root keeps its parameters: its backward comes right after).
    # Each unit's gradients are reduce-scattered once.
    gathered = 4 * n * (2 * block + root) + 4 * n * (2 * block)
    by_kind = {c.kind: c for c in report.parallel.communication}
    assert (by_kind["all_gather"].calls, by_kind["all_gather"].bytes) == (5, gathered)
    assert (by_kind["reduce_scatter"].calls, by_kind["reduce_scatter"].bytes) == (3, 4 * n * (2 * block + root))
    assert by_kind["all_gather"].wire_bytes == gathered * (n - 1) // n  # ring: size (n-1)/n each
    assert set(by_kind) == {"all_gather", "reduce_scatter"}
    assert not report.uncounted_ops  # collectives and FSDP's copy-in/out have rules
    # FSDP splits no arithmetic: MACs are the unsharded model's (4 tokens through each Linear).
    assert report.total_macs == 4 * (2 * (64 * 256 + 256 * 64) + 64 * 10)


def test_fsdp_without_resharding_gathers_once() -> None:
    report = tt.analyze(meta_stack(), (4, 64), training=True, parallel=tt.Parallel(fsdp=4, reshard_after_forward=False))
    assert report.parallel is not None and report.parallel.reshard_after_forward is False
    gathers = next(c for c in report.parallel.communication if c.kind == "all_gather")
    assert gathers.calls == 3  # each unit once: kept from its forward to its backward


# -- tensor parallel ----------------------------------------------------------------------------


def small_llama(layers: int = 2) -> transformers.LlamaConfig:
    return transformers.LlamaConfig(
        hidden_size=64, intermediate_size=128, num_hidden_layers=layers, num_attention_heads=8,
        num_key_value_heads=8, vocab_size=256, max_position_embeddings=64,
    )  # fmt: skip


def test_tensor_parallel_splits_each_projection_by_the_degree() -> None:
    tp, tokens = 8, 16
    with torch.device("meta"):
        model = transformers.LlamaForCausalLM(small_llama())
    whole = tt.analyze(model, (1, tokens), dtypes=[torch.long])
    split = tt.analyze(model, (1, tokens), dtypes=[torch.long], parallel=tt.Parallel(tp=tp))  # Llama's own plan
    assert split.total_params == whole.total_params  # logical parameters unchanged
    assert not split.uncounted_ops
    projections = [layer.name for layer in whole.layers if layer.name.endswith(("_proj",))]
    assert len(projections) == 2 * 7
    for name in projections:
        linear = model.get_submodule(name)
        assert whole.layer(name).macs == tokens * linear.in_features * linear.out_features
        assert split.layer(name).macs == tokens * linear.in_features * linear.out_features // tp  # exactly 1/8
    head = model.lm_head  # colwise, output gathered
    assert split.layer("lm_head").macs == tokens * head.in_features * head.out_features // tp
    # Collectives of the forward: the embedding (vocabulary split) and each layer's o_proj and
    # down_proj (rowwise) all-reduce a 1 x 16 x 64 fp32 output; the head all-gathers the
    # 1 x 16 x 256 logits.
    assert split.parallel is not None
    by_kind = {c.kind: c for c in split.parallel.communication}
    assert (by_kind["all_reduce"].calls, by_kind["all_reduce"].bytes) == (1 + 2 * 2, (1 + 2 * 2) * tokens * 64 * 4)
    assert (by_kind["all_gather"].calls, by_kind["all_gather"].bytes) == (1, tokens * 256 * 4)
    assert by_kind["all_reduce"].wire_bytes == 2 * by_kind["all_reduce"].bytes * (tp - 1) // tp  # ring all-reduce
    for layer in range(2):
        assert split.layer(f"model.layers.{layer}").communication_bytes == 2 * tokens * 64 * 4


# -- the two ways in give one report --------------------------------------------------------


def _by_hand(world: int, mesh_shape: tuple[int, int, int], fsdp_dims: Any, **options: Any) -> tt.ModelReport:
    with tt.simulated_cluster(world) as cluster:
        model = cluster.materialize(meta_stack())
        mesh = cluster.mesh(mesh_shape, ("dp", "fsdp", "tp"))
        if mesh_shape[2] > 1:
            parallelize_module(model, mesh["tp"], {"blocks.*.up": ColwiseParallel(), "blocks.*.down": RowwiseParallel()})
        shard_mesh = mesh[fsdp_dims] if isinstance(fsdp_dims, tuple) else mesh[fsdp_dims]
        for block in model.blocks:
            fully_shard(block, mesh=shard_mesh)
        fully_shard(model, mesh=shard_mesh)
        return tt.analyze(model, (4, 64), **options)


@pytest.mark.parametrize(
    "plan,world,mesh_shape,fsdp_dims",
    [
        (tt.Parallel(fsdp=2, tp=2, tp_plan=TP_PLAN), 4, (1, 2, 2), "fsdp"),  # 2-D: FSDP x TP
        (tt.Parallel(dp=2, fsdp=2), 4, (2, 2, 1), ("dp", "fsdp")),  # HSDP
    ],
    ids=["fsdp-x-tp", "hsdp"],
)
def test_a_plan_and_the_same_layout_built_by_hand_agree(plan: tt.Parallel, world: int, mesh_shape: Any, fsdp_dims: Any) -> None:
    ours = tt.analyze(meta_stack(), (4, 64), training=True, optimizer="adamw", parallel=plan)
    theirs = _by_hand(world, mesh_shape, fsdp_dims, training=True, optimizer="adamw")
    assert ours.to_dict() == theirs.to_dict()
    assert ours.parallel is not None and (ours.parallel.dp, ours.parallel.fsdp, ours.parallel.tp) == (plan.dp, plan.fsdp, plan.tp)


def test_hsdp_replicates_across_groups_and_shards_within() -> None:
    report = tt.analyze(meta_stack(), (4, 64), training=True, parallel=tt.Parallel(dp=2, fsdp=4))
    model = Stack()
    local = sum(padded(tuple(p.shape), 4) for p in model.parameters())  # sharded over the 4 of a group
    assert report.parallel is not None and report.parallel.local_params == local
    kinds = {c.kind for c in report.parallel.communication}
    assert kinds == {"all_gather", "reduce_scatter", "all_reduce"}  # all-reduce: the gradients across the 2 groups


# -- the model and the process ----------------------------------------------------------------


def test_the_users_model_is_never_sharded_and_no_group_is_left() -> None:
    model = Stack()
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    tt.analyze(model, (4, 64), training=True, parallel=tt.Parallel(fsdp=2, tp=2, tp_plan=TP_PLAN))
    assert not dist.is_initialized()
    for name, param in model.named_parameters():
        assert type(param) is nn.Parameter and torch.equal(param, before[name])
    assert type(model).__name__ == "Stack" and not hasattr(model, "_get_fsdp_state")


def test_a_failing_plan_leaves_no_group_and_the_model_alone() -> None:
    model = meta_stack()
    with pytest.raises(tt.InputError):
        tt.analyze(model, (4, 64), parallel=tt.Parallel(tp=3, tp_plan=TP_PLAN))
    assert not dist.is_initialized()
    assert all(type(p) is nn.Parameter for p in model.parameters())


# -- bad plans --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make,pattern",
    [
        (lambda: tt.Parallel(fsdp=0), r"fsdp=0"),
        (lambda: tt.Parallel(tp=2, mixed_precision="fp8"), r"mixed_precision='fp8'"),
        (lambda: tt.Parallel(tp=2, tp_plan={"blocks.*.up": "diagonal"}), r"'diagonal'"),
    ],
)
def test_bad_parallel_settings_are_input_errors(make: Any, pattern: str) -> None:
    with pytest.raises(tt.InputError, match=pattern):
        make()


def test_a_tp_degree_that_does_not_divide_names_the_module_and_numbers() -> None:
    with pytest.raises(tt.InputError, match=r"tp=3 does not divide blocks\.0\.up .*256.*3"):
        tt.analyze(meta_stack(), (4, 64), parallel=tt.Parallel(tp=3, tp_plan=TP_PLAN))


def test_a_tp_degree_that_does_not_divide_the_heads_is_refused() -> None:
    with torch.device("meta"):
        model = transformers.LlamaForCausalLM(small_llama(1))  # 8 heads
    with pytest.raises(tt.InputError, match=r"num_attention_heads \(8\)"):
        tt.analyze(model, (1, 8), dtypes=[torch.long], parallel=tt.Parallel(tp=16))


def test_a_plan_naming_no_module_is_refused() -> None:
    with pytest.raises(tt.InputError, match=r"'layers\.\*\.mlp', which matches no module of Stack"):
        tt.analyze(meta_stack(), (4, 64), parallel=tt.Parallel(tp=2, tp_plan={"layers.*.mlp": "colwise"}))


def test_fsdp_of_a_model_without_parameters_is_refused() -> None:
    with pytest.raises(tt.InputError, match=r"ReLU has no parameters"):
        tt.analyze(nn.ReLU(), (4, 64), parallel=tt.Parallel(fsdp=2))


def test_a_real_process_group_is_left_alone() -> None:
    from torch.testing._internal.distributed.fake_pg import FakeStore

    dist.init_process_group("fake", store=FakeStore(), rank=0, world_size=2)
    try:
        with pytest.raises(tt.InputError, match=r"already initialised .*will not touch it"):
            tt.analyze(meta_stack(), (4, 64), parallel=tt.Parallel(fsdp=2))
        assert dist.is_initialized() and dist.get_world_size() == 2
    finally:
        dist.destroy_process_group()


# -- at LLM scale -----------------------------------------------------------------------------


def test_llama2_7b_fsdp64_bf16_adamw_holds_16_bytes_per_parameter_over_64_ranks() -> None:
    # ZeRO (Rajbhandari et al. 2020, Table 1), P_os+g+p: (2 + 2 + K) * psi / N_d with K = 12.
    # FSDP2 with bf16 mixed precision keeps fp32 shards (4), fp32 gradient shards (4) and
    # AdamW's two fp32 moments (8): the same 16 bytes per parameter, over 64 ranks.
    config = transformers.LlamaConfig(
        hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
        num_key_value_heads=32, vocab_size=32000, max_position_embeddings=4096,
    )  # fmt: skip
    with torch.device("meta"):
        model = transformers.LlamaForCausalLM(config)
    n = 64
    report = tt.analyze(model, (1, 2048), dtypes=[torch.long], training=True, optimizer="adamw",
                        parallel=tt.Parallel(fsdp=n, mixed_precision="bf16"))  # fmt: skip
    psi = report.total_params
    assert psi == sum(p.numel() for p in model.parameters())  # 6,738,415,616: Llama-2-7B
    memory = report.memory
    states = memory.parameters + memory.gradients + (memory.optimizer_state or 0)
    assert abs(states / (16 * psi / n) - 1) < 0.01
    assert report.parallel is not None and abs(report.parallel.local_params / (psi / n) - 1) < 0.001
    padded_elements = sum(padded(tuple(p.shape), n) for p in model.parameters()) * n
    in_blocks = sum(padded(tuple(p.shape), n) for name, p in model.named_parameters() if name.startswith("model.layers.")) * n
    by_kind = {c.kind: c for c in report.parallel.communication}
    assert by_kind["reduce_scatter"].bytes == 4 * padded_elements  # fp32 gradients of every sharded parameter
    # gathered in bf16: everything for the forward; the 32 decoder layers (resharded after
    # their forward) again for the backward
    assert by_kind["all_gather"].bytes == 2 * (padded_elements + in_blocks)


# -- the command line -------------------------------------------------------------------------


def test_the_command_line_analyses_one_rank_and_checks_its_budget(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from torchtally.cli import main

    source = tmp_path / "stack.py"
    source.write_text(
        "from torch import nn\n"
        "class Block(nn.Module):\n"
        "    def __init__(self):\n        super().__init__(); self.up = nn.Linear(64, 256); self.down = nn.Linear(256, 64)\n"
        "    def forward(self, x):\n        return self.down(self.up(x).relu())\n"
    )
    args = [f"{source}:Block", "--input-size", "4", "64", "--tp", "2", "--tp-plan", "up=colwise", "--tp-plan", "down=rowwise"]
    code = main([*args, "--format", "json"])
    out, _ = capsys.readouterr()
    assert code == 0
    import json

    data = json.loads(out)
    assert data["parallel"]["tp"] == 2 and data["totals"]["macs"] == 4 * (64 * 256 + 256 * 64) // 2
    main(args)
    text, _ = capsys.readouterr()
    assert "Parallel layout (simulated): rank 0 of 2, mesh dp=1 x fsdp=1 x tp=2" in text
    assert "Collective all_reduce: 1 calls, 1.00 KiB of data" in text  # the 4 x 64 fp32 output of down
    # A budget is checked against this rank's peak: one rank holds half of each weight.
    one_rank = tt.analyze(meta_block(), (4, 64), parallel=tt.Parallel(tp=2, tp_plan={"up": "colwise", "down": "rowwise"}))
    assert main([*args, "--max-memory", str(one_rank.memory.peak)]) == 0
    assert main([*args, "--max-memory", str(one_rank.memory.peak - 1)]) == 3
    capsys.readouterr()


def meta_block() -> Block:
    with torch.device("meta"):
        return Block()


def test_fsdp_x_tp_shards_each_parameter_over_both_dimensions() -> None:
    report = tt.analyze(meta_stack(), (4, 64), training=True, parallel=tt.Parallel(fsdp=2, tp=2, tp_plan=TP_PLAN))
    # Per block: up.weight (256, 64) colwise: 128 rows per TP rank, then 64 per FSDP rank: 64 x 64;
    # up.bias (256): split like its rows: 64; down.weight (64, 256) rowwise: 128 columns per TP
    # rank, then 32 rows per FSDP rank: 32 x 128; down.bias (64), replicated by TP: 32 per FSDP
    # rank. The head (10, 64) and its bias, FSDP only: 5 rows and 5 biases.
    block = 64 * 64 + 64 + 32 * 128 + 32
    expected = 2 * block + 5 * 64 + 5
    assert report.parallel is not None and report.parallel.local_params == expected
    assert report.memory.parameters == 4 * expected and report.memory.gradients == 4 * expected


def test_plain_data_parallel_holds_everything_on_every_rank() -> None:
    # ZeRO's baseline row: (2 + 2 + K) x psi on every rank, no sharding. Here float32
    # parameters and gradients and AdamW's two moments: 16 bytes per parameter (+ a 4-byte
    # step per tensor); gradients all-reduced across the 4 replicas (float32, the whole model).
    report = tt.analyze(meta_stack(), (4, 64), training=True, optimizer="adamw", parallel=tt.Parallel(dp=4))
    model = Stack()
    psi = sum(p.numel() for p in model.parameters())
    memory = report.memory
    assert report.parallel is not None and report.parallel.local_params == psi
    assert memory.parameters + memory.gradients + (memory.optimizer_state or 0) == 16 * psi + 4 * len(list(model.parameters()))
    reduced = next(c for c in report.parallel.communication if c.kind == "all_reduce")
    assert reduced.bytes == 4 * psi


def test_blocks_that_name_no_module_class_are_refused() -> None:
    with pytest.raises(tt.InputError, match=r"blocks=\['Layer'\] names no module class of Stack"):
        tt.analyze(meta_stack(), (4, 64), parallel=tt.Parallel(fsdp=2, blocks=["Layer"]))


# -- found by a review that tried to break the simulation (each failed before its fix) ---------


class Layer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(1024, 1024, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)


class Chain(nn.Module):
    """n blocks of one bias-free Linear(1024, 1024): W = 4 MiB of fp32 weight each."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*[Layer() for _ in range(n)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)


def test_fsdp_frees_each_blocks_gathered_parameters_when_it_reshards() -> None:
    # 8 blocks over 2 ranks, inference. Resharding: 4 W of shards, and at any moment one
    # block's gathered weight (1 W) and its all-gather's buffers: under 8 W. Kept: the gathered
    # weights pile up, 8 W of them on top of the shards.
    w = 1024 * 1024 * 4
    with torch.device("meta"):
        model = Chain(8)
    freed = tt.analyze(model, (1, 1024), parallel=tt.Parallel(fsdp=2, reshard_after_forward=True, blocks=["Layer"]))
    kept = tt.analyze(model, (1, 1024), parallel=tt.Parallel(fsdp=2, reshard_after_forward=False, blocks=["Layer"]))
    assert freed.memory.parameters == 4 * w == kept.memory.parameters
    assert freed.memory.peak < 8 * w  # was 14 W: no block was ever freed
    assert kept.memory.peak >= 4 * w + 8 * w


def test_tensor_parallel_training_with_an_optimizer_on_the_vocabulary_split() -> None:
    with torch.device("meta"):
        model = transformers.LlamaForCausalLM(small_llama(1))
    report = tt.analyze(model, (1, 16), dtypes=[torch.long], training=True, optimizer="sgd-momentum", parallel=tt.Parallel(tp=2))
    # every gradient is this rank's shard, like its parameter; SGD's momentum likewise
    assert report.memory.gradients == report.memory.parameters
    assert report.memory.optimizer_state == report.memory.parameters


def test_the_users_excepthook_survives_a_simulated_cluster() -> None:
    import sys

    hook = sys.excepthook
    tt.analyze(meta_stack(), (4, 64), parallel=tt.Parallel(fsdp=2))
    assert sys.excepthook is hook  # init_process_group installs a rank-prefixing hook for good


def test_a_vocabulary_tp_does_not_divide_is_refused() -> None:
    config = small_llama(1)
    config.vocab_size = 257
    with torch.device("meta"):
        model = transformers.LlamaForCausalLM(config)
    with pytest.raises(tt.InputError, match=r"num_embeddings \(257\) divisible by 2"):
        tt.analyze(model, (1, 8), dtypes=[torch.long], parallel=tt.Parallel(tp=2))


def test_tied_weights_a_tp_plan_would_untie_are_refused() -> None:
    config = small_llama(1)
    config.tie_word_embeddings = True
    with torch.device("meta"):
        model = transformers.LlamaForCausalLM(config)
    with pytest.raises(tt.InputError, match=r"untie model\.embed_tokens\.weight and lm_head\.weight"):
        tt.analyze(model, (1, 8), dtypes=[torch.long], parallel=tt.Parallel(tp=2))


def test_a_model_sharded_in_a_closed_cluster_is_refused() -> None:
    with tt.simulated_cluster(2) as cluster:
        model = cluster.materialize(meta_stack())
        fully_shard(model, mesh=cluster.mesh())
    with pytest.raises(tt.InputError, match=r"no process group is open"):
        tt.analyze(model, (4, 64))


@pytest.mark.parametrize(
    "make,pattern",
    [
        (lambda: tt.Parallel(fsdp=2, rank=True), r"rank=True"),
        (lambda: tt.Parallel(fsdp=2, reshard_after_forward="no"), r"reshard_after_forward='no'"),  # type: ignore[arg-type]
        (lambda: tt.Parallel(tp=2, tp_plan=["up"]), r"tp_plan=.* got list"),  # type: ignore[arg-type]
    ],
)
def test_more_bad_settings_are_input_errors(make: Any, pattern: str) -> None:
    with pytest.raises(tt.InputError, match=pattern):
        make()


def test_a_tp_plan_naming_a_module_tp_cannot_split_is_refused() -> None:
    with pytest.raises(tt.InputError, match=r"splits 1 \(ReLU\) colwise"):
        tt.analyze(nn.Sequential(nn.Linear(4, 4), nn.ReLU()), (2, 4), parallel=tt.Parallel(tp=2, tp_plan={"1": "colwise"}))


def test_mixed_precision_on_one_rank_is_applied() -> None:
    report = tt.analyze(meta_stack(), (4, 64), parallel=tt.Parallel(mixed_precision="bf16"))
    assert report.parallel is not None and report.parallel.mixed_precision == "bf16"
    assert report.layer("blocks.0.up").inputs[0][0].dtype == "bfloat16"  # computed in bf16
