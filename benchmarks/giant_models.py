"""Analysis of billion-parameter language models built on the meta device: time and memory.

    .venv/bin/python benchmarks/giant_models.py [--repeats N] [--only NAME]

For each model (Llama-2-7B at 1x2048 tokens, a Llama-2-70B-shaped config at 1x4096 tokens,
both built from config objects on the meta device, so no weights exist anywhere): the time
to build the model, the time of ``tt.analyze``, and the time of a bare
``torch.utils.flop_counter.FlopCounterMode`` forward of the same meta model, which is the
floor for any operator-level counter (one Python dispatch per aten operator). Medians of N
repeats, interleaved (build, FlopCounterMode, analyze, build, ...) so machine noise hits
all alike. Each model is measured in a fresh Python process, so its peak RSS
(``ru_maxrss``) is its own: the RSS after importing torch and transformers and building the
model is shown as the baseline the analysis adds to."""

from __future__ import annotations

import argparse
import functools
import json
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import torch

MODELS: dict[str, dict[str, int]] = {
    "llama-2-7b, 1x2048": dict(
        hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
        num_key_value_heads=32, vocab_size=32000, max_position_embeddings=4096, length=2048,
    ),
    "llama-2-70b, 1x4096": dict(
        hidden_size=8192, intermediate_size=28672, num_hidden_layers=80, num_attention_heads=64,
        num_key_value_heads=8, vocab_size=32000, max_position_embeddings=4096, length=4096,
    ),
}


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def measure_one(name: str, repeats: int) -> dict[str, Any]:
    """Runs in the child process: every figure for one model."""
    import transformers
    from torch.utils.flop_counter import FlopCounterMode

    import torchtally as tt

    spec = dict(MODELS[name])
    length = spec.pop("length")
    config = transformers.LlamaConfig(**spec, tie_word_embeddings=False)

    def build() -> torch.nn.Module:
        with torch.device("meta"):
            return transformers.LlamaForCausalLM(config).eval()

    ids = torch.zeros(1, length, dtype=torch.long, device="meta")

    def flop_counter(model: torch.nn.Module) -> int:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(ids)
        return int(counter.get_total_flops())

    def analysis(model: torch.nn.Module) -> Any:
        return tt.analyze(model, (1, length), dtypes=[torch.long])

    model = build()
    baseline = peak_rss_mib()
    first_analysis, report = timed(lambda: analysis(model))  # cold: first dispatch of every operator
    first_counter, counter_flops = timed(lambda: flop_counter(model))
    builds, counters, analyses = [], [], []
    for _ in range(repeats):
        t, model = timed(build)
        builds.append(t)
        counters.append(timed(functools.partial(flop_counter, model))[0])
        analyses.append(timed(functools.partial(analysis, model))[0])
    return {
        "build": statistics.median(builds),
        "counter": statistics.median(counters),
        "analysis": statistics.median(analyses),
        "first_counter": first_counter,
        "first_analysis": first_analysis,
        "baseline_mib": baseline,
        "peak_mib": peak_rss_mib(),
        "params": report.total_params,
        "macs": report.total_macs,
        "counter_macs": counter_flops // 2,
        "execution": report.execution,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only", choices=sorted(MODELS), help="measure one model")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure_one(args.only, args.repeats)))
        return
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.repeats} repeats (medians), "
          "models on the meta device, one fresh process per model")
    header = (
        f"{'model':22s} {'build s':>8s} {'analyze s':>10s} {'FlopCounter s':>14s} {'ratio':>6s}"
        f" {'1st analyze s':>14s} {'base RSS MiB':>13s} {'peak RSS MiB':>13s}"
    )
    print(header)
    print("-" * len(header))
    notes = []
    for name in [args.only] if args.only else list(MODELS):
        child = subprocess.run(
            [sys.executable, __file__, "--child", "--only", name, "--repeats", str(args.repeats)],
            capture_output=True, text=True, check=True,
        )
        r = json.loads(child.stdout.strip().splitlines()[-1])
        print(
            f"{name:22s} {r['build']:8.2f} {r['analysis']:10.2f} {r['counter']:14.2f} {r['analysis'] / r['counter']:6.2f}"
            f" {r['first_analysis']:14.2f} {r['baseline_mib']:13.0f} {r['peak_mib']:13.0f}"
        )
        notes.append(
            f"{name}: {r['params']:,} params, {r['macs']:,} MACs ({r['execution']} run); "
            f"FlopCounterMode: {r['counter_macs']:,} MACs"
        )
    print()
    print("\n".join(notes))
    print("(FlopCounterMode runs the model on the meta device, where scaled_dot_product_attention takes PyTorch's math")
    print(" path: two bmm over all L x L pairs and a tril mask, so its attention is the full product; torchtally runs")
    print(" the meta model as on the CPU, whose fused causal kernel it charges L(L+1)/2 pairs.)")


if __name__ == "__main__":
    main()
