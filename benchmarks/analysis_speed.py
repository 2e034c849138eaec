"""Analysis time on fake tensors as a ratio to one plain forward pass, in the same process.

    .venv/bin/python benchmarks/analysis_speed.py [--repeats N]

For each model: the median of N plain forward passes (eval mode, no_grad, real random
inputs) and the median of N analyses, interleaved so that machine noise hits both alike;
the first analysis of each model (cold caches) is reported apart."""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
import torchvision

import torchtally as tt


def small_llm() -> tuple[torch.nn.Module, tuple[int, ...], list[torch.dtype]]:
    import transformers

    config = transformers.LlamaConfig(
        hidden_size=512, intermediate_size=1376, num_hidden_layers=8, num_attention_heads=8,
        num_key_value_heads=4, vocab_size=32000,
    )
    return transformers.LlamaForCausalLM(config), (1, 128), [torch.long]


def vision(name: str, size: int = 224) -> Callable[[], tuple[torch.nn.Module, tuple[int, ...], list[torch.dtype]]]:
    return lambda: (torchvision.models.get_model(name), (1, 3, size, size), [torch.float32])


MODELS: dict[str, Callable[[], tuple[torch.nn.Module, tuple[int, ...], list[torch.dtype]]]] = {
    "resnet50": vision("resnet50"),
    "vit_b_16": vision("vit_b_16"),
    "llama (512d, 8 layers), 1x128 tokens": small_llm,
}


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure(model: torch.nn.Module, shape: tuple[int, ...], dtypes: list[torch.dtype], repeats: int) -> dict[str, float]:
    model.eval()
    dtype = dtypes[0]
    example = torch.zeros(shape, dtype=dtype) if not dtype.is_floating_point else torch.randn(shape, dtype=dtype)

    def forward() -> None:
        with torch.no_grad():
            model(example)

    def analysis() -> None:
        tt.analyze(model, shape, dtypes=dtypes)

    forward()  # warm-up of the real kernels
    first = timed(analysis)
    forwards, analyses = [], []
    for _ in range(repeats):
        forwards.append(timed(forward))
        analyses.append(timed(analysis))
    return {
        "forward": statistics.median(forwards),
        "analysis": statistics.median(analyses),
        "first": first,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=11)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.repeats} repeats (medians)")
    header = f"{'model':40s} {'forward ms':>11s} {'analysis ms':>12s} {'ratio':>6s} {'first analysis ms':>18s} {'ratio':>6s}"
    print(header)
    print("-" * len(header))
    for name, build in MODELS.items():
        model, shape, dtypes = build()
        r = measure(model, shape, dtypes, args.repeats)
        print(
            f"{name:40s} {r['forward'] * 1e3:11.1f} {r['analysis'] * 1e3:12.1f} {r['analysis'] / r['forward']:6.2f}"
            f" {r['first'] * 1e3:18.1f} {r['first'] / r['forward']:6.2f}"
        )


if __name__ == "__main__":
    main()
