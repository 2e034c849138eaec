"""The public ``analyze_generation``: a language model's prompt pass and decode steps on fake
tensors (the engine), with their times on a chip (the estimate) and the largest batch that
fits it."""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

from torch import nn

from .engine import run as engine
from .engine.generation import CACHE_KINDS, GenerationRunner, RunResult, cache_bytes
from .engine.global_state import process_state_kept
from .engine.parallel import Parallel, simulated_cluster
from .errors import InputError
from .estimate import Hardware, estimate_time
from .estimate.apply import resolve
from .estimate.steps import interpolated, sample_steps
from .report.generation import DecodeStep, GenerationReport
from .report.model import ModelReport

_NO_ROUTING = -1  # a step's active parameters when nothing was routed (kept numeric for the sampling)


def _whole(value: Any, name: str, least: int) -> int:
    try:
        number = operator.index(value)  # numpy integers too
    except TypeError:
        number = None
    if isinstance(value, bool) or number is None or number < least:
        raise InputError(f"{name} must be a whole number of at least {least}; got {value!r}")
    return number


def _check_cache(cache: Any) -> None:
    if isinstance(cache, str) and cache not in CACHE_KINDS:
        raise InputError(f"cache={cache!r}: a cache name is one of {', '.join(map(repr, CACHE_KINDS))}, or pass a cache object")


def analyze_generation(
    model: nn.Module,
    prompt_tokens: int = 512,
    new_tokens: int = 128,
    batch_size: int = 1,
    *,
    hardware: Hardware | str | None = None,
    cache: Any = None,
    parallel: Parallel | None = None,
    every_step: bool = False,
    **forward_kwargs: Any,
) -> GenerationReport:
    """Analyse a language model's generation: the prompt pass (prefill) of ``prompt_tokens``
    tokens, then ``new_tokens`` decode steps of one token per sequence against the cache the
    model's own code keeps, for ``batch_size`` sequences, all on fake tensors.

    Args:
        model: a causal language model whose forward takes a cache (``cache=`` or
            ``past_key_values=``) and returns it: a Hugging Face ``*ForCausalLM``, or your own.
            It is left exactly as it was; the runs use a fake copy.
        hardware: a catalog name (``"h100-sxm"``), ``"local"`` or a ``tt.Hardware``: the
            estimated time of the prefill (time to first token) and of every step, tokens per
            second, and the largest batch whose peak fits the chip's memory.
        cache: ``None`` (the model's own default: a Hugging Face ``DynamicCache``),
            ``"dynamic"``, ``"static"`` (a ``StaticCache`` of prompt + new tokens), or a
            cache object to start from (copied, never written to).
        parallel: one rank of a tensor-parallel layout (``tt.Parallel(tp=8)``): per-rank
            cache, compute, memory and all-reduces.
        every_step: run every decode step instead of sampling them (for a cache whose
            figures are neither straight, convex nor concave in the position, such as one
            that grows in blocks of tokens; see docs/generation.md).
        **forward_kwargs: passed to every forward (``logits_to_keep=0`` to compute the
            prompt's every logit; by default only the last, as ``generate`` does).
    """
    prompt_tokens = _whole(prompt_tokens, "prompt_tokens", 1)
    new_tokens = _whole(new_tokens, "new_tokens", 1)
    batch_size = _whole(batch_size, "batch_size", 1)
    _check_cache(cache)
    _check_forward_kwargs(forward_kwargs)
    if not isinstance(model, nn.Module):
        raise InputError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    _check_lengths(model, cache, prompt_tokens + new_tokens)
    chip = None if hardware is None else resolve(hardware)
    options: dict[str, Any] = dict(prompt_tokens=prompt_tokens, new_tokens=new_tokens, cache=cache, forward_kwargs=forward_kwargs)
    with engine.ANALYSIS_LOCK:
        if parallel is None:
            return _generation(GenerationRunner(model, **options), batch_size, chip, every_step)
        _check_layout(parallel)
        with process_state_kept(), simulated_cluster(parallel.world_size, rank=parallel.rank) as cluster:
            runner = GenerationRunner(cluster.shard(model, parallel), **options)
            return _generation(runner, batch_size, chip, every_step)


# Inputs the generation makes itself, per forward: a fixed value given for every forward would
# be wrong for all but one of them.
_MADE_PER_FORWARD = (
    "input_ids", "inputs_embeds", "attention_mask", "position_ids", "cache_position", "labels", "cache", "past_key_values",
)  # fmt: skip


def _check_forward_kwargs(forward_kwargs: dict[str, Any]) -> None:
    made = sorted(name for name in forward_kwargs if name in _MADE_PER_FORWARD)
    if made:
        raise InputError(
            f"{', '.join(f'{name}=' for name in made)}: analyze_generation makes the token ids, positions and cache of "
            "every forward itself (pass a starting cache as cache=); forward keyword arguments go to every forward unchanged"
        )
    if forward_kwargs.get("use_cache", True) is False:
        raise InputError("use_cache=False turns the cache off, and with it the decode steps generation analysis is about")


def _check_layout(parallel: Any) -> None:
    if not isinstance(parallel, Parallel):
        raise InputError(f"parallel= takes a tt.Parallel(tp=...); got {type(parallel).__name__}")
    if parallel.fsdp > 1 or parallel.dp > 1:
        raise InputError(
            f"analyze_generation takes a tensor-parallel serving layout (tt.Parallel(tp=N)); got fsdp={parallel.fsdp}, "
            f"dp={parallel.dp}: FSDP shards for training, and data-parallel replicas each serve their own batch "
            "(analyse one with batch_size=)"
        )


def _check_lengths(model: nn.Module, cache: Any, tokens: int) -> None:
    """What fake tensors cannot catch (they check no index): learned position embeddings and
    a given cache too short for the generation, and a given cache that already holds tokens."""
    for name, module in model.named_modules():
        leaf = name.rpartition(".")[2].lower()
        if isinstance(module, nn.Embedding) and ("pos" in leaf or leaf == "wpe") and module.num_embeddings < tokens:
            raise InputError(
                f"prompt + new tokens = {tokens}, but the position embedding {name!r} has {module.num_embeddings} positions"
            )
    if cache is None or isinstance(cache, str):
        return
    capacity = _capacity(cache)
    if capacity is not None and capacity < tokens:
        raise InputError(f"prompt + new tokens = {tokens}, but the cache given ({type(cache).__name__}) holds {capacity}")
    held = _held_tokens(cache)
    if held:
        raise InputError(
            f"the cache given already holds {held} tokens; start from an empty one (a prompt that continues a "
            "conversation is that many more prompt_tokens)"
        )


def _held_tokens(cache: Any) -> int:
    measure = getattr(cache, "get_seq_length", None)
    try:
        held = measure() if callable(measure) else 0
    except Exception:  # noqa: BLE001 - an uninitialised cache may refuse: it holds nothing
        return 0
    return int(held) if isinstance(held, int) else 0


def _estimated(report: ModelReport, chip: Hardware | None) -> ModelReport:
    return report if chip is None else estimate_time(report, chip)


def _figures(result: RunResult, chip: Hardware | None) -> list[float | int]:
    """A step's figures, in DecodeStep's order (the sampling checks each is on its line)."""
    report = _estimated(result.report, chip)
    root = report.layers[0]
    active = report.active_params if report.active_params is not None else _NO_ROUTING
    figures: list[float | int] = [
        report.total_macs, report.total_flops, root.memory_read, root.memory_write, result.cache_bytes_after, result.peak, active,
    ]  # fmt: skip
    if report.estimate is not None:
        figures.append(report.estimate.latency)
    return figures


def _steps(runner: GenerationRunner, batch: int, chip: Hardware | None, every_step: bool) -> tuple[DecodeStep, ...]:
    count = runner.new_tokens
    done = sample_steps(lambda index: _figures(runner.decode_step(batch, index), chip), count, run_all_below=count + 1 if every_step else 8)
    steps = []
    for index, (figures, run) in enumerate(interpolated(done, runner.new_tokens)):
        macs, flops, read, written, cache, peak, active = (int(v) for v in figures[:7])
        steps.append(DecodeStep(
            index=index, position=runner.prompt_tokens + index, macs=macs, flops=flops, memory_read=read,
            memory_write=written, kv_cache_bytes=cache, peak_memory=peak,
            estimated_time=float(figures[7]) if len(figures) > 7 else None,
            active_params=None if active == _NO_ROUTING else active, sampled=run,
        ))  # fmt: skip
    return tuple(steps)


def _bytes_per_token(steps: tuple[DecodeStep, ...], batch: int, runner: GenerationRunner) -> int | None:
    """What one more token adds to the cache per sequence: the growth from the first decode
    step to the second (the prefill's cache may hold more than its keys and values: views
    into a fused projection's output). A cache that does not grow (allocated whole
    beforehand, a full sliding window) gives its bytes per slot, layer by layer where its
    layers say their slots; a state cache (no slots) gives None."""
    if len(steps) > 1 and steps[1].kv_cache_bytes > steps[0].kv_cache_bytes:
        return round((steps[1].kv_cache_bytes - steps[0].kv_cache_bytes) / batch)
    cache = runner.latest_cache(batch)
    layers = getattr(cache, "layers", None)
    slotted = [
        (layer, int(layer.max_cache_len)) for layer in (layers if isinstance(layers, (list, tuple)) else ())
        if isinstance(getattr(layer, "max_cache_len", None), int) and layer.max_cache_len > 0
    ]  # fmt: skip
    if slotted:  # Hugging Face: attention layers say their slots; state layers (Mamba) have none
        per_slot = sum(_keys_and_values(layer) / slots for layer, slots in slotted)
        return round(per_slot / batch) if per_slot else None
    capacity = _capacity(cache)
    held = cache_bytes(cache)
    return round(held / (batch * capacity)) if capacity is not None and held else None


def _keys_and_values(layer: Any) -> int:
    """A cache layer's key and value bytes (a hybrid layer also holds a state, which takes no slots)."""
    return cache_bytes([getattr(layer, "keys", None), getattr(layer, "values", None)]) or cache_bytes(layer)


def _capacity(cache: Any) -> int | None:
    """The tokens a preallocated cache holds per sequence (Hugging Face: ``get_max_length()``)."""
    measure = getattr(cache, "get_max_length", None)
    try:
        capacity = measure() if callable(measure) else getattr(cache, "max_cache_len", None)
    except Exception:  # noqa: BLE001 - a dynamic cache may refuse: it has no capacity
        return None
    return capacity if isinstance(capacity, int) and capacity > 0 else None


def _generation(runner: GenerationRunner, batch: int, chip: Hardware | None, every_step: bool) -> GenerationReport:
    prefill = runner.prefill(batch)
    steps = _steps(runner, batch, chip, every_step)
    prefill_report = _estimated(prefill.report, chip)
    memory = prefill_report.memory
    peak = max(prefill.peak, *(step.peak_memory for step in steps))
    largest = None
    if chip is not None and chip.memory_bytes:
        worst = max((step for step in steps if step.sampled), key=lambda step: step.peak_memory)
        known = {batch: peak}
        largest = _largest_batch(lambda b: _peak_at(runner, b, worst.index), chip.memory_bytes, known)
    return GenerationReport(
        model_type=prefill_report.model_type,
        prompt_tokens=runner.prompt_tokens,
        new_tokens=runner.new_tokens,
        batch_size=batch,
        cache_type=type(runner.held_cache(batch)).__name__,
        prefill=prefill_report,
        decode_steps=steps,
        kv_cache_bytes_per_token=_bytes_per_token(steps, batch, runner),
        weight_bytes=memory.parameters + memory.buffers,
        peak_memory=peak,
        prefill_kv_cache_bytes=prefill.cache_bytes_after,
        prefill_peak_memory=prefill.peak,
        hardware=None if chip is None else chip.to_dict(),
        max_batch_size=largest,
    )


def _peak_at(runner: GenerationRunner, batch: int, step: int) -> int:
    """The generation's peak at ``batch`` sequences: its prefill's, or that of the step that
    peaked at the batch analysed."""
    return max(runner.prefill(batch).peak, runner.decode_step(batch, step).peak)


def _largest_batch(peak_at: Callable[[int], int], memory: int, known: dict[int, int]) -> int | None:
    """The largest batch whose peak fits ``memory`` (0: not even one sequence). The peak is
    affine in the batch (weights, then so much per sequence), so two batches give a guess;
    the guess and the next batch are then run, and where the line was off, the answer is
    bracketed (doubling steps) and bisected, so it is always a batch that was run and fits
    next to one that was run and does not. None when the peak does not grow with the batch."""

    def fits(batch: int) -> bool:
        if batch == 0:
            return True
        if batch not in known:
            known[batch] = peak_at(batch)
        return known[batch] <= memory

    base = min(known)
    fits(base + 1)
    slope = known[base + 1] - known[base]
    if slope <= 0:
        return None
    guess = max(base + (memory - known[base]) // slope, 0)
    step = 1
    if fits(guess):  # bracket from below: lo fits, hi does not
        lo = guess
        while fits(lo + step):
            lo, step = lo + step, step * 2
        hi = lo + step
    else:
        hi = guess
        while not fits(max(hi - step, 0)):
            hi, step = hi - step, step * 2
        lo = max(hi - step, 0)
    while hi - lo > 1:
        middle = (lo + hi) // 2
        lo, hi = (middle, hi) if fits(middle) else (lo, middle)
    return lo
