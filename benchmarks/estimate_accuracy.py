"""How close the roofline estimate comes to a measurement: each model's forward pass is
estimated on the calibrated machine at hand (`tt.calibrate()`) and measured
(``timing=True``: median of plain passes; per-module own times from the timed passes).

    .venv/bin/python benchmarks/estimate_accuracy.py [--repeats 10] [--hardware h100-sxm]

Prints, per model, the estimated latency and the measured median (and fastest) pass and
their ratios, the ratio of the plain roofline (the same calibration without the CPU's
classes: module calls, transcendentals, pooling, depthwise and small convolutions) and the
load average; then, over the
layers that took more than 1% of their model's measured time, the median of
|estimate / measured - 1| of their own times. Targets (issue 14): the whole model within
20% for 8 of 10 models, the per-layer median error under 30%. On a machine shared with
other work the fastest pass is the fairer comparison (calibration takes the fastest runs
too); the median is the target's. With ``--hardware`` the
estimate uses that catalog entry instead (meaningful on that chip only)."""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import time
from collections.abc import Callable

import torch
import torchvision
from torch import nn

import torchtally as tt
from torchtally.estimate.calibrate import measure


def _gpt(layers: int, width: int, heads: int, vocab: int) -> nn.Module:
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(n_layer=layers, n_embd=width, n_head=heads, vocab_size=vocab, n_positions=512)
    return GPT2LMHeadModel(config).eval()


def _llama(layers: int, width: int, heads: int, vocab: int) -> nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        num_hidden_layers=layers, hidden_size=width, intermediate_size=width * 8 // 3 // 64 * 64,
        num_attention_heads=heads, num_key_value_heads=heads, vocab_size=vocab, max_position_embeddings=512,
    )
    return LlamaForCausalLM(config).eval()


def _vit_tiny() -> nn.Module:
    # ViT-Ti/16 (timm's vit_tiny_patch16_224 sizes) from torchvision's VisionTransformer
    return torchvision.models.VisionTransformer(
        image_size=224, patch_size=16, num_layers=12, num_heads=3, hidden_dim=192, mlp_dim=768
    )


def _image(batch: int) -> dict[str, object]:
    return {"input_size": (batch, 3, 224, 224)}


def _tokens(batch: int, length: int) -> dict[str, object]:
    return {"input_size": (batch, length), "dtypes": [torch.long]}


# name, builder, analyze arguments
MODELS: list[tuple[str, Callable[[], nn.Module], dict[str, object]]] = [
    ("resnet18 b1", torchvision.models.resnet18, _image(1)),
    ("resnet18 b8", torchvision.models.resnet18, _image(8)),
    ("resnet50 b1", torchvision.models.resnet50, _image(1)),
    ("mobilenet_v3_small b1", torchvision.models.mobilenet_v3_small, _image(1)),
    ("mobilenet_v3_small b16", torchvision.models.mobilenet_v3_small, _image(16)),
    ("efficientnet_b0 b1", torchvision.models.efficientnet_b0, _image(1)),
    ("vit_tiny b1", _vit_tiny, _image(1)),
    ("vit_tiny b8", _vit_tiny, _image(8)),
    ("gpt2-6L-512 b1x128", lambda: _gpt(6, 512, 8, 16000), _tokens(1, 128)),
    ("gpt2-6L-512 b4x128", lambda: _gpt(6, 512, 8, 16000), _tokens(4, 128)),
    ("llama-4L-512 b1x256", lambda: _llama(4, 512, 8, 16000), _tokens(1, 256)),
    ("llama-4L-512 b4x256", lambda: _llama(4, 512, 8, 16000), _tokens(4, 256)),
]


def _mean(first: tt.Hardware, second: tt.Hardware) -> tt.Hardware:
    """The figures of two calibrations averaged (rates harmonically: the mean of the times)."""

    def rate(a: float, b: float) -> float:
        return 2 / (1 / a + 1 / b)

    return dataclasses.replace(
        first,
        peak_flops={name: rate(first.peak_flops[name], second.peak_flops[name]) for name in first.peak_flops},
        vector_flops={name: rate(first.vector_flops[name], second.vector_flops[name]) for name in first.vector_flops},
        memory_bandwidth=rate(first.memory_bandwidth, second.memory_bandwidth),
        transcendental_flops={
            name: rate(first.transcendental_flops[name], second.transcendental_flops[name])
            for name in first.transcendental_flops
        },
        pooling_flops={name: rate(first.pooling_flops[name], second.pooling_flops[name]) for name in first.pooling_flops},
        conv_efficiency=tuple(
            (size, (a + b) / 2) for (size, a), (_, b) in zip(first.conv_efficiency, second.conv_efficiency)
        ),
        call_overhead=(first.call_overhead + second.call_overhead) / 2,
        view_overhead=(first.view_overhead + second.view_overhead) / 2,
        module_overhead=(first.module_overhead + second.module_overhead) / 2,
        grouped_conv_overhead=(first.grouped_conv_call + second.grouped_conv_call) / 2,
        grouped_conv_efficiency=(first.grouped_conv_efficiency + second.grouped_conv_efficiency) / 2,
    )


def _plain(chip: tt.Hardware) -> tt.Hardware:
    """The same figures without the CPU's classes (module calls, transcendentals, pooling,
    depthwise and small convolutions): the plain roofline, for the column beside it."""
    return dataclasses.replace(
        chip, module_overhead=0.0, transcendental_flops={}, pooling_flops={}, conv_efficiency=(),
        grouped_conv_overhead=None, grouped_conv_efficiency=1.0,
    )


def _layer_errors(report: tt.ModelReport) -> list[float]:
    """|estimate / measured - 1| of the own time of every layer above 1% of the measured pass."""
    assert report.timing is not None
    total = report.timing.timed_mean
    errors = []
    for layer in report.layers:
        measured, estimated = layer.self_time, layer.self_estimated_time
        if measured is not None and estimated is not None and measured > 0.01 * total:
            errors.append(abs(estimated / measured - 1))
    return errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--hardware", help="a catalog entry instead of calibrating this machine")
    parser.add_argument("--threads", type=int, help="torch threads for calibration and runs (default: torch's)")
    parser.add_argument("--only", help="comma-separated model names (default: all)")
    parser.add_argument("--once", action="store_true",
                        help="calibrate once at the start (default: before and after each model, averaged, as a "
                             "shared machine's load changes)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    started = time.perf_counter()
    chip = tt.hardware(args.hardware) if args.hardware else tt.calibrate()
    took = time.perf_counter() - started
    print(f"hardware: {chip.name} ({chip.source}; calibration took {took:.1f} s), torch threads {torch.get_num_threads()}")
    peaks = ", ".join(f"{name} {rate / 1e9:.1f}" for name, rate in chip.peak_flops.items())
    print(f"  matrix GFLOP/s: {peaks}; memory {chip.memory_bandwidth / 1e9:.1f} GB/s; "
          f"call {chip.call_overhead * 1e6:.2f} µs, view {chip.view_overhead * 1e6:.2f} µs, "
          f"module {chip.module_overhead * 1e6:.2f} µs; grouped conv {chip.grouped_conv_call * 1e6:.1f} µs per call "
          f"at {chip.grouped_conv_efficiency:.0%} of the peak")
    if chip.transcendental_flops or chip.pooling_flops or chip.conv_efficiency:
        print(f"  fp32 GFLOP/s: transcendental {(chip.transcendental_rate('fp32') or 0) / 1e9:.2f}, "
              f"pooling {(chip.pooling_rate('fp32') or 0) / 1e9:.2f}; convolution share of the peak by size: "
              + ", ".join(f"{size / 1e6:.0f} MFLOP {fraction:.0%}" for size, fraction in chip.conv_efficiency))
    options = tt.TimingOptions(warmup=args.warmup, repeats=args.repeats)
    header = (
        f"{'model':<24} {'estimated':>10} {'median':>10} {'fastest':>10} {'est/median':>10} {'est/fastest':>11} "
        f"{'bound':>9} {'layers>1%':>9} {'layer median err':>17} {'plain est/median':>16} {'load':>5}"
    )
    print(header)
    print("-" * len(header))
    within, within_fastest, ratios, all_errors = 0, 0, [], []
    chosen = [entry for entry in MODELS if not args.only or entry[0] in args.only.split(",")]
    for name, build, arguments in chosen:
        model = build().eval()
        used = chip
        if args.hardware or args.once:
            report = tt.analyze(model, **arguments, timing=options, hardware=chip)  # type: ignore[arg-type]
        else:  # the machine as it was around this model's run: measured before and after
            before = measure(torch.device("cpu"))
            report = tt.analyze(model, **arguments, timing=options)  # type: ignore[arg-type]
            used = _mean(before, measure(torch.device("cpu")))
            report = tt.estimate_time(report, used)
        assert report.estimate is not None and report.timing is not None
        estimated, measured, fastest = report.estimate.latency, report.timing.latency_median, report.timing.latency_min
        ratio = estimated / measured
        ratios.append(ratio)
        within += abs(ratio - 1) <= 0.2
        within_fastest += abs(estimated / fastest - 1) <= 0.2
        errors = _layer_errors(report)
        all_errors += errors
        median = f"{100 * statistics.median(errors):.0f}%" if errors else "--"
        plain = tt.estimate_time(report, _plain(used)).estimate
        assert plain is not None
        print(f"{name:<24} {estimated * 1e3:>7.2f} ms {measured * 1e3:>7.2f} ms {fastest * 1e3:>7.2f} ms {ratio:>10.2f} "
              f"{estimated / fastest:>11.2f} {report.layers[0].bound or '--':>9} {len(errors):>9} {median:>17} "
              f"{plain.latency / measured:>16.2f} {os.getloadavg()[0]:>5.1f}")  # the machine's 1-minute load average: how shared it was
    print("-" * len(header))
    print(f"whole model within 20% of the median: {within} of {len(chosen)} (target: 8 of 10), "
          f"of the fastest pass: {within_fastest} of {len(chosen)}; "
          f"ratio median {statistics.median(ratios):.2f}, range {min(ratios):.2f}-{max(ratios):.2f}")
    if all_errors:
        print(f"per-layer error (own time, layers above 1% of the pass; {len(all_errors)} layers): "
              f"median {100 * statistics.median(all_errors):.0f}% (target: under 30%)")


if __name__ == "__main__":
    main()
