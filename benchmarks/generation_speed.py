"""Generation analysis at LLM scale: how long `tt.analyze_generation` takes, beside one plain
analysis of the same prompt, and what it reports.

    .venv/bin/python benchmarks/generation_speed.py [--only NAME]

Each case runs in a fresh Python process on a Llama-2-shaped config built on the meta
device in fp16 (no weights anywhere). "x prompt" is the generation's time over one plain
`tt.analyze` of the prompt in the same process, run first (so it pays the first-call costs).
The last case is one rank of Llama-2-70B under tensor parallel x2 on A100s, the setting of
Cursor's "Inference characteristics of Llama-2" post, whose rule reads 2 bytes per parameter
plus 320 KiB per cached token for every generated token."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from typing import Any

from llama_configs import LLAMA

CASES: dict[str, dict[str, Any]] = {
    # name: model, prompt, new tokens, chip (None: no estimate), tensor-parallel degree
    "7b 512+512": dict(model="llama-2-7b", prompt=512, new=512, chip=None, tp=1),
    "7b 512+512 a100": dict(model="llama-2-7b", prompt=512, new=512, chip="a100-sxm-80gb", tp=1),
    "7b 512+128 l4": dict(model="llama-2-7b", prompt=512, new=128, chip="l4", tp=1),
    "70b tp=2 512+128 a100": dict(model="llama-2-70b", prompt=512, new=128, chip="a100-sxm-80gb", tp=2),
}


def _child(name: str) -> None:
    import torch
    import transformers

    import torchtally as tt

    case = CASES[name]
    with torch.device("meta"):
        model = transformers.LlamaForCausalLM(transformers.LlamaConfig(**LLAMA[case["model"]])).half()
    parallel = tt.Parallel(tp=case["tp"]) if case["tp"] > 1 else None
    start = time.perf_counter()
    tt.analyze(model, (1, case["prompt"]), dtypes=[torch.long], parallel=parallel)
    plain = time.perf_counter() - start
    start = time.perf_counter()
    report = tt.analyze_generation(model, case["prompt"], case["new"], hardware=case["chip"], parallel=parallel)
    seconds = time.perf_counter() - start
    last = report.decode_steps[-1]
    print(json.dumps({
        "seconds": seconds, "plain": plain, "steps_run": len(report.sampled_steps),
        "cache_per_token": report.kv_cache_bytes_per_token, "read_last": last.memory_read,
        "ttft": report.time_to_first_token, "per_token": report.decode_step_time, "max_batch": report.max_batch_size,
        "peak": report.peak_memory,
    }))  # fmt: skip


def _run(name: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, __file__, "--child", name], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{name} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1e3:.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="run one case")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        _child(options.child)
        return
    header = f"{'case':<24}{'time':>8}{'x prompt':>10}{'steps run':>11}{'KV B/token':>12}{'GB read/step':>14}{'TTFT':>10}{'per token':>11}{'max batch':>11}"
    print(header)
    print("-" * len(header))
    for name in [options.only] if options.only else CASES:
        r = _run(name)
        print(
            f"{name:<24}{r['seconds']:>7.1f}s{r['seconds'] / r['plain']:>10.1f}{r['steps_run']:>11}"
            f"{r['cache_per_token']:>12,}{r['read_last'] / 1e9:>14.2f}{_ms(r['ttft']):>10}{_ms(r['per_token']):>11}"
            f"{r['max_batch'] if r['max_batch'] is not None else '-':>11}"
        )


if __name__ == "__main__":
    main()
