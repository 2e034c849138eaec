"""Inputs of any rank and structure, dtypes, keyword arguments and non-tensor outputs."""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import pytest
import torch
from torch import nn

import torchtally as tt
from helpers import TwoInputs


def test_several_inputs_from_a_list_of_shapes() -> None:
    report = tt.analyze(TwoInputs(), [(2, 4), (2, 6)])
    assert report.layer("").input_shapes == (((2, 4), (2, 6)),)
    assert report.total_macs == 2 * 4 * 3 + 2 * 6 * 3  # rows x in x out for each linear


def test_input_size_as_a_dict_of_keyword_shapes() -> None:
    report = tt.analyze(TwoInputs(), {"x": (2, 4), "y": (2, 6)})
    assert report.layer("a").input_shapes == (((2, 4),),)
    assert report.layer("b").input_shapes == (((2, 6),),)


class EmbedAndMask(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(10, 4)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.embed(ids) * mask.unsqueeze(-1)


@pytest.mark.parametrize("dtypes", [[torch.long, torch.float16], {"ids": torch.long, "mask": torch.float16}])
def test_dtypes_by_position_or_by_name_for_keyword_shapes(dtypes: object) -> None:
    report = tt.analyze(EmbedAndMask(), {"ids": (2, 3), "mask": (2, 3)}, dtypes=dtypes)
    assert [spec.dtype for spec in report.inputs] == ["int64", "float16"]


@pytest.mark.parametrize(
    "module,shape,expected_macs",
    [
        # audio: 1x1x16000 through a 1 -> 8 channel conv of kernel 5 (no padding): 15996 positions
        (nn.Conv1d(1, 8, 5), (1, 1, 16000), 8 * 15996 * 5),
        # video: 1x3x16x112x112 through a 3 -> 4 channel 3x3x3 conv, padding 1 keeps the size;
        # each output sums 3 input channels x 27 kernel taps
        (nn.Conv3d(3, 4, 3, padding=1), (1, 3, 16, 112, 112), 4 * 16 * 112 * 112 * 3 * 27),
        # plain vectors: (5, 7) -> (5, 2)
        (nn.Linear(7, 2), (5, 7), 5 * 7 * 2),
    ],
)
def test_inputs_of_any_rank(module: nn.Module, shape: tuple[int, ...], expected_macs: int) -> None:
    report = tt.analyze(module, shape)
    assert report.total_macs == expected_macs
    assert report.layer("").input_shapes == ((shape,),)


def test_embedding_with_integer_token_ids() -> None:
    report = tt.analyze(nn.Embedding(100, 8), (2, 7), dtypes=[torch.long])
    assert report.total_params == 100 * 8
    assert report.layer("").output_shape == (2, 7, 8)
    assert report.inputs[0].dtype == "int64"
    assert report.total_macs == 0 and report.uncounted_ops == {}  # a lookup is not arithmetic


def test_float_inputs_default_to_the_models_dtype() -> None:
    model = nn.Linear(4, 4).to(torch.bfloat16)
    report = tt.analyze(model, (1, 4))
    assert report.inputs[0].dtype == "bfloat16"
    assert report.param_bytes == (16 + 4) * 2  # bfloat16 weights and bias: 2 bytes each


class DictAndKeywords(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, batch: dict[str, torch.Tensor], mask: torch.Tensor | None = None, scale: float = 1.0):
        out = self.fc(batch["x"]) * scale
        if mask is not None:
            out = out * mask
        return {"out": out, "count": 3, "nothing": None}


def test_dict_input_keyword_tensor_and_non_tensor_values() -> None:
    model = DictAndKeywords()
    report = tt.analyze(model, input_data={"batch": {"x": torch.randn(2, 4)}}, mask=torch.ones(2, 3), scale=2.0)
    assert report.layer("").input_shapes == (((2, 4), (2, 3)),)  # batch["x"], then mask
    assert report.layer("").output_shapes == (((2, 3),),)
    assert report.total_macs == 2 * 4 * 3
    # scale * out and * mask: two elementwise multiplies over 2x3 outputs
    assert report.layer("").self_flops == 2 * 6
    also = tt.analyze(model, input_data=({"x": torch.randn(2, 4)},), forward_kwargs={"mask": torch.ones(2, 3)})
    assert also.layer("").input_shapes == report.layer("").input_shapes


@dataclasses.dataclass
class Output:
    logits: torch.Tensor
    hidden: tuple[torch.Tensor, ...]
    note: str = "ok"


class Pair(NamedTuple):
    first: torch.Tensor
    second: int


class StructuredOutputs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 2)

    def forward(self, items: list[torch.Tensor], pair: Pair) -> Output:
        hidden = tuple(self.fc(t) for t in items)
        return Output(logits=hidden[0] + pair.first, hidden=hidden)


def test_nested_inputs_and_dataclass_outputs() -> None:
    items = [torch.randn(1, 3), torch.randn(4, 3)]
    report = tt.analyze(StructuredOutputs(), input_data=(items, Pair(torch.zeros(1, 2), 7)))
    assert report.layer("").input_shapes == (((1, 3), (4, 3), (1, 2)),)
    assert report.layer("").output_shapes == (((1, 2), (1, 2), (4, 2)),)
    assert report.layer("fc").calls == 2
    assert report.layer("fc").macs == (1 + 4) * 3 * 2


def test_lstm_counts_what_its_kernel_runs() -> None:
    batch, steps, inputs, hidden = 3, 5, 16, 32
    report = tt.analyze(nn.LSTM(inputs, hidden, num_layers=2, bidirectional=True, batch_first=True), (batch, steps, inputs))
    # Each step and sequence multiplies every weight matrix by a vector: 4 gates x hidden rows.
    # layer 0: W_ih (4H x I), W_hh (4H x H) per direction; layer 1 reads both directions (2H).
    per_step = 2 * (4 * hidden * inputs + 4 * hidden * hidden) + 2 * (4 * hidden * 2 * hidden + 4 * hidden * hidden)
    assert report.total_macs == batch * steps * per_step
    assert report.uncounted_ops == {}
    assert report.layer("").output_shapes[0][0] == (batch, steps, 2 * hidden)


def test_gru_decomposed_on_cpu() -> None:
    batch, steps, inputs, hidden = 2, 4, 8, 6
    report = tt.analyze(nn.GRU(inputs, hidden), (steps, batch, inputs))
    # 3 gates: W_ih (3H x I) and W_hh (3H x H) once per step and sequence
    assert report.total_macs == steps * batch * (3 * hidden * inputs + 3 * hidden * hidden)
    assert report.uncounted_ops == {}


def test_forward_without_arguments() -> None:
    class Constant(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.ones(3, 3))

        def forward(self) -> torch.Tensor:
            return self.w @ self.w

    report = tt.analyze(Constant(), input_data=())
    assert report.total_macs == 3 * 3 * 3
    assert report.total_params == 9


@pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors:UserWarning")
def test_padded_batch_through_the_encoder_fast_path() -> None:
    """nn.TransformerEncoder turns a padded batch into a nested tensor (fake tensors cannot
    hold one, so the analysis runs for real) and each layer does only the real tokens' work."""
    embed, hidden, layers = 32, 64, 2
    encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(embed, 4, hidden, batch_first=True), layers).eval()
    mask = torch.zeros(2, 10, dtype=torch.bool)
    mask[0, 5:] = True  # sequence lengths 5 and 10
    report = tt.analyze(encoder, input_data=(torch.randn(2, 10, embed),), src_key_padding_mask=mask)
    assert report.execution == "real" and report.fallback_reason
    # per sequence of length L: q, k, v and output projections 4 L E^2, attention 2 L^2 E;
    # feed-forward 2 E H per token
    attention = sum(4 * length * embed**2 + 2 * length**2 * embed for length in (5, 10))
    feed_forward = (5 + 10) * 2 * embed * hidden
    assert report.total_macs == layers * (attention + feed_forward)
    assert report.uncounted_ops == {}


def test_jagged_nested_input_is_described_without_crashing() -> None:
    # Two sequences of 2 and 3 tokens, 4 features: 5 x 4 float32 values = 80 bytes; the
    # Linear(4, 4) maps each of the 5 tokens: 5 * 4 * 4 = 80 MACs.
    values = torch.nested.nested_tensor([torch.ones(2, 4), torch.ones(3, 4)], layout=torch.jagged)
    report = tt.analyze(torch.nn.Linear(4, 4), input_data=values)
    assert report.inputs[0].shape == (2, -1, 4)
    assert report.inputs[0].nbytes == 80
    assert report.total_macs == 80
