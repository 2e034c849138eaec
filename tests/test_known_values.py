"""The values of small integer tensors are followed through a fake run (engine/known_values.py):
a forward that reads them (``.tolist()``, ``.item()``, ``repeat_interleave`` by counts,
``nonzero``) runs on fake tensors, on the meta device too, and counts what a real run does.
Expected numbers are derived by hand (the comments) or by FlopCounterMode on a real run."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import torchtally as tt
from torchtally.engine import known_values
from torchtally.errors import ForwardError, TorchtallyError


class _Packed(nn.Module):
    """A Qwen2-VL-like tower: patches of several images packed in one sequence, with the grid
    (frames, rows, columns) of each; attention-like products within each frame."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
        counts = grid[:, 0] * grid[:, 1] * grid[:, 2]
        if x.shape[0] != int(counts.sum()):  # .item(): a value read
            raise ValueError(f"{x.shape[0]} patches for a grid of {int(counts.sum())}")
        lengths = torch.repeat_interleave(grid[:, 1] * grid[:, 2], grid[:, 0])  # a shape from values
        bounds = F.pad(lengths.cumsum(0), (1, 0))
        parts = torch.split(self.lin(x), (bounds[1:] - bounds[:-1]).tolist())
        return torch.cat([part.T @ part for part in parts])


# grid [[1, 2, 3], [2, 2, 2]]: 6 + 8 = 14 patches, frames of 6, 4 and 4 patches
_GRID = [[1, 2, 3], [2, 2, 2]]
# linear: 14 x 8 x 8 = 896; per frame part.T @ part: 8 x 8 x n for n = 6, 4, 4: 64 x 14 = 896
_PACKED_MACS = 14 * 8 * 8 + 8 * 8 * (6 + 4 + 4)


def test_a_forward_reading_an_inputs_values_runs_on_the_meta_device() -> None:
    with torch.device("meta"):
        model = _Packed()
    grid = torch.tensor(_GRID)
    report = tt.analyze(model, input_data={"x": torch.empty(14, 8, device="meta"), "grid": grid})
    assert report.execution == "fake"
    assert report.total_macs == _PACKED_MACS
    assert grid.tolist() == _GRID  # the user's tensor is read, never written


def test_the_count_is_what_a_real_run_gives() -> None:
    torch.manual_seed(0)
    model = _Packed()
    inputs = {"x": torch.randn(14, 8), "grid": torch.tensor(_GRID)}
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(**inputs)
    reference = counter.get_total_flops() // 2  # linear and matmuls only: FLOPs = 2 x MACs
    report = tt.analyze(model, input_data=inputs)
    assert report.execution == "fake"
    assert report.total_macs == reference == _PACKED_MACS


class _Writes(nn.Module):
    """Writes into its grid: with known values (the grid stays known), or with values from a
    float tensor (the grid's value is forgotten, through its views too)."""

    def __init__(self, known: bool) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.known = known

    def forward(self, x: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
        grid = grid.clone()
        flat = grid.view(-1)
        if self.known:
            flat[0] = 3  # through a view: grid[0, 0] is 3
        else:
            flat[0] = x.sum().to(torch.long)  # a value computed from floats: unknown
        rows = int(grid[0, 0])
        return self.lin(x[:rows])


def test_a_write_with_known_values_stays_known_through_a_view() -> None:
    with torch.device("meta"):
        model = _Writes(known=True)
    report = tt.analyze(model, input_data={"x": torch.empty(5, 4, device="meta"), "grid": torch.tensor([[1, 2]])})
    assert report.total_macs == 3 * 4 * 4  # 3 rows through a 4 x 4 linear


def test_a_write_with_unknown_values_forgets_the_value() -> None:
    with torch.device("meta"):
        model = _Writes(known=False)
    with pytest.raises(TorchtallyError, match="needs real values") as caught:
        tt.analyze(model, input_data={"x": torch.empty(5, 4, device="meta"), "grid": torch.tensor([[1, 2]])})
    assert "\n" not in str(caught.value)
    # on the CPU the analysis falls back to a real run, which reads the real value
    real = tt.analyze(_Writes(known=False), input_data={"x": torch.ones(5, 4), "grid": torch.tensor([[1, 2]])})
    assert real.execution == "real" and real.total_macs == 5 * 4 * 4  # x.sum() = 20 rows: x[:20] is all 5


class _Made(nn.Module):
    """Values from arange, comparisons and a tensor literal: nonzero's length is 3."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        picked = torch.nonzero(torch.arange(6) % 2 == torch.tensor(0)).flatten()  # 0, 2, 4
        return self.lin(x[picked])


def test_values_made_in_the_forward_are_known() -> None:
    with torch.device("meta"):
        model = _Made()
    report = tt.analyze(model, input_size=(6, 4))
    assert report.execution == "fake" and report.total_macs == 3 * 4 * 4


class _Large(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(2, 2)  # on the meta device: no real run to fall back to

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x[torch.nonzero(torch.arange(known_values.LIMIT + 1) < 3).flatten()])


def test_tensors_larger_than_the_limit_are_not_followed() -> None:
    with torch.device("meta"):
        model = _Large()
    with pytest.raises(TorchtallyError, match="needs real values"):
        tt.analyze(model, input_size=(known_values.LIMIT + 1, 2))


class _Random(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x[: int(torch.randint(1, 3, ()))])


def test_random_operators_are_never_run_for_their_values() -> None:
    with torch.device("meta"):
        model = _Random()
    state = torch.get_rng_state()
    with pytest.raises(TorchtallyError, match="needs real values"):
        tt.analyze(model, input_size=(4, 2))
    assert torch.equal(torch.get_rng_state(), state)


def test_a_grid_that_does_not_fit_the_patches_is_a_clear_error() -> None:
    with torch.device("meta"):
        model = _Packed()
    with pytest.raises(ForwardError, match="14 patches for a grid of 5") as caught:
        tt.analyze(model, input_data={"x": torch.empty(14, 8, device="meta"), "grid": torch.tensor([[1, 1, 5]])})
    assert "the root module" in str(caught.value).splitlines()[0]


class _Tokens(nn.Module):
    """Reads no values: token ids, positions from arange, attention. Its figures must not
    depend on whether values are followed."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(50, 16)
        self.pos = nn.Embedding(32, 16)
        self.qkv = nn.Linear(16, 48)
        self.out = nn.Linear(16, 50)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(ids.shape[1]).unsqueeze(0)
        h = self.embed(ids) + self.pos(positions)
        q, k, v = self.qkv(h).chunk(3, dim=-1)
        h = h + F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.out(h)


@pytest.mark.parametrize("given", ["data", "size"])
def test_figures_are_the_same_with_and_without_known_values(given: str, monkeypatch: pytest.MonkeyPatch) -> None:
    model = _Tokens()
    arguments = {"input_data": torch.randint(0, 50, (2, 12))} if given == "data" else {"input_size": (2, 12), "dtypes": [torch.long]}
    followed = tt.analyze(model, **arguments).to_dict()
    monkeypatch.setattr(known_values, "LIMIT", 0)  # no tensor is small enough: nothing is followed
    plain = tt.analyze(model, **arguments).to_dict()
    assert followed == plain


class _TwoViews(nn.Module):
    """Given a grid and a flat view of it: writes through the view, reads through the grid."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor, grid: torch.Tensor, flat: torch.Tensor) -> torch.Tensor:
        flat[0] = 3
        return self.lin(x[: int(grid[0, 0])])


def test_inputs_that_are_views_of_one_tensor_keep_their_values_and_their_aliasing() -> None:
    grid = torch.tensor([[1, 2, 3]])
    with torch.device("meta"):
        model = _TwoViews()
    report = tt.analyze(model, input_data={"x": torch.empty(5, 4, device="meta"), "grid": grid, "flat": grid.view(-1)})
    assert report.execution == "fake" and report.total_macs == 3 * 4 * 4  # the write through flat is seen: 3 rows
    assert grid.tolist() == [[1, 2, 3]]  # and never reaches the user's tensor


class _PaddedConv(nn.Module):
    """An EnCodec/Mimi-like convolution: its stride a 0-dim buffer, the padding computed from
    it as ceil((length - kernel) / stride) in floating point, read with .item()."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(2, 4, 3, stride=2)
        self.stride = nn.Buffer(torch.tensor(2), persistent=False)
        self.kernel = nn.Buffer(torch.tensor(3), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        frames = torch.ceil((x.shape[-1] - self.kernel) / self.stride).to(torch.int64) + 1
        extra = int(frames * self.stride + self.kernel - self.stride) - x.shape[-1]
        return self.conv(F.pad(x, (0, extra)))


def test_a_meta_built_model_keeps_its_integer_scalars_and_computes_its_padding() -> None:
    from torchtally.cli.huggingface import _scalars_kept_real

    meta = torch.device("meta")
    with meta, _scalars_kept_real(meta):
        model = _PaddedConv()
    assert model.conv.weight.is_meta and model.stride.device.type == "cpu"
    report = tt.analyze(model, input_size=(1, 2, 10))
    # length 10, kernel 3, stride 2: ceil(7 / 2) + 1 = 5 frames, padded to 5 * 2 + 1 = 11:
    # 5 outputs x 4 channels x (2 x 3) inputs = 120 MACs
    assert report.execution == "fake" and report.total_macs == 5 * 4 * 2 * 3


class _Levels(nn.Module):
    """DETR-like: the feature levels' shapes written one by one into an empty tensor, then
    read to split the flattened features (the empty tensor's unset elements are all written)."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, big: torch.Tensor, small: torch.Tensor) -> torch.Tensor:
        shapes = torch.empty((2, 2), dtype=torch.long)
        for level, source in enumerate((big, small)):
            shapes[level, 0], shapes[level, 1] = source.shape[-2:]
        flat = torch.cat([big.flatten(2), small.flatten(2)], dim=2).transpose(1, 2)  # (1, 20, 4)
        parts = flat.split(shapes.prod(1).tolist(), dim=1)
        return torch.cat([self.lin(part) for part in parts], dim=1)


def test_an_empty_tensor_filled_element_by_element_has_the_values_written() -> None:
    with torch.device("meta"):
        model = _Levels()
    report = tt.analyze(model, input_size={"big": (1, 4, 4, 4), "small": (1, 4, 2, 2)})
    # 16 + 4 positions through a 4 x 4 linear
    assert report.execution == "fake" and report.total_macs == (16 + 4) * 4 * 4


class _Sparse(nn.Module):
    """Gemma3n-like: a cut-off from a float literal through a distribution, which validates
    its argument (reads its value)."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        multiplier = torch.distributions.Normal(0, 1, validate_args=True).icdf(torch.tensor(0.95))
        return self.lin(torch.relu(x - x.std(-1, keepdim=True) * multiplier))


def test_a_float_literal_is_known() -> None:
    with torch.device("meta"):
        model = _Sparse()
    report = tt.analyze(model, input_size=(3, 4))
    assert report.execution == "fake" and report.total_macs == 3 * 4 * 4


class _ReadsAfterWrite(nn.Module):
    """Keeps g[0] rows of x after a write into g whose data is not known (4, from x's values)."""

    def __init__(self, how: str) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.how = how

    def forward(self, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        g = g.clone()
        four = (x.sum() * 0 + 4).to(torch.long)  # computed from x: its value is not known
        if self.how == "other-dtype view":
            g.view(torch.uint64).copy_(four.to(torch.uint64).expand(1))
        elif self.how == "set_":
            g.set_(four.reshape(1).expand(2).clone())
        else:  # .data =, which no operator sees
            g.data = four.reshape(1).expand(2).clone()
        return self.lin(x[: int(g[0])])


@pytest.mark.parametrize("how", ["other-dtype view", "set_", "data"])
def test_a_value_rewritten_without_known_data_is_not_read_stale(how: str) -> None:
    # A stale copy (g[0] == 1) would count 1 row; the real run keeps 4 rows, or the fake run
    # must say it needs real values and fall back to one. Linear 4 -> 4 over 4 rows: 64 MACs.
    model = _ReadsAfterWrite(how)
    inputs = {"x": torch.ones(5, 4), "g": torch.tensor([1])}
    assert tt.analyze(model, input_data=inputs).total_macs == 4 * 4 * 4


class _RepeatsByCounts(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        index = torch.repeat_interleave(torch.arange(counts.numel()), counts)
        return self.lin(x).sum() + index.shape[0]


def test_a_result_sized_by_huge_known_counts_is_not_made() -> None:
    # 3 * 10**8 int64 entries would take 2.4 GB: the analysis of a meta model says it needs
    # real values instead of allocating them. Small counts still run (3 + 2 entries).
    with torch.device("meta"):
        model = _RepeatsByCounts()
    huge = {"x": torch.ones(2, 4), "counts": torch.tensor([100_000_000, 200_000_000])}
    with pytest.raises(TorchtallyError, match="needs real values"):
        tt.analyze(model, input_data=huge)
    small = tt.analyze(model, input_data={"x": torch.ones(2, 4), "counts": torch.tensor([3, 2])})
    assert small.total_macs == 2 * 4 * 4  # linear 4 -> 4 over 2 rows


class _SmallFromHuge(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.lin(x)
        return h.sum() + h.new_zeros(3, dtype=torch.long).sum()


def test_a_small_known_result_of_a_huge_tensor_allocates_nothing_for_it() -> None:
    # new_zeros reads only its self's dtype and device: a 2**40 x 4 meta input must not be
    # made real to compute it (16 TiB). Linear 4 -> 4 over 2**40 rows.
    with torch.device("meta"):
        model = _SmallFromHuge()
    report = tt.analyze(model, input_data=torch.empty(2**40, 4, device="meta"))
    assert report.total_macs == 2**40 * 4 * 4


class _MixesDevices(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        index = torch.arange(2, device="meta")
        return self.lin(x[: int((g + index).sum())])  # a CPU tensor plus a meta one: an error


def test_an_error_other_than_missing_values_is_not_hidden_by_known_values() -> None:
    # Eager PyTorch refuses to add a meta tensor to a CPU one; known values must not run it
    # on CPU copies instead and report a count.
    with pytest.raises((ForwardError, TorchtallyError), match="device"):
        tt.analyze(_MixesDevices(), input_data={"x": torch.ones(5, 4), "g": torch.tensor([1, 2])}, run="fake")
