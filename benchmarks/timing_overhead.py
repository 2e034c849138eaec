"""What the per-module timers of ``analyze(..., timing=True)`` cost: the mean timed forward
pass (a timer around every module) as a ratio to the mean plain forward pass, both measured
in the same analysis, interleaved.

    .venv/bin/python benchmarks/timing_overhead.py [--repeats 20]

Models: resnet50 (1x3x224x224) and a transformer (a BERT-base-sized encoder from
torchvision's vit_b_16, 1x3x224x224: 12 layers, 197 tokens, 768 wide)."""

from __future__ import annotations

import argparse

import torch
import torchvision

import torchtally as tt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    options = tt.TimingOptions(warmup=args.warmup, repeats=args.repeats)
    print(f"device {device}, {args.repeats} repeats after {args.warmup} warm-up")
    print(f"{'model':<10} {'modules':>8} {'plain median':>13} {'p90':>9} {'timed mean':>11} {'timed/plain':>12}")
    for name in ("resnet50", "vit_b_16"):
        model = torchvision.models.get_model(name).to(device)
        report = tt.analyze(model, (1, 3, 224, 224), timing=options)
        timing = report.timing
        assert timing is not None
        print(
            f"{name:<10} {len(report.layers):>8} {timing.latency_median * 1e3:>10.2f} ms {timing.latency_p90 * 1e3:>6.2f} ms"
            f" {timing.timed_mean * 1e3:>8.2f} ms {timing.timed_mean / timing.latency_mean:>12.3f}"
        )


if __name__ == "__main__":
    main()
