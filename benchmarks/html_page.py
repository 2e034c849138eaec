"""Size of the HTML page and its time in headless Chromium, for resnet50 (training with Adam),
GPT-2 (from a transformers config, training with AdamW) and a 10,001-module model.

    .venv/bin/python benchmarks/html_page.py [--repeats 3] [--shots /tmp/html-shots]

All models are built on the meta device. Per page: its size, the time to write it in Python
(next to json.dumps of to_dict(), the baseline in the same process), and in Chromium (median
of ``repeats`` loads from file://): "ready" is navigation start to the end of the page's
script (HTML and ECharts parsed, header and module tree drawn; charts below the window are
drawn when scrolled to), "all charts" adds drawing every chart at once. The budgets are
3 MB for resnet50 with training, 1 s for resnet50 and 3 s for the 10,001-module model.
With --shots, a full-page screenshot of each page is saved there. Needs Selenium, Chromium
and chromedriver (scripts/install-browser.sh)."""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torchvision
from torch import nn

import torchtally as tt


def resnet50() -> tt.ModelReport:
    with torch.device("meta"):
        model = torchvision.models.resnet50()
    return tt.analyze(model, (1, 3, 224, 224), training=True, optimizer="adam")


def gpt2() -> tt.ModelReport:
    from transformers import GPT2Config, GPT2LMHeadModel

    with torch.device("meta"):
        model = GPT2LMHeadModel(GPT2Config())
    ids = torch.zeros(1, 1024, dtype=torch.long, device="meta")
    return tt.analyze(model, input_data={"input_ids": ids}, training=True, optimizer="adamw")


def ten_thousand() -> tt.ModelReport:
    with torch.device("meta"):
        model = nn.Sequential(*(nn.Sequential(nn.Linear(64, 64), nn.GELU(), nn.Linear(64, 64)) for _ in range(2500)))
    return tt.analyze(model, (8, 64))


def browser() -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(argument)
    options.binary_location = shutil.which("chromium") or shutil.which("chromium-browser") or "chromium"
    return webdriver.Chrome(service=Service(shutil.which("chromedriver") or "chromedriver"), options=options)


def load(driver: Any, path: Path) -> tuple[float, float]:
    driver.get(path.as_uri())
    while driver.execute_script("return document.body.getAttribute('data-ready')") != "1":
        time.sleep(0.01)
    ready = float(driver.execute_script("return window.__torchtally.sinceStart"))
    charts = float(driver.execute_script("var t = performance.now(); window.__torchtally.drawAll(); return performance.now() - t"))
    return ready / 1000, charts / 1000


def screenshot(driver: Any, path: Path, shot: Path) -> None:
    driver.get(path.as_uri())
    driver.execute_script("window.__torchtally.drawAll()")
    height = int(driver.execute_script("return document.body.scrollHeight"))
    driver.set_window_size(1400, height + 40)
    time.sleep(0.5)
    driver.save_screenshot(str(shot))
    driver.set_window_size(1400, 1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--shots", type=Path, default=None)
    options = parser.parse_args()
    driver = browser()
    folder = Path(tempfile.mkdtemp(prefix="torchtally-pages-"))
    rows = []
    try:
        for name, make in (("resnet50 training", resnet50), ("gpt2 training", gpt2), ("10,001 modules", ten_thousand)):
            report = make()
            gc.collect()  # the analysis leaves garbage whose collection would land in the timings
            start = time.perf_counter()
            page = report.to_html_page()
            write_s = time.perf_counter() - start
            start = time.perf_counter()
            json.dumps(report.to_dict())
            json_s = time.perf_counter() - start
            path = folder / (name.split()[0].replace(",", "") + ".html")
            path.write_text(page, encoding="utf-8")
            loads = [load(driver, path) for _ in range(options.repeats)]
            ready = statistics.median(r for r, _ in loads)
            charts = statistics.median(c for _, c in loads)
            rows.append((name, len(report.layers), len(page.encode()), write_s, write_s / json_s, ready, charts))
            if options.shots is not None:
                options.shots.mkdir(parents=True, exist_ok=True)
                screenshot(driver, path, options.shots / (path.stem + ".png"))
    finally:
        driver.quit()
        shutil.rmtree(folder, ignore_errors=True)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'page':<20} {'modules':>8} {'size':>9} {'write':>8} {'vs json':>8} {'ready':>8} {'all charts':>11} {'total':>8}")
    for name, modules, size, write_s, ratio, ready, charts in rows:
        print(f"{name:<20} {modules:>8,} {size / 1e6:>7.2f}MB {write_s:>7.2f}s {ratio:>7.2f}x {ready:>7.2f}s {charts:>10.2f}s"
              f" {ready + charts:>7.2f}s")


if __name__ == "__main__":
    main()
