"""Memory traffic per operator (bytes read and written), each case derived by hand."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import torchtally as tt
from torchtally.engine.traffic import Traffic


class Recorder(TorchDispatchMode):
    """Every operator's (name, bytes read, bytes written) as our Traffic sees it."""

    def __init__(self) -> None:
        super().__init__()
        self.traffic = Traffic()
        self.seen: list[tuple[str, int, int]] = []

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        self.seen.append((func.overloadpacket.__name__, *self.traffic.of(func, args, kwargs, out)))
        return out


def traffic_of(work: Callable[[], object], name: str) -> tuple[int, int]:
    with Recorder() as recorder:
        work()
    found = [(read, written) for op, read, written in recorder.seen if op == name]
    assert len(found) == 1, recorder.seen
    return found[0]


X = torch.ones(1024)  # 4,096 bytes


def test_out_arguments_are_written_not_read() -> None:
    out = torch.empty(1024)
    # reads x twice (2 x 4,096), writes out once (4,096)
    assert traffic_of(lambda: torch.add(X, X, out=out), "add") == (8192, 4096)


def test_factories_read_nothing_and_empty_writes_nothing() -> None:
    assert traffic_of(lambda: torch.zeros_like(X), "zeros_like") == (0, 4096)
    assert traffic_of(lambda: torch.empty_like(X), "empty_like") == (0, 0)


def test_a_gather_reads_the_rows_it_returns() -> None:
    table = torch.ones(50257, 768)
    ids = torch.arange(8)  # 8 int64 = 64 bytes
    # 8 rows of 768 float32 = 24,576 bytes read and written, plus the ids
    assert traffic_of(lambda: torch.nn.functional.embedding(ids, table), "embedding") == (24576 + 64, 24576)
    assert traffic_of(lambda: table.index_select(0, ids), "index_select") == (24576 + 64, 24576)


def test_in_place_metadata_changes_move_nothing() -> None:
    y = torch.ones(64, 64)
    assert traffic_of(lambda: y.unsqueeze_(0), "unsqueeze_") == (0, 0)


def test_in_place_operators_read_and_write_their_tensor() -> None:
    y = torch.ones(1024)
    assert traffic_of(lambda: y.relu_(), "relu_") == (4096, 4096)
    a, b = torch.ones(16), torch.ones(16)  # 64 bytes each
    assert traffic_of(lambda: torch._foreach_add_([a, b], 1.0), "_foreach_add_") == (128, 128)
    assert traffic_of(lambda: y.copy_(X), "copy_") == (4096, 4096)  # reads the source only


def test_a_broadcast_tensor_is_read_once() -> None:
    row = torch.ones(1, 1024).expand(64, 1024)  # 4,096 bytes of storage seen 64 times
    full = torch.ones(64, 1024)  # 262,144 bytes
    assert traffic_of(lambda: full + row, "add") == (262144 + 4096, 262144)


def test_per_layer_figures_for_a_linear_layer() -> None:
    # Linear(16, 8) on 4 x 16 float32: addmm reads bias 32 + input 256 + weight 512 bytes,
    # writes 4 x 8 x 4 = 128 bytes; the transpose of the weight is a view (nothing).
    report = tt.analyze(torch.nn.Linear(16, 8), (4, 16))
    assert (report.layers[0].memory_read, report.layers[0].memory_write) == (800, 128)


@pytest.mark.parametrize("dtype,size", [(torch.float16, 2), (torch.bfloat16, 2), (torch.float32, 4)])
def test_traffic_follows_the_dtype(dtype: torch.dtype, size: int) -> None:
    model = torch.nn.Linear(16, 8, bias=False).to(dtype)
    report = tt.analyze(model, (4, 16))
    # reads input 64 + weight 128 elements, writes 32 elements
    assert (report.layers[0].memory_read, report.layers[0].memory_write) == (192 * size, 32 * size)
