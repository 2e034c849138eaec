"""The first analysis in a process skips the fake kernels through closed-form results
(engine/shapes.py) and the persistent replay cache (engine/replay_disk.py). Both must be
invisible: the same report, to the last field, as a run that sends every call through
FakeTensorMode; and the cache on disk is used only when it is intact and ours."""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import torchvision
from torch import nn

import torchtally as tt
from torchtally.engine import replay, replay_disk, shapes


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty cache folder of this test's own, and a process that remembers nothing."""
    monkeypatch.setenv(replay_disk.ENV, str(tmp_path))
    monkeypatch.setattr(replay_disk, "_STORES", {})
    replay.forget()
    yield tmp_path
    replay.forget()


class KernelCalls:
    """Counts the calls that went through the fake kernels (the ones the replay then learns)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        original = replay.ResultReplay.remember

        def remember(this: replay.ResultReplay, key: Any, func: Any, out: Any) -> None:
            self.count += 1
            original(this, key, func, out)

        monkeypatch.setattr(replay.ResultReplay, "remember", remember)


def fresh_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a new process starts with: nothing in memory, the files not yet read."""
    replay_disk.flush_all()
    replay.forget()
    monkeypatch.setattr(replay_disk, "_STORES", {})


def uncached(model: nn.Module, size: tuple[int, ...], monkeypatch: pytest.MonkeyPatch, **kwargs: Any) -> dict[str, Any]:
    """The report with every call through the fake kernels: no closed forms, no disk."""
    replay.forget()
    with monkeypatch.context() as patch:
        patch.setattr(shapes, "RULES", {})
        patch.setenv(replay_disk.ENV, "off")
        report = tt.analyze(model, size, **kwargs).to_dict()
    replay.forget()
    return report


class SmallNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.norm = nn.BatchNorm2d(8)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.norm(self.conv(x)))
        y = torch.softmax(y, dim=1) * y  # softmax has no closed form: through the kernel, then the disk
        return self.fc(self.pool(y).flatten(1))


def test_a_fresh_process_replays_from_disk_what_an_earlier_one_learnt(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = SmallNet()
    expected = uncached(model, (2, 3, 16, 16), monkeypatch)
    monkeypatch.setattr(shapes, "RULES", {})  # so that every call is the disk's to answer
    calls = KernelCalls(monkeypatch)
    assert tt.analyze(model, (2, 3, 16, 16)).to_dict() == expected
    learnt = calls.count
    assert learnt > 5  # conv, batch norm, relu, softmax, mul, mean, view, addmm, ...
    fresh_process(monkeypatch)
    files = list(cache_dir.iterdir())
    assert [f.name for f in files] == [f"replay-v1-torch-{torch.__version__}.txt"]
    assert len(files[0].read_text().splitlines()) == 1 + learnt  # the header, one line per call learnt
    assert tt.analyze(model, (2, 3, 16, 16)).to_dict() == expected
    assert calls.count == learnt  # nothing went through the fake kernels the second time


def test_damaged_and_mismatched_entries_are_ignored(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = SmallNet()
    expected = uncached(model, (2, 3, 16, 16), monkeypatch)
    monkeypatch.setattr(shapes, "RULES", {})
    calls = KernelCalls(monkeypatch)
    tt.analyze(model, (2, 3, 16, 16))
    learnt = calls.count
    fresh_process(monkeypatch)
    path = next(cache_dir.iterdir())
    header, *lines = path.read_text().splitlines()
    damaged = []
    # 1: a changed digit: the checksum no longer matches
    digest, value, check = lines[0].split("\t")
    changed = value.replace("16", "61", 1) if "16" in value else value.replace("8", "9", 1)
    assert changed != value
    damaged.append(f"{digest}\t{changed}\t{check}")
    # 2: an intact line whose JSON is not what the operator's rule gives (a view for a fresh result)
    digest, value, check = lines[1].split("\t")
    body = f'{digest}\t["V",[[1],[1],"float32","cpu",0]]'
    damaged.append(f"{body}\t{replay_disk._checksum(body)}")
    # 3: a torn line, 4: garbage
    damaged.append(lines[2][: len(lines[2]) // 2])
    damaged.append("\x00\x01 not an entry")
    path.write_text("\n".join([header, *damaged, *lines[3:]]) + "\n")
    assert tt.analyze(model, (2, 3, 16, 16)).to_dict() == expected
    assert calls.count == learnt + 3  # the three damaged entries were worked out again


def test_a_file_from_another_format_or_torch_is_ignored_and_replaced(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = SmallNet()
    monkeypatch.setattr(shapes, "RULES", {})
    calls = KernelCalls(monkeypatch)
    tt.analyze(model, (2, 3, 16, 16))
    learnt = calls.count
    fresh_process(monkeypatch)
    path = next(cache_dir.iterdir())
    text = path.read_text()
    path.write_text(text.replace(f"torch {torch.__version__}", "torch 0.0.1", 1))
    tt.analyze(model, (2, 3, 16, 16))
    assert calls.count == 2 * learnt  # nothing used from the foreign file
    fresh_process(monkeypatch)
    assert path.read_text().startswith(replay_disk._header())  # replaced by one of ours
    tt.analyze(model, (2, 3, 16, 16))
    assert calls.count == 2 * learnt


def test_off_writes_nothing_and_an_unwritable_folder_is_no_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(replay_disk, "_STORES", {})
    monkeypatch.setenv(replay_disk.ENV, "off")
    assert replay_disk.cache_folder() is None
    replay.forget()
    tt.analyze(SmallNet(), (1, 3, 8, 8))
    replay_disk.flush_all()
    assert replay_disk._STORES == {}
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv(replay_disk.ENV, str(blocker / "cache"))  # a folder inside a file: cannot exist
    replay.forget()
    report = tt.analyze(SmallNet(), (1, 3, 8, 8))
    replay_disk.flush_all()
    assert report.total_params == (3 * 8 * 9 + 8) + 2 * 8 + (8 * 5 + 5)  # conv, batch norm, linear
    replay.forget()


def test_default_cache_folder_follows_the_platform(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(replay_disk.ENV, raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert replay_disk.cache_folder() == tmp_path / "xdg" / "torchtally"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/path")  # the XDG spec: relative paths are ignored
    assert replay_disk.cache_folder() == tmp_path / ".cache" / "torchtally"
    monkeypatch.setattr(sys, "platform", "darwin")
    assert replay_disk.cache_folder() == tmp_path / "Library" / "Caches" / "torchtally"
    monkeypatch.setenv(replay_disk.ENV, str(tmp_path / "mine"))
    assert replay_disk.cache_folder() == tmp_path / "mine"
    for off in ("off", "OFF", "0", "false"):
        monkeypatch.setenv(replay_disk.ENV, off)
        assert replay_disk.cache_folder() is None


def test_encoding_round_trips_and_decoding_checks_the_rule() -> None:
    meta = (torch.Size([2, 3]), (3, 1), torch.bfloat16, torch.device("cpu"), False)
    add, view, relu_ = torch.ops.aten.add.Tensor, torch.ops.aten.view.default, torch.ops.aten.relu_.default
    bn = torch.ops.aten.native_batch_norm.default
    for func, rule, stored in [
        (add, "fresh", meta),
        (view, "view", ("view", (torch.Size([6]), (1,), torch.float16, torch.device("cuda:0"), 4))),
        (relu_, "inplace", "inplace"),
        (bn, "fresh", [meta, meta, meta]),
    ]:
        text = replay_disk.encode(stored)
        assert text is not None
        assert replay_disk.decode(text, func, rule) == stored
    text = replay_disk.encode(meta)
    assert text is not None
    assert replay_disk.decode(text, view, "view") is None  # a fresh result where a view is due
    assert replay_disk.decode(text, relu_, "inplace") is None
    assert replay_disk.decode(text.replace("bfloat16", "int128"), add, "fresh") is None  # no such dtype
    assert replay_disk.decode(text.replace("[2,3]", "[2,-3]"), add, "fresh") is None  # negative size
    assert replay_disk.decode(text.replace("[2,3]", "[2]"), add, "fresh") is None  # rank != strides
    assert replay_disk.decode(text.replace("false", "0"), add, "fresh") is None
    assert replay_disk.decode(text.replace('"cpu"', '"nowhere"'), add, "fresh") is None
    triple = replay_disk.encode([meta, meta])
    assert triple is not None and replay_disk.decode(triple, bn, "fresh") is None  # bn returns three


# One model of each torchvision family, built on the meta device (regnets cannot be: their
# widths are computed with tensor arithmetic, so a small one is built for real).
ZOO = [
    "resnet18", "resnext50_32x4d", "mobilenet_v2", "mobilenet_v3_large", "efficientnet_b0", "densenet121",
    "shufflenet_v2_x0_5", "squeezenet1_1", "mnasnet0_5", "convnext_tiny", "vgg11_bn", "alexnet", "googlenet",
    "inception_v3", "vit_b_32", "swin_t", "maxvit_t", "regnet_y_400mf",
]


@pytest.mark.parametrize("name", ZOO)
def test_counts_are_identical_with_and_without_closed_forms_and_the_disk(
    name: str, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if name.startswith("regnet"):
        model = torchvision.models.get_model(name).eval()
    else:
        with torch.device("meta"):
            model = torchvision.models.get_model(name).eval()
    size = (1, 3, 299, 299) if name == "inception_v3" else (1, 3, 224, 224)
    expected = uncached(model, size, monkeypatch)
    assert tt.analyze(model, size).to_dict() == expected  # closed forms, disk cold
    fresh_process(monkeypatch)
    assert tt.analyze(model, size).to_dict() == expected  # closed forms, disk warm


def test_a_training_analysis_is_identical_too(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Batch norm in training mode, the backward's operators."""
    with torch.device("meta"):
        model = torchvision.models.resnet18()
    expected = uncached(model, (2, 3, 64, 64), monkeypatch, training=True, optimizer="adam")
    assert tt.analyze(model, (2, 3, 64, 64), training=True, optimizer="adam").to_dict() == expected
    fresh_process(monkeypatch)
    assert tt.analyze(model, (2, 3, 64, 64), training=True, optimizer="adam").to_dict() == expected


class Raises(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert not gc.isenabled()  # held off during the fake run
        raise ValueError("boom")


SEEN: list[bool] = []  # not the model's own (the guard would restore a list it owns)


class Checks(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        SEEN.append(gc.isenabled())
        return x * 2


def test_the_cyclic_collector_is_held_off_during_the_run_and_restored() -> None:
    assert gc.isenabled()
    model = Checks()
    tt.analyze(model, (2, 3))
    assert gc.isenabled() and SEEN == [False]
    with pytest.raises(tt.ForwardError, match="boom"):
        tt.analyze(Raises(), (2, 3), run="fake")
    assert gc.isenabled()
    gc.disable()  # the user's own choice stays theirs
    try:
        tt.analyze(model, (2, 3))
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_fast_made_fake_tensors_are_the_constructors_own() -> None:
    from torch._subclasses.fake_tensor import FakeTensor, FakeTensorMode
    from torch.utils._mode_utils import no_dispatch

    from torchtally.engine import fakes

    mode = FakeTensorMode(allow_non_fake_inputs=True)
    with no_dispatch():
        first, second = (torch.empty_strided((4, 5), (1, 4), dtype=torch.bfloat16, device="meta") for _ in range(2))
    fast = fakes.new_fake(mode, first, torch.device("cpu"), requires_grad=True)
    reference = FakeTensor(mode, second, torch.device("cpu"))
    reference.requires_grad_(True)
    assert fakes._FAST["state"] is not None  # the fast path is the one in use on this torch
    assert type(fast) is FakeTensor and vars(fast).keys() == vars(reference).keys()
    assert torch._C._dispatch_keys(fast) == torch._C._dispatch_keys(reference)
    assert (fast.shape, fast.stride(), fast.dtype, fast.device, fast.requires_grad, fast.fake_mode) == (
        reference.shape, reference.stride(), reference.dtype, reference.device, True, mode
    )
    with mode:
        product = fast @ reference.t()
    assert type(product) is FakeTensor and product.shape == (4, 4) and product.fake_device == torch.device("cpu")
    cuda = fakes.new_fake(mode, second, torch.device("cuda:0"))  # other devices: the constructor itself
    assert cuda.fake_device == torch.device("cuda:0")


def test_a_fake_parameter_is_what_nn_parameter_makes_of_a_fake_twin() -> None:
    # fake_parameter builds nn.Parameter(twin)'s result without dispatching the detach: the
    # same kind of object (a FakeTensor marked as a parameter, a leaf), on the twin's storage,
    # and gradients accumulate into it as into nn.Parameter's.
    from torch._subclasses.fake_tensor import FakeTensor, FakeTensorMode

    from torchtally.engine import fakes

    mode = FakeTensorMode(allow_non_fake_inputs=True)
    converter = fakes.FakeConverter(mode, meta_as=torch.device("cpu"))
    with torch.device("meta"):
        real = nn.Parameter(torch.empty(6, 4).t())  # a transposed layout: strides (1, 4)
    twin = converter.tensor(real)
    for requires_grad in (True, False):
        made = fakes.fake_parameter(mode, twin, requires_grad)
        reference = nn.Parameter(twin, requires_grad=requires_grad)
        assert type(made) is type(reference) is FakeTensor
        assert isinstance(made, nn.Parameter) and isinstance(reference, nn.Parameter)
        assert vars(made).keys() == vars(reference).keys()
        described = [
            (t.shape, t.stride(), t.dtype, t.device, t.requires_grad, t.is_leaf, t.grad_fn, t.storage_offset())
            for t in (made, reference)
        ]
        expected = (torch.Size([4, 6]), (1, 4), torch.float32, torch.device("cpu"), requires_grad, True, None, 0)
        assert described[0] == described[1] == expected
        assert made.untyped_storage()._cdata == twin.untyped_storage()._cdata  # an alias of the twin, like detach
    trained = fakes.fake_parameter(mode, twin, True)
    with mode:
        (trained * 2).sum().backward()
    assert isinstance(trained.grad, FakeTensor) and trained.grad.shape == (4, 6)

def test_an_analysis_leaves_nothing_for_the_cyclic_collector() -> None:
    # Reference cycles made by a run (a callback referring back to its owner, a recursive
    # closure) keep the whole run alive until the collector's next pass, which then walks
    # thousands of objects inside the user's next allocation.
    model = torchvision.models.get_model("mobilenet_v3_small").eval()
    tt.analyze(model, (1, 3, 224, 224))
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        report = tt.analyze(model, (1, 3, 224, 224))
        assert gc.collect() == 0
    finally:
        if was_enabled:
            gc.enable()
    assert report.total_macs > 0


def test_a_replaced_builtin_formula_is_not_served_from_remembered_costs() -> None:
    from torchtally.formulas import BUILTIN, Cost

    model = torch.nn.Linear(8, 4)
    first = tt.analyze(model, (2, 8)).total_macs  # remembers addmm's cost for this key
    assert first == 2 * 8 * 4  # 2 rows x 8 inputs x 4 outputs
    original = BUILTIN.lookup(torch.ops.aten.addmm.default)
    assert original is not None
    BUILTIN.register(torch.ops.aten.addmm, lambda *args, **kwargs: Cost(macs=1, flops=2))
    try:
        assert tt.analyze(model, (2, 8)).total_macs == 1  # the table changed: the new formula counts
    finally:
        BUILTIN.register(torch.ops.aten.addmm, original)
    assert tt.analyze(model, (2, 8)).total_macs == first
