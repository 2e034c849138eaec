"""One rank of a parallel training layout at LLM scale: analysis time and peak RSS, beside the
same model's training analysis on one device, and the per-rank figures.

    .venv/bin/python benchmarks/parallel_scale.py [--only NAME]

Each case runs in a fresh Python process (its peak RSS, ``ru_maxrss``, is its own), on a
Llama-2-shaped config built on the meta device: no weights exist anywhere. The layout is
applied by PyTorch's own ``fully_shard`` / ``parallelize_module`` to a fake copy in a
simulated cluster. The training step is AdamW with bf16 mixed precision (FSDP).
Time ratio: the parallel analysis over the one-device analysis of the same model."""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from typing import Any

from llama_configs import LLAMA

CASES: dict[str, tuple[str, int, dict[str, Any] | None]] = {
    # name: (model, tokens, layout or None for one device)
    "7b one device": ("llama-2-7b", 2048, None),
    "7b fsdp=64": ("llama-2-7b", 2048, dict(fsdp=64, mixed_precision="bf16")),
    "70b one device": ("llama-2-70b", 4096, None),
    "70b fsdp=64 tp=8": ("llama-2-70b", 4096, dict(fsdp=64, tp=8, mixed_precision="bf16")),
}


def _child(name: str) -> None:
    import torch
    import transformers

    import torchtally as tt

    model_name, tokens, layout = CASES[name]
    with torch.device("meta"):
        model = transformers.LlamaForCausalLM(transformers.LlamaConfig(**LLAMA[model_name]))
    start = time.perf_counter()
    parallel = tt.Parallel(**layout) if layout else None
    report = tt.analyze(model, (1, tokens), dtypes=[torch.long], training=True, optimizer="adamw", parallel=parallel)
    seconds = time.perf_counter() - start
    memory = report.memory
    result = {
        "seconds": seconds,
        "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "params": report.total_params,
        "local_params": report.parallel.local_params if report.parallel else report.total_params,
        "states": memory.parameters + (memory.gradients or 0) + (memory.optimizer_state or 0),
        "peak": memory.peak,
        "macs": report.total_macs + report.backward_macs,
        "gathered": sum(c.bytes for c in report.parallel.communication if c.kind == "all_gather") if report.parallel else 0,
        "reduced": sum(c.bytes for c in report.parallel.communication if c.kind != "all_gather") if report.parallel else 0,
    }
    print(json.dumps(result))


def _gib(value: float) -> str:
    return f"{value / 2**30:,.2f} GiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=list(CASES))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        _child(options.child)
        return
    results: dict[str, dict[str, Any]] = {}
    for name in [options.only] if options.only else list(CASES):
        run = subprocess.run([sys.executable, __file__, "--child", name], capture_output=True, text=True, timeout=3600)
        if run.returncode != 0:
            print(f"{name}: failed\n{run.stderr[-2000:]}", file=sys.stderr)
            continue
        results[name] = json.loads(run.stdout.strip().splitlines()[-1])
    header = ("case", "analysis", "x one device", "peak RSS", "params/rank", "states/rank", "peak/rank", "MACs/rank", "gathered", "reduced")
    print(" | ".join(header))
    print(" | ".join("---" for _ in header))
    for name, r in results.items():
        base = results.get(f"{name.split()[0]} one device")
        ratio = f"{r['seconds'] / base['seconds']:.2f}" if base else "--"
        print(" | ".join((
            name, f"{r['seconds']:.1f} s", ratio, _gib(r["rss"]), f"{r['local_params']:,}", _gib(r["states"]),
            _gib(r["peak"]), f"{r['macs']:.3e}", _gib(r["gathered"]), _gib(r["reduced"]),
        )))  # fmt: skip


if __name__ == "__main__":
    main()
