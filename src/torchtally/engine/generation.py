"""Running a language model's generation on fake tensors: the prompt pass (prefill), then
decode steps of one token per sequence against the cache the model's own code keeps.

Every run is an ordinary analysis (`run.analyze`) of a fake copy of the model, whose output
is kept (`run.OUTPUT_SINK`) so that the cache one run leaves feeds the next. A step far from
any cache we hold is reached by a "fill": the cache is extended by a chunk of tokens in one
forward (the model's own chunked-prefill path), which is not counted."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch._subclasses.fake_tensor import FakeTensorMode

from ..errors import InputError, TorchtallyError
from ..report.model import ModelReport
from . import run as engine
from .inputs import tensors_within
from .memory import storage_sizes
from .parallel import fake_copy, fake_mode_of

CACHE_KINDS = ("dynamic", "static")
# The keyword a forward takes its cache by: transformers 5.2x names it `cache`; earlier
# versions, and most other code, `past_key_values`.
_CACHE_ARGUMENTS = ("cache", "past_key_values")


@dataclass(frozen=True)
class RunResult:
    """One counted run: its report and the cache before and after it."""

    report: ModelReport
    cache_bytes_before: int
    cache_bytes_after: int
    # Bytes of the input cache's storages the run replaced (a DynamicCache concatenates into
    # new tensors): counted in the report's inputs for the whole run, though generate()
    # frees each as the cache drops it.
    released_bytes: int
    # While one layer's keys are concatenated, its old and new tensors are both alive: the
    # largest storage the run put into the cache (0 when it replaced nothing).
    transient_bytes: int

    @property
    def peak(self) -> int:
        """The run's peak with the replaced cache freed as the cache drops it: exact at the
        forward's end (the whole new cache alive), within one layer's working set before."""
        return self.report.memory.peak - self.released_bytes + self.transient_bytes


def _cache_tensors(cache: Any) -> list[torch.Tensor]:
    """The tensors a cache holds its keys and values in (and a quantized cache its scales):
    every tensor inside it but the 0-dimensional bookkeeping (lengths, positions)."""
    return [tensor for tensor in tensors_within(cache) if tensor.dim() > 0]


def _storages(cache: Any) -> dict[int, int]:
    """The cache's tensors' storages: key -> bytes."""
    return storage_sizes(_cache_tensors(cache))


def cache_bytes(cache: Any) -> int:
    """The bytes a cache holds: its tensors' storages, each once (the tensors that exist, not a formula)."""
    return sum(_storages(cache).values()) if cache is not None else 0


def _parameters_of(forward: Any) -> tuple[dict[str, inspect.Parameter], bool]:
    try:
        parameters = dict(inspect.signature(forward).parameters)
    except (TypeError, ValueError):
        return {}, True
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    return parameters, takes_any


def _cache_from_output(output: Any, given: Any) -> Any:
    """The cache a forward returned: ``output.cache`` / ``output.past_key_values`` (Hugging
    Face), the same keys of a dict, or the one non-tensor item of a tuple that holds tensors;
    else the cache it was given (updated in place)."""
    for name in _CACHE_ARGUMENTS:
        if isinstance(output, Mapping) and output.get(name) is not None:
            return output[name]
        found = getattr(output, name, None)
        if found is not None and not callable(found):
            return found
    if isinstance(output, (tuple, list)):
        for item in output:
            if not isinstance(item, torch.Tensor) and item is not None and tensors_within(item):
                return item
    return given


class GenerationRunner:
    """Prefill and decode runs of a fake copy of ``model``, with the caches kept per batch size."""

    def __init__(
        self,
        model: nn.Module,
        *,
        prompt_tokens: int,
        new_tokens: int,
        cache: Any,
        forward_kwargs: Mapping[str, Any],
    ):
        self.model = model if fake_mode_of(model) is not None else fake_copy(model, FakeTensorMode(allow_non_fake_inputs=True))
        self.prompt_tokens = prompt_tokens
        self.new_tokens = new_tokens
        self.cache = cache
        self.forward_kwargs = dict(forward_kwargs)
        self.cache_argument, self._fixed = self._arguments()
        # Per batch size: (tokens in the cache, the cache), the runs' caches we may start from.
        self._caches: dict[int, list[tuple[int, Any]]] = {}

    def _arguments(self) -> tuple[str, dict[str, Any]]:
        config = getattr(self.model, "config", None)
        if getattr(config, "is_encoder_decoder", False):
            raise InputError(
                f"{type(self.model).__name__} is an encoder-decoder model; generation analysis runs decoder-only "
                "language models (its decode steps would need the encoder's outputs and decoder inputs): analyse its "
                "passes with tt.analyze"
            )
        # A torch.compile'd model's forward takes (*args, **kwargs): the signature is its original's.
        parameters, takes_any = _parameters_of(getattr(self.model, "_orig_mod", self.model).forward)
        named = [name for name in _CACHE_ARGUMENTS if name in parameters]
        if not named and not takes_any:
            raise InputError(
                f"{type(self.model).__name__}.forward takes no cache (no `cache` or `past_key_values` argument), so "
                "a decode step cannot reuse the prompt's keys and values: generation analysis needs a model that "
                "keeps a KV cache (a Hugging Face *ForCausalLM, or a forward taking past_key_values=)"
            )
        fixed: dict[str, Any] = {}
        if "use_cache" in parameters:
            fixed["use_cache"] = True
        if "logits_to_keep" in parameters:
            fixed["logits_to_keep"] = 1  # as generate() does: the prompt's last token's logits only
        clashes = sorted(set(self.forward_kwargs) & set(_CACHE_ARGUMENTS))
        if clashes:
            raise InputError(f"pass the starting cache as cache=, not as the forward argument {clashes[0]}=")
        fixed.update(self.forward_kwargs)
        return (named[0] if named else "past_key_values"), fixed

    def _first_cache(self) -> Any:
        if self.cache is None:
            return None
        if isinstance(self.cache, str):
            return self._named_cache(self.cache)
        return self.cache

    def _named_cache(self, kind: str) -> Any:
        config = getattr(self.model, "config", None)
        if config is None:
            raise InputError(f"cache={kind!r} builds a Hugging Face cache from the model's config; {type(self.model).__name__} has none: pass a cache object")
        import transformers

        if kind == "dynamic":
            return transformers.DynamicCache(config=config)
        return transformers.StaticCache(config=config, max_cache_len=self.prompt_tokens + self.new_tokens)

    def _run(self, batch: int, tokens: int, cache: Any) -> tuple[ModelReport, Any]:
        """One analysed forward of ``tokens`` new tokens per sequence from ``cache``: its report and the cache after."""
        ids = torch.zeros(batch, tokens, dtype=torch.long)
        kwargs = dict(self._fixed)
        if cache is not None:
            kwargs[self.cache_argument] = cache
        sink: list[Any] = []
        token = engine.OUTPUT_SINK.set(sink)
        try:
            report = engine.analyze(self.model, input_data=(ids,), run="fake", forward_kwargs=kwargs)
        except TorchtallyError as error:
            if type(error) is not TorchtallyError:  # ForwardError, InputError: said as they are
                raise
            # The engine's advice (run='real') is not open to a generation: every run is fake.
            reason = str(error).split("; use run=")[0]
            raise TorchtallyError(f"generation analysis runs only on fake tensors, and {reason}") from error.__cause__
        finally:
            engine.OUTPUT_SINK.reset(token)
        after = _cache_from_output(sink[-1] if sink else None, None)
        if after is None:
            raise InputError(
                f"{type(self.model).__name__}.forward returned no cache (looked for `cache` / `past_key_values` in "
                "its output, and a cache object in a returned tuple): generation analysis needs the cache a step leaves "
                "for the next (a model that keeps its state inside its modules, or returns it under another name, "
                "is not supported)"
            )
        return report, after

    def _counted(self, batch: int, position: int, tokens: int, cache: Any) -> RunResult:
        before = _storages(cache) if cache is not None else {}
        report, after = self._run(batch, tokens, cache)
        kept = _storages(after)
        released = sum(size for key, size in before.items() if key not in kept)
        added = [size for key, size in kept.items() if key not in before]
        self._caches.setdefault(batch, []).append((position + tokens, after))
        return RunResult(
            report,
            cache_bytes_before=sum(before.values()),
            cache_bytes_after=sum(kept.values()),
            released_bytes=released,
            transient_bytes=max(added, default=0) if released else 0,
        )

    def held_cache(self, batch: int) -> Any:
        """The cache the prompt pass at ``batch`` sequences left (None before it ran)."""
        held = self._caches.get(batch)
        return held[0][1] if held else None

    def latest_cache(self, batch: int) -> Any:
        """The cache of the most tokens any run at ``batch`` sequences left."""
        held = self._caches.get(batch)
        return max(held, key=lambda entry: entry[0])[1] if held else None

    def prefill(self, batch: int) -> RunResult:
        """The prompt pass at ``batch`` sequences (its cache is kept for the decode steps)."""
        self._caches[batch] = []
        return self._counted(batch, 0, self.prompt_tokens, self._first_cache())

    def decode_step(self, batch: int, index: int) -> RunResult:
        """Decode step ``index``: one token per sequence against a cache of prompt + index tokens."""
        held = self._caches.get(batch)
        if not held:
            self.prefill(batch)
            held = self._caches[batch]
        position = self.prompt_tokens + index
        start, cache = max((entry for entry in held if entry[0] <= position), key=lambda entry: entry[0])
        if start < position:  # extend the cache to the step's position: one chunked forward, not counted
            _, cache = self._run(batch, position - start, cache)
            held.append((position, cache))
        return self._counted(batch, position, 1, cache)
