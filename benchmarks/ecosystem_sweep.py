"""Coverage of the real ecosystem: one model per timm family and Hugging Face model types,
each built and analysed as the command line does it (``torchtally timm:NAME`` /
``torchtally hf:TYPE``, on the meta device, no extra flags), each in a bounded subprocess.

    .venv/bin/python benchmarks/ecosystem_sweep.py [--timm N] [--hf N] [--timeout S] [--jobs J] [--only SPECS]

N picks a spread sample (every k-th of the sorted list; 0 skips, -1 takes all). Each model
runs in a forked child of a parent that imported torch, timm and transformers once, killed
after S seconds. A model that was analysed is checked:

- parameters against the model's own count of unique parameters
  (``sum(p.numel() for p in model.parameters())``, which yields a tied tensor once);
- MACs per operator against ``torch.utils.flop_counter.FlopCounterMode`` (FLOPs / 2) on a
  meta-device forward with the same input shapes, for the operators both count (PyTorch's
  counter runs the meta kernels, so attention it sees as unfused math is left out);
- that no fake tensor is left anywhere in the model afterwards.

Outcomes: ``analysed`` (every check held), ``count differs`` (the checks found a
difference, named), ``needs input`` (the one-line error names what to pass), ``no
forward`` (the class is used through other methods: encode, decode), ``not buildable`` (the
type has no model class or its default config cannot build), ``failed``
(analysis error), ``crashed`` (an unexpected exception: a bug), ``timeout``. The table
counts outcomes and their causes."""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import datetime
import multiprocessing as mp
import os
import re
import sys
import time
import traceback
import warnings
from typing import Any

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

from torchtally.analysis import analyze  # noqa: E402
from torchtally.cli.errors import CLIError  # noqa: E402
from torchtally.cli.huggingface import model_types  # noqa: E402
from torchtally.cli.inputs import analyze_arguments, resolve  # noqa: E402
from torchtally.cli.fallback import SEED, analyse_with_fallback  # noqa: E402
from torchtally.cli.models import BuiltModel, ModelOptions  # noqa: E402
from torchtally.engine.inputs import InputPlan, model_float_dtype  # noqa: E402
from torchtally.errors import ForwardError, InputError, TorchtallyError  # noqa: E402
from torchtally.report.model import ModelReport  # noqa: E402

# Fused attention: PyTorch's counter sees its meta decomposition (or nothing), not the kernel.
_NOT_COMPARED = re.compile(r"attention|_flash|_efficient|_cudnn")
# Recurrent kernels (CPU, cuDNN, MIOpen, fused cells): their products are the per-step mm / addmm.
_RNN_KERNELS = re.compile(r"rnn|lstm|gru")
_PREFERRED = ("tiny", "nano", "pico", "small", "mobile", "_b0", "18", "_s")


def timm_families() -> list[str]:
    """One model per timm module (family): the smallest-sounding name, else the first."""
    import timm

    chosen = []
    for family in sorted(timm.list_modules()):
        names = sorted(timm.list_models(module=family))
        if not names:
            continue
        chosen.append(next((n for key in _PREFERRED for n in names if key in n), names[0]))
    return chosen


def spread(items: list[str], count: int) -> list[str]:
    if count < 0 or count >= len(items):
        return items
    if count == 0:
        return []
    step = len(items) / count
    return [items[int(i * step)] for i in range(count)]


def _meta_inputs(arguments: dict[str, Any], values_on_meta: bool) -> tuple[list[Any], dict[str, Any]]:
    """Meta tensors of the input sizes; inputs given by value (token ids, a grid) on the meta
    device too, or as they are (a forward that reads values needs them real)."""
    def given(value: Any) -> Any:
        return value.to("meta") if values_on_meta and isinstance(value, torch.Tensor) else value

    kwargs = {name: given(value) for name, value in arguments.get("forward_kwargs", {}).items()}
    data = arguments.get("input_data")
    if isinstance(data, dict):
        return [], {**{name: given(value) for name, value in data.items()}, **kwargs}
    if data is not None:
        return [given(value) for value in data], kwargs
    sizes, dtypes = arguments["input_size"], arguments["dtypes"]
    if isinstance(sizes, dict):
        return [], {**{name: _meta_tensor(shape, dtypes[name]) for name, shape in sizes.items()}, **kwargs}
    return [_meta_tensor(shape, dtype) for shape, dtype in zip(sizes, dtypes)], kwargs


def _meta_tensor(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    return torch.zeros(shape, dtype=dtype, device="meta")


def _independent_macs(model: torch.nn.Module, arguments: dict[str, Any]) -> dict[str, int] | None:
    """MACs per aten operator by FlopCounterMode on a meta forward; None where it cannot run."""
    from torch.utils.flop_counter import FlopCounterMode

    for values_on_meta in (True, False):
        args, kwargs = _meta_inputs(arguments, values_on_meta)
        try:
            with torch.no_grad(), FlopCounterMode(display=False) as counter:
                model.eval()
                model(*args, **kwargs)
            break
        except Exception:  # noqa: BLE001 - the meta run is a reference only
            continue
    else:
        return None
    return _per_operator(counter)


def _per_operator(counter: Any) -> dict[str, int]:
    return {f"aten.{op.__name__ if hasattr(op, '__name__') else op}": int(flops) // 2
            for op, flops in counter.get_flop_counts().get("Global", {}).items()}


def _fake_left(model: torch.nn.Module) -> bool:
    from torch._subclasses.fake_tensor import FakeTensor

    seen: set[int] = set()

    def walk(value: Any, depth: int) -> bool:
        if isinstance(value, FakeTensor):
            return True
        if depth > 4 or id(value) in seen:
            return False
        seen.add(id(value))
        if isinstance(value, dict):
            return any(walk(v, depth + 1) for v in value.values())
        if isinstance(value, (list, tuple, set)):
            return any(walk(v, depth + 1) for v in value)
        return False

    return any(walk(vars(module), 0) for module in model.modules())


def check_one(spec: str) -> tuple[str, str]:
    """(outcome, cause) of analysing ``spec`` as the command line would (a model whose forward
    reads computed values built again on the CPU, as the command line does: cli/fallback.py)."""
    warnings.simplefilter("ignore")
    seen: dict[str, Any] = {}

    def analyse(built: BuiltModel, run: str | None) -> ModelReport:
        seen["model"] = built.module
        shapes = resolve(None, built.inputs, None, None, spec, built.hint)
        seen["arguments"] = arguments = analyze_arguments(shapes, built.module)
        return analyze(built.module, **arguments, run=run or "auto")

    try:
        report = analyse_with_fallback(spec, ModelOptions(), analyse, lambda _: None, allowed=True)
    except CLIError as error:
        if "model" in seen:  # built, but no usual input is known
            return "needs input", _cause(str(error))
        return "no forward" if "has no forward()" in str(error) else "not buildable", _cause(str(error))
    except (ForwardError, InputError) as error:
        kind = "needs input" if _about_inputs(str(error)) else "failed"
        return kind, _cause(str(error))
    except TorchtallyError as error:
        return "failed", _cause(str(error))
    except Exception as error:  # noqa: BLE001
        return "crashed", _cause(f"{type(error).__name__}: {error}")
    model, arguments = seen["model"], seen["arguments"]
    differences = []
    own = sum(p.numel() for p in model.parameters())
    if report.total_params != own:
        differences.append(f"params {report.total_params} != {own}")
    if _fake_left(model):
        differences.append("a fake tensor left in the model")
    real = report.execution == "real"
    reference = _independent_real_macs(model, arguments) if real else _independent_macs(model, arguments)
    if reference is not None:
        differences += _compare(report.operators, reference, real)
    if differences:
        return "count differs", "; ".join(differences[:2])
    checked = "checked against FlopCounterMode" if reference is not None else "no independent reference"
    return "analysed", checked + (" (built again on the CPU: a real run)" if real else "")


def _independent_real_macs(model: torch.nn.Module, arguments: dict[str, Any]) -> dict[str, int] | None:
    """As `_independent_macs`, on a real forward with the inputs torchtally's real run made
    (its generator is seeded) and the model's own random draws from the seed the command
    line's real build runs with (cli/fallback.py)."""
    from torch.utils.flop_counter import FlopCounterMode

    plan = InputPlan.from_arguments(
        arguments.get("input_size"), arguments.get("input_data"), arguments.get("dtypes"),
        arguments.get("forward_kwargs", {}), model_float_dtype(model),
    )  # fmt: skip
    args, kwargs = plan.materialize(torch.device("cpu"), None)
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad(), FlopCounterMode(display=False) as counter:
            torch.manual_seed(SEED)  # where the fallback's run started its own draws
            model.eval()
            model(*args, **kwargs)
    except Exception:  # noqa: BLE001 - the reference only
        return None
    return _per_operator(counter)


def _compare(ours: Any, theirs: dict[str, int], real: bool = False) -> list[str]:
    """Per operator; a fused attention kernel (ours, as on the CPU) is compared with the
    batched products PyTorch's counter sees on meta (at most those: a causal kernel does less).
    After a real run (``real``) both saw the same kernels: the CPU's fused attention, which
    PyTorch's counter does not cover, is left out, everything else compared as it is."""
    fused = 0 if real else sum(stats.macs for op, stats in ours.items() if _NOT_COMPARED.search(op))
    products = ("aten.bmm", "aten.baddbmm")
    found = []
    # A linear layer runs as addmm or as mm (+ add) depending on the input's layout and device:
    # compared as one class. So is a recurrent layer: the CPU runs it as one fused kernel per
    # layer (counted as its products, 4 x hidden x (input + hidden) a token for an LSTM), the
    # meta path as the mm / addmm of each step.
    linear = ("aten.mm", "aten.addmm")
    mine_linear = sum(stats.macs for op, stats in ours.items() if op in linear or _RNN_KERNELS.search(op))
    their_linear = sum(macs for op, macs in theirs.items() if op in linear or _RNN_KERNELS.search(op))
    if mine_linear != their_linear:
        found.append(f"mm + addmm + recurrent kernels {mine_linear} != {their_linear}")
    for op, macs in sorted(theirs.items()):
        if _NOT_COMPARED.search(op) or (fused and op in products) or op in linear or _RNN_KERNELS.search(op):
            continue
        stats = ours.get(op)
        if stats is None or stats.macs != macs:
            found.append(f"{op} {stats.macs if stats else 0} != {macs}")
    if fused:
        mine = fused + sum(ours[op].macs for op in products if op in ours)
        reference = sum(theirs.get(op, 0) for op in products)
        if not reference // 2 <= mine <= reference:
            found.append(f"attention and batched products {mine} vs {reference}")
    return found


def _about_inputs(text: str) -> bool:
    return any(word in text for word in ("--input-size", "input_ids", "pixel_values", "called with inputs", "missing"))


def _cause(text: str) -> str:
    """A short cause: the message's first line, with names and numbers generalised."""
    line = text.strip().splitlines()[0] if text.strip() else "?"
    line = re.sub(r"\[[0-9, ]+\]", "[...]", line)
    line = re.sub(r"\b\d+\b", "N", line)
    return line[:150]


def _child(spec: str, queue: Any) -> None:
    try:
        queue.put(check_one(spec))
    except BaseException as error:  # noqa: BLE001
        queue.put(("crashed", _cause(f"{type(error).__name__}: {error} {traceback.format_exc(limit=1)}")))


def run_bounded(spec: str, timeout: float) -> tuple[str, str, float]:
    context = mp.get_context("fork")
    queue = context.Queue()
    started = time.perf_counter()
    process = context.Process(target=_child, args=(spec, queue))
    process.start()
    process.join(timeout)
    if process.is_alive():
        process.kill()
        process.join()
        return "timeout", f"over {timeout:.0f} s", time.perf_counter() - started
    seconds = time.perf_counter() - started
    if queue.empty():
        return "crashed", f"the process died (exit {process.exitcode})", seconds
    outcome, cause = queue.get()
    return outcome, cause, seconds


def _listed(text: str) -> list[str]:
    """``--only``: comma-separated specs, or @FILE (one a line; a sweep's verbose output works)."""
    if text.startswith("@"):
        with open(text[1:], encoding="utf-8") as handle:
            return [line.split()[0] for line in handle if line.strip() and ":" in line.split()[0]]
    return [spec.strip() for spec in text.split(",") if spec.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timm", type=int, default=-1, help="timm families to try (-1 all, 0 none)")
    parser.add_argument("--hf", type=int, default=-1, help="Hugging Face model types to try (-1 all, 0 none)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per model")
    parser.add_argument("--jobs", type=int, default=1, help="models at once")
    parser.add_argument("--verbose", action="store_true", help="one line per model")
    parser.add_argument("--only", metavar="SPECS",
                        help="only these models (timm:NAME / hf:TYPE, comma-separated, or @FILE with one a line)")
    options = parser.parse_args()
    import timm  # noqa: F401 - imported once here, inherited by every forked child
    import transformers  # noqa: F401

    if options.only:
        specs = [(spec.partition(":")[0], spec) for spec in _listed(options.only)]
    else:
        specs = [("timm", f"timm:{n}") for n in spread(timm_families(), options.timm)]
        specs += [("hf", f"hf:{t}") for t in spread(sorted(model_types()), options.hf)]
    results: dict[str, list[tuple[str, str, str]]] = collections.defaultdict(list)
    started = time.perf_counter()
    pending = list(specs)
    # Threads only wait: each model runs in its own forked child process.
    with concurrent.futures.ThreadPoolExecutor(max(options.jobs, 1)) as pool:
        outputs = pool.map(lambda spec: run_bounded(spec, options.timeout), [spec for _, spec in pending])
        for (source, spec), (outcome, cause, seconds) in zip(pending, outputs):  # in order, as they finish
            results[source].append((spec, outcome, cause))
            if options.verbose:
                print(f"{spec:50s} {outcome:14s} {seconds:6.1f}s  {cause}", flush=True)
    print(f"\nEcosystem sweep, {datetime.date.today()}, torch {torch.__version__}, "
          f"{time.perf_counter() - started:.0f} s\n")
    outcomes = ("analysed", "count differs", "needs input", "no forward", "not buildable", "failed", "crashed", "timeout")
    print("| source | tried | " + " | ".join(outcomes) + " |")
    print("|---|---:|" + "---:|" * len(outcomes))
    for source, rows in results.items():
        counts = collections.Counter(outcome for _, outcome, _ in rows)
        cells = [str(counts.get(k, 0)) for k in outcomes]
        print(f"| {source} | {len(rows)} | " + " | ".join(cells) + " |")
    print("\nCauses (outcome: cause — models):")
    for source, rows in results.items():
        grouped: dict[tuple[str, str], list[str]] = collections.defaultdict(list)
        for spec, outcome, cause in rows:
            if outcome != "analysed":
                grouped[(outcome, cause)].append(spec)
        for (outcome, cause), specs_ in sorted(grouped.items(), key=lambda kv: (-len(kv[1]), kv[0])):
            print(f"- {source} {outcome}: {cause} — {len(specs_)}: {', '.join(specs_[:4])}{' ...' if len(specs_) > 4 else ''}")


if __name__ == "__main__":
    main()
