"""Rendering time of every view of one report of a 10,001-module model.

    .venv/bin/python benchmarks/render_speed.py [--blocks 2500] [--repeats 5]

The model is ``blocks`` small residual-free blocks (Sequential of Linear, ReLU, Linear) on
the meta device: 1 + 4 x blocks modules. The analysis is timed once; each view is the
median of ``repeats`` renderings, shown in seconds and as a ratio to ``json.dumps`` of
``to_dict()`` (the cheapest full export, run in the same process as the baseline)."""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

import torchtally as tt
from torchtally.render.rich_view import render_rich
from torchtally.render.table import table_view
from torchtally.report.settings import ViewOptions


def build(blocks: int) -> nn.Module:
    with torch.device("meta"):
        return nn.Sequential(*(nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 8)) for _ in range(blocks)))


def median_seconds(fn: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=2500)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    model = build(args.blocks)
    start = time.perf_counter()
    report = tt.analyze(model, (4, 8))
    analysis = time.perf_counter() - start
    deep = 10  # every module shown
    views: dict[str, Callable[[], Any]] = {
        "json.dumps(to_dict()) (baseline)": lambda: json.dumps(report.to_dict()),
        "table(), tree, every row": lambda: report.table(depth=deep),
        "table(), tree, collapse_repeats": lambda: report.table(depth=deep, rows=["collapse_repeats"]),
        "table(), flat": lambda: report.table(depth=deep, style="flat"),
        "to_markdown()": lambda: report.to_markdown(depth=deep),
        "to_html()": lambda: report.to_html(depth=deep),
        "rich, width 160": lambda: render_rich(table_view(report, ViewOptions(depth=deep)), 160),
        "to_csv()": report.to_csv,
        "to_dataframe()": report.to_dataframe,
        "by_operator() + by_type()": lambda: (str(report.by_operator()), str(report.by_type())),
    }
    timings = {name: median_seconds(fn, args.repeats) for name, fn in views.items()}
    baseline = timings["json.dumps(to_dict()) (baseline)"]
    print(f"{len(report.layers):,} modules; analysis {analysis:.2f} s (once)")
    print(f"{'view':<36} {'seconds':>8} {'x baseline':>11}")
    for name, seconds in timings.items():
        print(f"{name:<36} {seconds:>8.3f} {seconds / baseline:>11.2f}")


if __name__ == "__main__":
    main()
