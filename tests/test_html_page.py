"""The HTML page (report.save_html, --format html) and the memory timeline it draws.

The timeline's data is tested here without a browser: its values by hand for a small model,
its invariants against the report's memory figures, its size for a 10,000-module model.
The page is tested in a real browser: headless Chromium from the OS packages driven by
Selenium and chromedriver (scripts/install-browser.sh installs them; without them these
tests skip, which under CI=true is a failure). Expected numbers are derived by hand or by
PyTorch's FlopCounterMode, never read back from torchtally."""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import torchvision
from hypothesis import given, strategies as st
from torch import nn

import torchtally as tt
from torchtally.engine.timeline import MAX_POINTS, thin
from torchtally.render.page import render_compare_page

from helpers import flop_counter_macs

RESNET18_PARAMS = 11_689_512  # torchvision's documented count (ResNet18_Weights.IMAGENET1K_V1.meta["num_params"])


def _small() -> nn.Module:
    return nn.Sequential(nn.Linear(4, 8, bias=False), nn.ReLU(), nn.Linear(8, 2, bias=False))


# --- the timeline's data ------------------------------------------------------------------


@pytest.mark.parametrize("run", ["fake", "real"])
def test_timeline_by_hand(run: str) -> None:
    """Linear(4, 8) -> ReLU -> Linear(8, 2) on a (3, 4) float32 input, inference."""
    report = tt.analyze(_small(), input_size=(3, 4), run=run)
    timeline = report.memory.timeline
    assert timeline is not None
    parameters = (4 * 8 + 8 * 2) * 4  # 192 bytes
    inputs = 3 * 4 * 4  # 48
    base = parameters + inputs
    # mm allocates the first output (3x8 floats = 96 B), relu its own (96 B), the first is
    # dropped when relu returns, mm allocates 3x2 floats (24 B), relu's output is dropped.
    assert timeline.totals == (base, base + 96, base + 192, base + 96, base + 120, base + 24)
    assert timeline.phases == (("forward", 0),)
    assert timeline.categories == ("parameters", "buffers", "inputs", "activations", "gradients", "optimizer_state")
    for values in timeline.values:
        assert values[:3] == (parameters, 0, inputs) and values[4:] == (0, 0)
    assert timeline.peak == report.memory.peak == base + 192
    # The peak is reached inside the ReLU (row 2: root, Linear, ReLU in named_modules order).
    assert report.layers[timeline.modules[timeline.peak_index]].name == "1"


def test_training_timeline_categories() -> None:
    """The same model trained with Adam: gradients end as large as the parameters, Adam's
    state (exp_avg, exp_avg_sq and a float32 step per parameter) exists from the start."""
    report = tt.analyze(_small(), input_size=(3, 4), training=True, optimizer="adam")
    timeline = report.memory.timeline
    assert timeline is not None
    parameters = (4 * 8 + 8 * 2) * 4
    state = 2 * parameters + 2 * 4
    assert [name for name, _ in timeline.phases] == ["forward", "backward", "optimizer step"]
    step_start = timeline.phases[2][1]
    backward_end = step_start - 1
    for index, values in enumerate(timeline.values):
        assert values[0] == parameters and values[2] == 3 * 4 * 4
        assert min(values) >= 0
        if index < step_start:
            assert values[5] == state  # the state of the previous step
    assert timeline.values[backward_end][4] == parameters  # every weight has its gradient
    assert timeline.peak == report.memory.peak
    assert timeline.phase_at(timeline.peak_index) == report.memory.peak_phase
    assert report.memory.optimizer_state == state and report.memory.gradients == parameters


@pytest.mark.parametrize("optimizer", [None, "sgd"])
def test_timeline_peak_is_the_reported_peak(optimizer: str | None) -> None:
    with torch.device("meta"):
        model = torchvision.models.resnet18()
    report = tt.analyze(model, (2, 3, 64, 64), training=True, optimizer=optimizer)
    timeline = report.memory.timeline
    assert timeline is not None
    assert timeline.peak == report.memory.peak
    assert timeline.phase_at(timeline.peak_index) == report.memory.peak_phase
    # The constant parts are the report's own figures at every moment.
    for values in timeline.values:
        assert values[0] == report.memory.parameters and values[1] == report.memory.buffers
        assert values[2] == report.memory.inputs
    # Each phase's highest moment is that phase's peak.
    totals = timeline.totals
    starts = [start for _, start in timeline.phases] + [len(totals)]
    assert max(totals[starts[0]:starts[1]]) == report.memory.forward_peak + (report.memory.optimizer_state or 0)
    assert max(totals[starts[1]:starts[2]]) == report.memory.backward_peak + (report.memory.optimizer_state or 0)


@pytest.fixture(scope="module")
def ten_thousand() -> tt.ModelReport:
    """10,000 modules: a chain of 9,999 ReLUs (each allocates its output, the last one is freed)."""
    with torch.device("meta"):
        model = nn.Sequential(*[nn.ReLU() for _ in range(9_999)])
    return tt.analyze(model, (2, 8))


def test_timeline_size_is_bounded(ten_thousand: tt.ModelReport) -> None:
    timeline = ten_thousand.memory.timeline
    assert timeline is not None and len(ten_thousand.layers) == 10_000
    # 9,999 allocations and 9,998 releases happened; the timeline keeps at most about MAX_POINTS.
    assert len(timeline.values) <= MAX_POINTS + 2
    assert timeline.peak == ten_thousand.memory.peak
    # Two outputs of 2x8 float32 alive at once at most (the new one, before the old is dropped).
    assert timeline.peak == ten_thousand.memory.inputs + 2 * (2 * 8 * 4)
    assert len(json.dumps(timeline.to_dict())) < 100_000


@given(st.lists(st.integers(-10**12, 10**12), min_size=1, max_size=3000), st.integers(4, 500))
def test_thinning_keeps_the_extremes(values: list[int], budget: int) -> None:
    kept = thin(values, budget)
    assert kept == sorted(set(kept)) and kept[0] == 0 and kept[-1] == len(values) - 1
    assert len(kept) <= max(budget, 2) + 2
    assert max(values[i] for i in kept) == max(values)
    assert min(values[i] for i in kept) == min(values)


# --- the page as text -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def resnet18() -> tt.ModelReport:
    with torch.device("meta"):
        model = torchvision.models.resnet18()
    return tt.analyze(model, (1, 3, 224, 224))


@pytest.fixture(scope="module")
def resnet18_training() -> tt.ModelReport:
    with torch.device("meta"):
        model = torchvision.models.resnet18()
    return tt.analyze(model, (2, 3, 64, 64), training=True, optimizer="adam")


def test_page_is_self_contained(resnet18: tt.ModelReport, tmp_path: Path) -> None:
    page = resnet18.to_html_page()
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"<script[^>]*\bsrc=|<link\b|@import|<iframe", page)
    path = tmp_path / "report.html"
    resnet18.save_html(path)
    assert path.read_text(encoding="utf-8") == page
    data = json.loads(re.search(r'<script type="application/json" id="tt-data">(.*?)</script>', page, re.S)[1])
    assert data["totals"]["params"] == RESNET18_PARAMS


def test_data_cannot_close_the_script() -> None:
    class Tricky(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * 2

    model = nn.Sequential()
    model.add_module("</script><b>x", Tricky())
    page = tt.analyze(model, (2, 2)).to_html_page()
    assert "</script><b>x" not in page and "\\u003c/script\\u003e\\u003cb\\u003ex" in page


# --- in a real browser ----------------------------------------------------------------------


def _browser_paths() -> tuple[str, str] | None:
    binary = next((found for name in ("chromium", "chromium-browser", "google-chrome") if (found := shutil.which(name))), None)
    driver = shutil.which("chromedriver")
    return (binary, driver) if binary and driver else None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    paths = _browser_paths()
    if paths is None:
        pytest.skip("no Chromium and chromedriver on this machine (scripts/install-browser.sh installs them)")
    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(argument)
    options.binary_location = paths[0]
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(paths[1]), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _open(browser: Any, page: str, path: Path) -> list[dict[str, Any]]:
    """Load the page from a file, draw every chart; the console's warnings and errors."""
    path.write_text(page, encoding="utf-8")
    browser.get_log("browser")  # drop what an earlier page logged
    browser.get(path.as_uri())
    deadline = time.monotonic() + 30
    while browser.execute_script("return document.body.getAttribute('data-ready')") != "1":
        assert time.monotonic() < deadline, "the page's script did not finish"
        time.sleep(0.05)
    browser.execute_script("window.__torchtally.drawAll()")
    return [entry for entry in browser.get_log("browser") if entry["level"] in ("SEVERE", "WARNING")]


def _value(browser: Any, selector: str) -> int:
    return int(browser.find_element("css selector", selector).get_attribute("data-value"))


def _rows(browser: Any) -> list[str]:
    return [row.get_attribute("data-name") for row in browser.find_elements("css selector", "#tree tbody tr[data-i]")]


def _cell(browser: Any, name: str, key: str) -> int:
    return int(browser.find_element("css selector", f'#tree tr[data-name="{name}"] td[data-key="{key}"]').get_attribute("data-v"))


def test_page_in_the_browser(browser: Any, resnet18: tt.ModelReport, tmp_path: Path) -> None:
    assert _open(browser, resnet18.to_html_page(depth=2), tmp_path / "resnet18.html") == []
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0  # fetched nothing
    assert browser.execute_script("return window.__torchtally.pending()") == 0  # every chart drawn
    # The totals: torchvision's documented parameter count; MACs by PyTorch's FlopCounterMode.
    with torch.device("meta"):
        model = torchvision.models.resnet18()
    assert _value(browser, "#total-params") == RESNET18_PARAMS
    assert _value(browser, "#total-macs") == flop_counter_macs(model, torch.empty(1, 3, 224, 224, device="meta"))
    assert _value(browser, "#total-shared") == 0
    # Rows: conv1 is 64 filters of 3x7x7; fc is 512x1000 weights and 1000 biases; layer1 is
    # two blocks of two 64->64 3x3 convs (36,864 each) and two BatchNorms (2x64 each).
    assert _cell(browser, "conv1", "params") == 64 * 3 * 7 * 7
    assert _cell(browser, "fc", "params") == 512 * 1000 + 1000
    assert _cell(browser, "layer1", "subtree_params") == 2 * (2 * 64 * 64 * 9 + 2 * 2 * 64)
    shape = browser.find_element("css selector", '#tree tr[data-name="conv1"] td[data-key="output"]').text
    assert shape == "[1, 64, 112, 112]"  # 224 / stride 2
    # The page opens at depth 2 (as asked): blocks show, their layers do not; expanding one
    # shows them.
    rows = _rows(browser)
    assert "layer1.0" in rows and "layer1.0.conv1" not in rows
    browser.find_element("css selector", '#tree tr[data-name="layer1.0"] button.tg').click()
    rows = _rows(browser)
    assert rows[rows.index("layer1.0") + 1 : rows.index("layer1.0") + 6] == [
        "layer1.0.conv1", "layer1.0.bn1", "layer1.0.relu", "layer1.0.conv2", "layer1.0.bn2",
    ]
    browser.find_element("css selector", '#tree tr[data-name="layer1.0"] button.tg').click()
    assert "layer1.0.conv1" not in _rows(browser)
    # Search: layers 2-4 begin with a downsample Sequential(conv, bn): 3 + 6 matching rows,
    # shown with their ancestors; nothing else.
    search = browser.find_element("css selector", "#tree-search")
    search.send_keys("downsample")
    matches = [row.get_attribute("data-name") for row in browser.find_elements("css selector", "#tree tr.match")]
    assert sorted(matches) == sorted(
        f"layer{n}.0.downsample{part}" for n in (2, 3, 4) for part in ("", ".0", ".1")
    )
    assert set(_rows(browser)) == set(matches) | {"", "layer2", "layer3", "layer4", "layer2.0", "layer3.0", "layer4.0"}
    search.clear()
    search.send_keys(" ")  # an empty query shows the tree again
    assert "layer1" in _rows(browser)
    # Sorting by subtree parameters puts the largest child of the root first: layer4 has
    # 512-channel 3x3 convs (8.4 M parameters), more than any other child.
    browser.find_element("css selector", '#tree th[data-key="subtree_params"]').click()
    assert _rows(browser)[1] == "layer4"
    # The timeline's peak, as the page computed it from the timeline's points.
    assert _value(browser, "#timeline-peak") == resnet18.memory.peak
    # The hierarchy picture by MACs instead of parameters.
    browser.find_element("css selector", "#hierarchy button:nth-child(2)").click()
    browser.execute_script("window.__torchtally.drawAll()")
    assert browser.execute_script("return window.__torchtally.pending()") == 0
    assert browser.find_elements("css selector", "#hierarchy-chart canvas")
    # Dark and back, still without errors.
    browser.find_element("css selector", "#theme").click()
    assert browser.execute_script("return document.documentElement.getAttribute('data-theme')") in ("dark", "light")
    assert [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "WARNING")] == []


def test_training_page_and_screenshot(browser: Any, resnet18_training: tt.ModelReport, tmp_path: Path) -> None:
    report = resnet18_training
    assert _open(browser, report.to_html_page(), tmp_path / "training.html") == []
    assert _value(browser, "#timeline-peak") == report.memory.peak
    phase = browser.find_element("css selector", "#timeline-peak").get_attribute("data-phase")
    assert phase == report.memory.peak_phase
    assert _value(browser, "#total-backward-flops") == report.backward_flops
    shot = tmp_path / "training.png"
    assert browser.save_screenshot(str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000


def test_comparison_page(browser: Any, resnet18: tt.ModelReport, tmp_path: Path) -> None:
    small = tt.analyze(_small(), input_size=(3, 4))
    page = render_compare_page([("resnet18", resnet18), ("mlp", small)])
    assert _open(browser, page, tmp_path / "compare.html") == []
    cells = browser.find_elements("css selector", "#compare-table tr[data-i] td:nth-child(2)")
    assert [int(cell.get_attribute("data-v")) for cell in cells] == [RESNET18_PARAMS, 4 * 8 + 8 * 2]
    # The first model's own tree is drawn under its heading.
    assert browser.find_elements("css selector", '#m0-tree tr[data-name="conv1"]')


def test_estimated_report_has_a_roofline(browser: Any, tmp_path: Path) -> None:
    with torch.device("meta"):
        model = torchvision.models.resnet18()
    report = tt.analyze(model, (1, 3, 224, 224), hardware="h100-sxm")
    assert report.estimate is not None
    assert _open(browser, report.to_html_page(), tmp_path / "estimate.html") == []
    assert browser.find_elements("css selector", "#roofline-chart canvas")
    assert float(browser.find_element("css selector", "#estimate").get_attribute("data-value")) == report.estimate.latency
    # The table gains the estimate's columns: conv1's estimated time is the report's.
    cell = browser.find_element("css selector", '#tree tr[data-name="conv1"] td[data-key="estimated_time"]')
    assert float(cell.get_attribute("data-v")) == report.layer("conv1").estimated_time


def test_non_finite_numbers_are_written_as_null() -> None:
    from torchtally.render.page import _json_for_script

    assert json.loads(_json_for_script({"a": [1.5, float("inf"), float("nan")], "b": [1, 2]})) == {"a": [1.5, None, None], "b": [1, 2]}


def test_command_line_writes_pages(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from torchtally.cli import main

    page = tmp_path / "page.html"
    assert main(["compare", "resnet18", "alexnet", "--output", str(page)]) == 0
    text = page.read_text(encoding="utf-8")
    data = json.loads(re.search(r'<script type="application/json" id="tt-data">(.*?)</script>', text, re.S)[1])
    assert [model["label"] for model in data["models"]] == ["resnet18", "alexnet"]
    assert data["models"][0]["totals"]["params"] == RESNET18_PARAMS
    assert data["models"][1]["totals"]["params"] == 61_100_840  # torchvision's documented AlexNet count
    single = tmp_path / "one.htm"
    assert main(["resnet18", "--output", str(single)]) == 0
    assert single.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    capsys.readouterr()


def test_notebook_frame(resnet18: tt.ModelReport) -> None:
    frame = resnet18.display_page(height=700)
    html = frame._repr_html_()
    assert html.startswith("<iframe srcdoc=\"&lt;!DOCTYPE html&gt;") and "height: 700px" in html
    assert resnet18._repr_html_() == resnet18.to_html()  # the report's own display stays the compact table


class _Tied(nn.Module):
    """An embedding whose weight the head reuses, and a layer that is never called."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(10, 4)
        self.head = nn.Linear(4, 10, bias=False)
        self.head.weight = self.emb.weight
        self.spare = nn.Linear(4, 4)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.emb(ids))


def test_shared_and_unused_are_marked(browser: Any, tmp_path: Path) -> None:
    report = tt.analyze(_Tied(), input_data=torch.zeros(2, 3, dtype=torch.long))
    assert _open(browser, report.to_html_page(), tmp_path / "tied.html") == []
    assert _value(browser, "#total-params") == 10 * 4 + (4 * 4 + 4)  # the tied weight once, the spare layer
    assert _value(browser, "#total-shared") == 10 * 4
    assert _value(browser, "#total-used") == 10 * 4
    head = browser.find_element("css selector", '#tree tr[data-name="head"]')
    assert head.find_element("css selector", ".badge.shared").text == "shared: emb"
    spare = browser.find_element("css selector", '#tree tr[data-name="spare"]')
    assert "unused" in spare.get_attribute("class").split() and spare.find_element("css selector", ".badge.unused").text == "unused"
    assert not browser.find_elements("css selector", '#tree tr[data-name="emb"] .badge')



def test_parallel_layout_section(browser: Any, tmp_path: Path) -> None:
    with torch.device("meta"):
        model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64))
    report = tt.analyze(model, (8, 64), parallel=tt.Parallel(fsdp=4), training=True, optimizer="adam")
    assert _open(browser, report.to_html_page(), tmp_path / "parallel.html") == []
    params = 2 * (64 * 64 + 64)  # 8,320, split over 4 FSDP ranks
    assert _value(browser, "#total-params") == params
    assert _value(browser, "#local-params") == params // 4
    # Every collective of a one-group FSDP layout moves the whole model's float32 weights or
    # gradients (the data size, as nccl-tests counts it), once per call.
    assert report.parallel is not None
    calls = sum(collective.calls for collective in report.parallel.communication)
    assert calls >= 2  # at least one all-gather before the forward and one reduce-scatter after the backward
    assert _value(browser, "#communication") == calls * params * 4
    assert browser.find_elements("css selector", "#communication-chart canvas")
    assert _value(browser, "#timeline-peak") == report.memory.peak


def test_tree_opens_at_the_reports_depth(browser: Any, resnet18: tt.ModelReport, tmp_path: Path) -> None:
    # The report's view depth is 3 by default: resnet18's blocks' layers (depth 3) show.
    assert _open(browser, resnet18.to_html_page(), tmp_path / "deep.html") == []
    assert "layer1.0.conv1" in _rows(browser)
    assert _open(browser, resnet18.with_view(depth=1).to_html_page(), tmp_path / "shallow.html") == []
    assert _rows(browser) == ["", "conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool", "fc"]


def test_large_trees_open_shallower(ten_thousand: tt.ModelReport, browser: Any, tmp_path: Path) -> None:
    # 9,999 modules at depth 1: the tree opens at depth 1 and draws the first 500 rows.
    assert _open(browser, ten_thousand.to_html_page(), tmp_path / "large.html") == []
    rows = _rows(browser)
    assert len(rows) == 500 and rows[:3] == ["", "0", "1"]
    browser.find_element("css selector", "#tree button.showmore").click()
    assert len(_rows(browser)) == 1000


def test_the_vendored_library_ships_with_its_licences() -> None:
    from importlib import resources

    from torchtally.render.page import ECHARTS_VERSION

    assets = resources.files("torchtally.render") / "assets"
    for name in ("echarts.min.js", "echarts.LICENSE.txt", "echarts.NOTICE.txt", "zrender.LICENSE.txt", "d3.LICENSE.txt"):
        assert (assets / name).is_file(), name
    assert "Apache License" in (assets / "echarts.LICENSE.txt").read_text(encoding="utf-8")
    assert f'version:"{ECHARTS_VERSION}"' in (assets / "echarts.min.js").read_text(encoding="utf-8").replace(" ", "")
    pyproject = (Path(__file__).parent.parent / "pyproject.toml").read_text(encoding="utf-8")
    assert '"render/assets/*"' in pyproject  # shipped as package data


def test_charts_fit_the_printed_page(browser: Any, resnet18_training: tt.ModelReport, tmp_path: Path) -> None:
    """Printing fits every chart to its container (the print styles change the page's width),
    and going back to the screen fits them again."""
    assert _open(browser, resnet18_training.to_html_page(), tmp_path / "print.html") == []
    widths = """return [...document.querySelectorAll('.chart')].map(el => {
        const canvas = el.querySelector('canvas');
        return [el.id, el.clientWidth, canvas ? canvas.getBoundingClientRect().width : -1]; })"""

    def fitted() -> bool:
        found = browser.execute_script(widths)
        return bool(found) and all(canvas >= 0 and abs(canvas - width) <= 1 for _, width, canvas in found)

    def wait_until_fitted() -> None:
        deadline = time.monotonic() + 10
        while not fitted():
            assert time.monotonic() < deadline, browser.execute_script(widths)
            time.sleep(0.05)

    screen = {row[0]: row[1] for row in browser.execute_script(widths)}
    wait_until_fitted()
    try:
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
        browser.execute_script("window.dispatchEvent(new Event('beforeprint'))")
        printed = {row[0]: row[1] for row in browser.execute_script(widths)}
        assert printed != screen  # the print styles made the charts' containers wider (no padding)
        wait_until_fitted()
        browser.execute_script("window.dispatchEvent(new Event('afterprint'))")
    finally:
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
    wait_until_fitted()


def test_print_lets_the_module_table_break_across_pages() -> None:
    from torchtally.render.page import asset

    css = asset("page.css")
    assert re.search(r"section\.modules[^{]*\{\s*break-inside:\s*auto", css)


def test_integers_above_two_to_the_53_are_shown_exactly(browser: Any, tmp_path: Path) -> None:
    with torch.device("meta"):
        model = nn.Linear(65537, 65537, bias=False)
    report = tt.analyze(model, (2**21 + 1, 65537))
    macs = (2**21 + 1) * 65537 * 65537
    assert macs > 2**53 and float(macs) != macs  # a double cannot hold it
    assert report.to_dict()["totals"]["macs"] == macs
    page = report.to_html_page()
    data = json.loads(re.search(r'<script type="application/json" id="tt-data">(.*?)</script>', page, re.S)[1])
    assert data["exact"]["totals"]["macs"] == str(macs)
    assert _open(browser, page, tmp_path / "bigint.html") == []
    card = browser.find_element("css selector", "#total-macs")
    assert card.get_attribute("data-value") == str(macs)
    assert card.find_element("css selector", ".exact").text == f"{macs:,}"
    assert browser.find_element("css selector", "#total-flops").get_attribute("data-value") == str(2 * macs)
    cell = browser.find_element("css selector", '#tree tr[data-i="0"] td[data-key="macs"]')
    assert cell.get_attribute("data-v") == str(macs)
    # Small figures stay plain numbers.
    assert _value(browser, "#total-params") == 65537 * 65537


def test_roof_legend_colours_match_the_lines(browser: Any, tmp_path: Path) -> None:
    with torch.device("meta"):
        model = torchvision.models.resnet18()
    report = tt.analyze(model, (1, 3, 224, 224), hardware="h100-sxm")
    assert _open(browser, report.to_html_page(), tmp_path / "roof.html") == []
    found = browser.execute_script("""const c = echarts.getInstanceByDom(document.getElementById('roofline-chart'));
        const model = c.getModel();
        return c.getOption().series.filter(s => s.type === 'line').map(s => [s.name, s.lineStyle.color,
            model.getSeriesByName(s.name)[0].getData().getVisual('style').fill]);""")
    assert found
    for name, line, legend in found:
        assert line == legend, name
