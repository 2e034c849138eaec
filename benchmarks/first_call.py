"""The first analysis in a fresh process beside the model's first real forward.

    .venv/bin/python benchmarks/first_call.py [--repeats N] [--all] [--models a,b,...]

A script, a notebook cell and every CLI run are first calls, so this is the figure users
feel. Each model runs in fresh Python processes (N of them; medians): build the model, then
one ``tt.analyze`` (the first), then one real forward (eval, no_grad; the first), then
warm forwards and analyses interleaved (their medians give the warm ratio). Analysing
first is the conservative order: the forward then finds Python's imports done. Each model
is run twice over: with the persistent replay cache off (``TORCHTALLY_CACHE=off``, a truly
first call) and with a cache folder one earlier process filled (a user's second run).
Default: a spread of torchvision classifiers (1x3x224x224) and two transformers;
``--all``: every torchvision classifier."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

DEFAULT = [
    "resnet18", "resnet50", "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large", "efficientnet_b0",
    "densenet121", "shufflenet_v2_x1_0", "squeezenet1_1", "mnasnet0_5", "regnet_y_400mf", "convnext_tiny",
    "googlenet", "vit_b_16", "swin_t", "hf:gpt2 (512 tokens)", "hf:bert (128 tokens)",
]


def build(name: str) -> tuple[Any, Any, dict[str, Any]]:
    """The model (random weights, no download), an example input, analyze()'s arguments."""
    import torch

    if name.startswith("hf:"):
        import transformers

        if name.startswith("hf:gpt2"):
            model = transformers.GPT2LMHeadModel(transformers.GPT2Config())
            tokens = 512
        else:
            model = transformers.BertModel(transformers.BertConfig())
            tokens = 128
        example = torch.zeros(1, tokens, dtype=torch.long)
        return model, example, {"input_size": (1, tokens), "dtypes": [torch.long]}
    import torchvision

    size = 299 if name == "inception_v3" else 224
    model = torchvision.models.get_model(name)
    return model, torch.randn(1, 3, size, size), {"input_size": (1, 3, size, size)}


def child(name: str, warm_repeats: int, threads: int) -> None:
    """One fresh process: prints the timings as one JSON line."""
    import torch

    import torchtally as tt

    if threads:
        torch.set_num_threads(threads)

    model, example, arguments = build(name)
    model.eval()

    def forward() -> float:
        start = time.perf_counter()
        with torch.no_grad():
            model(example)
        return time.perf_counter() - start

    def analysis() -> float:
        start = time.perf_counter()
        tt.analyze(model, **arguments)
        return time.perf_counter() - start

    first_analysis = analysis()
    first_forward = forward()
    forwards, analyses = [], []
    for _ in range(warm_repeats):
        forwards.append(forward())
        analyses.append(analysis())
    print(json.dumps({
        "first_analysis": first_analysis, "first_forward": first_forward,
        "forward": statistics.median(forwards) if forwards else None,
        "analysis": statistics.median(analyses) if analyses else None,
    }))


def fresh(name: str, cache: str, warm_repeats: int, threads: int) -> dict[str, Any]:
    env = {**os.environ, "TORCHTALLY_CACHE": cache}
    done = subprocess.run(
        [sys.executable, __file__, "--child", name, "--warm", str(warm_repeats), "--threads", str(threads)],
        env=env, capture_output=True, text=True, check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="fresh processes per model and cache setting")
    parser.add_argument("--warm", type=int, default=5, help="warm forwards and analyses in each process")
    parser.add_argument("--all", action="store_true", help="every torchvision classifier")
    parser.add_argument("--models", default="", help="comma-separated names (torchvision, hf:gpt2, hf:bert)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads for the forward (default: torch's own)")
    parser.add_argument("--child", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.warm, args.threads)
        return
    import torch

    if args.models:
        names = args.models.split(",")
    elif args.all:
        import torchvision

        names = sorted(torchvision.models.list_models(module=torchvision.models))
    else:
        names = DEFAULT
    threads = args.threads or torch.get_num_threads()
    print(f"torch {torch.__version__}, {threads} threads; fresh processes per model: "
          f"{args.repeats} per cache setting (medians); times in ms")
    header = (f"{'model':22s} {'1st forward':>11s} {'1st analyze':>11s} {'ratio':>6s} {'cached 1st':>11s} "
              f"{'ratio':>6s} {'forward':>8s} {'analyze':>8s} {'ratio':>6s}")
    print(header)
    print("-" * len(header))
    for name in names:
        with tempfile.TemporaryDirectory(prefix="torchtally-bench-cache-") as folder:
            try:
                cold = [fresh(name, "off", args.warm, args.threads) for _ in range(args.repeats)]
                fresh(name, folder, 0, args.threads)  # fills the cache folder
                cached = [fresh(name, folder, 0, args.threads) for _ in range(args.repeats)]
            except subprocess.CalledProcessError as failure:
                print(f"{name:22s} failed: {failure.stderr.strip().splitlines()[-1:]}")
                continue
        first_forward = statistics.median([r["first_forward"] for r in cold + cached]) * 1000
        first = statistics.median([r["first_analysis"] for r in cold]) * 1000
        first_cached = statistics.median([r["first_analysis"] for r in cached]) * 1000
        forward = statistics.median([r["forward"] for r in cold]) * 1000
        analysis = statistics.median([r["analysis"] for r in cold]) * 1000
        print(f"{name:22s} {first_forward:11.0f} {first:11.0f} {first / first_forward:6.2f} {first_cached:11.0f} "
              f"{first_cached / first_forward:6.2f} {forward:8.1f} {analysis:8.1f} {analysis / forward:6.2f}", flush=True)


if __name__ == "__main__":
    main()
