"""Guarantee 4, clear errors: every error torchtally raises is a `tt.TorchtallyError` that says
what was wrong (and, for a failing forward, where and with which shapes), chained to the
original exception."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

import torchtally as tt
from helpers import DataDependent, TwoInputs


class Stem(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(x))


class SmallCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = Stem()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.stem(x)).flatten(1))


def test_error_classes() -> None:
    assert issubclass(tt.InputError, tt.TorchtallyError) and issubclass(tt.InputError, ValueError)
    assert issubclass(tt.ForwardError, tt.TorchtallyError) and issubclass(tt.ForwardError, RuntimeError)
    assert issubclass(tt.FormulaError, tt.TorchtallyError)
    assert issubclass(tt.TorchtallyError, Exception)


# ---------------------------------------------------------------------------------------------
# A forward that fails
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("run", ["auto", "fake", "real"])
def test_wrong_input_shape_names_module_type_and_shape(run: str) -> None:
    # 4 channels into stem.conv, which takes 3.
    with pytest.raises(tt.TorchtallyError) as info:
        tt.analyze(SmallCNN(), (1, 4, 32, 32), run=run)
    error = info.value
    assert isinstance(error, tt.ForwardError)
    message = str(error)
    assert "stem.conv" in message
    assert "Conv2d" in message
    assert "[1, 4, 32, 32]" in message
    assert error.module_path == "stem.conv" and error.module_type == "Conv2d"
    assert error.input_shapes == ("[1, 4, 32, 32] float32",)
    # Chained to torch's own exception, whose text is repeated in the message.
    assert isinstance(error.__cause__, RuntimeError)
    assert not isinstance(error.__cause__, tt.TorchtallyError)
    assert "channels" in str(error.__cause__)
    assert type(error.__cause__).__name__ in message


@pytest.mark.parametrize("run", ["auto", "real"])
def test_wrong_feature_size_in_a_linear_layer(run: str) -> None:
    # TwoInputs.b takes 6 features; given 5.
    with pytest.raises(tt.ForwardError) as info:
        tt.analyze(TwoInputs(), [(2, 4), (2, 5)], run=run)
    assert info.value.module_path == "b" and info.value.module_type == "Linear"
    assert info.value.input_shapes == ("[2, 5] float32",)
    assert "module 'b' (Linear)" in str(info.value)
    assert info.value.__cause__ is not None


def test_error_in_the_root_forward_names_the_root() -> None:
    class Root(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.lin(x).view(3, -1)  # 2*4 = 8 elements do not split into rows of 3

    with pytest.raises(tt.ForwardError) as info:
        tt.analyze(Root(), (2, 4))
    assert info.value.module_path == "" and info.value.module_type == "Root"
    assert "root module (Root)" in str(info.value)
    assert "[2, 4]" in str(info.value)
    assert isinstance(info.value.__cause__, RuntimeError)


# ---------------------------------------------------------------------------------------------
# Bad arguments
# ---------------------------------------------------------------------------------------------

INPUT_SIZE_USAGE = "input_size must be one shape such as (1, 3, 224, 224)"


@pytest.mark.parametrize(
    "input_size",
    [
        "abc",
        [[1, 2], "x"],
        (2, 3.5),
        [(1, 2), (3, None)],
        {"x": "abc"},
        {1: (2, 3)},
        7,
    ],
    ids=repr,
)
def test_malformed_input_size(input_size: Any) -> None:
    with pytest.raises(tt.InputError) as info:
        tt.analyze(nn.Linear(2, 2), input_size)
    assert INPUT_SIZE_USAGE in str(info.value)
    assert "a list of shapes" in str(info.value) and "a dict of shapes" in str(info.value)


@pytest.mark.parametrize("input_size", [[(1, -3)], (1, -3), {"x": (2, -1)}], ids=repr)
def test_negative_dimensions(input_size: Any) -> None:
    with pytest.raises(tt.InputError) as info:
        tt.analyze(nn.Linear(2, 2), input_size)
    message = str(info.value)
    assert "input_size" in message and "must be >= 0" in message
    assert "-3" in message or "-1" in message


def test_both_input_size_and_input_data() -> None:
    with pytest.raises(tt.InputError, match="either input_size or input_data, not both"):
        tt.analyze(nn.Linear(2, 2), (1, 2), input_data=torch.zeros(1, 2))


def test_neither_input_size_nor_input_data() -> None:
    with pytest.raises(tt.InputError) as info:
        tt.analyze(nn.Linear(2, 2))
    assert "input_size=" in str(info.value) and "input_data=" in str(info.value)


@pytest.mark.parametrize(
    "argument,value,allowed",
    [("mode", "evaluate", ("eval", "train", "same")), ("run", "sometimes", ("auto", "fake", "real"))],
)
def test_bad_choice_lists_the_allowed_values(argument: str, value: str, allowed: tuple[str, ...]) -> None:
    with pytest.raises(tt.InputError) as info:
        tt.analyze(nn.Linear(2, 2), (1, 2), **{argument: value})
    message = str(info.value)
    assert message.startswith(f"{argument} must be one of")
    for choice in allowed:
        assert repr(choice) in message
    assert repr(value) in message


def test_bad_choice_is_rejected_before_anything_runs() -> None:
    ran: list[bool] = []

    class Spy(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            ran.append(True)
            return x

    with pytest.raises(tt.InputError):
        tt.analyze(Spy(), (1, 2), mode="training")
    assert ran == []


def test_dtypes_of_the_wrong_length() -> None:
    # Two inputs described, three dtypes given.
    with pytest.raises(tt.InputError) as info:
        tt.analyze(TwoInputs(), [(2, 4), (2, 6)], dtypes=[torch.float32, torch.float32, torch.long])
    assert "dtypes has 3 entries" in str(info.value) and "describes 2 inputs" in str(info.value)


@pytest.mark.parametrize("dtypes", [["float32"], "float32", torch.float32], ids=repr)
def test_dtypes_that_are_not_dtypes_or_do_not_apply(dtypes: Any) -> None:
    with pytest.raises(tt.InputError) as info:
        if isinstance(dtypes, torch.dtype):  # a valid dtype, but input_data already has its dtypes
            tt.analyze(nn.Linear(2, 2), input_data=torch.zeros(1, 2), dtypes=dtypes)
        else:
            tt.analyze(nn.Linear(2, 2), (1, 2), dtypes=dtypes)
    assert "dtypes" in str(info.value)


@pytest.mark.parametrize("device", ["cuda:0", "meta", torch.device("meta")], ids=str)
def test_device_other_than_the_models(device: Any) -> None:
    model = nn.Linear(2, 2)
    with pytest.raises(tt.InputError) as info:
        tt.analyze(model, (1, 2), device=device)
    message = str(info.value)
    assert "never moves the model" in message
    assert "cpu" in message and str(torch.device(device)) in message
    assert model.weight.device.type == "cpu"


def test_device_torch_does_not_know() -> None:
    with pytest.raises(tt.InputError, match="not a device torch knows"):
        tt.analyze(nn.Linear(2, 2), (1, 2), device="gpu7")


def test_device_equal_to_the_models_is_accepted() -> None:
    assert tt.analyze(nn.Linear(2, 2), (1, 2), device="cpu").device == "cpu"


@pytest.mark.parametrize(
    "model",
    [nn.Linear, lambda x: x, "resnet18", torch.zeros(2), [nn.Linear(2, 2)]],
    ids=["a class, not an instance", "a function", "a string", "a tensor", "a list"],
)
def test_not_a_module(model: Any) -> None:
    with pytest.raises(tt.InputError) as info:
        tt.analyze(model, (1, 2))
    assert "model must be a torch.nn.Module" in str(info.value)
    assert type(model).__name__ in str(info.value)


def test_summary_raises_the_same_errors() -> None:
    with pytest.raises(tt.InputError, match="model must be a torch.nn.Module"):
        tt.summary(nn.Linear, (1, 2))
    with pytest.raises(tt.InputError, match="mode must be one of"):
        tt.summary(nn.Linear(2, 2), (1, 2), mode="evaluate")


def test_clashing_keyword_arguments() -> None:
    with pytest.raises(tt.InputError, match="given both in the inputs and as forward keyword arguments"):
        tt.analyze(TwoInputs(), {"x": (2, 4), "y": (2, 6)}, y=torch.zeros(2, 6))


# ---------------------------------------------------------------------------------------------
# Models that fake tensors cannot run
# ---------------------------------------------------------------------------------------------


def test_data_dependent_model_with_run_fake() -> None:
    with pytest.raises(tt.TorchtallyError) as info:
        tt.analyze(DataDependent(), (2, 4), run="fake")
    message = str(info.value)
    assert "fake tensors" in message
    assert "run='auto' or 'real'" in message
    assert info.value.__cause__ is not None  # the fake-tensor exception


def test_data_dependent_model_with_run_auto_falls_back_to_real() -> None:
    report = tt.analyze(DataDependent(), (2, 4))
    assert report.execution == "real"
    assert report.fallback_reason  # not None, not empty
    assert "fake tensors" in report.fallback_reason
    assert "root module" in report.fallback_reason  # the `if` is in the root's forward
    assert report.to_dict()["fallback_reason"] == report.fallback_reason
    # The real run counted the layer: 2 rows x 4 in x 4 out.
    assert report.layer("lin").macs == 2 * 4 * 4


def test_fallback_reason_names_the_data_dependent_submodule() -> None:
    model = nn.Sequential(nn.Linear(4, 4), DataDependent())
    report = tt.analyze(model, (2, 4))
    assert report.execution == "real"
    assert report.fallback_reason is not None and "module '1' (DataDependent)" in report.fallback_reason
    # Both layers were counted in the real run: two (2, 4) x (4, 4) products.
    assert report.total_macs == 2 * (2 * 4 * 4)


def test_model_without_data_dependence_has_no_fallback_reason() -> None:
    report = tt.analyze(SmallCNN(), (1, 3, 8, 8))
    assert report.execution == "fake" and report.fallback_reason is None


@pytest.mark.parametrize("run", ["auto", "fake"])
def test_data_dependent_model_on_meta_cannot_run_at_all(run: str) -> None:
    with torch.device("meta"):
        model = DataDependent()
    with pytest.raises(tt.NeedsRealValues) as info:  # its own class: the command line builds such a model again
        tt.analyze(model, (2, 4), run=run)
    message = str(info.value)
    assert "fake tensors" in message
    if run == "auto":
        assert "meta device" in message and "real run is impossible" in message
    assert model.lin.weight.device.type == "meta"


def test_data_dependent_model_on_meta_with_run_real() -> None:
    # A "real" run on meta tensors has no values either; whatever fails, it is a torchtally error.
    with torch.device("meta"):
        model = DataDependent()
    with pytest.raises(tt.TorchtallyError) as info:
        tt.analyze(model, (2, 4), run="real")
    assert isinstance(info.value, tt.ForwardError)
    assert "meta" in str(info.value)  # torch's reason: .item() cannot be called on meta tensors
    assert info.value.input_shapes == ("[2, 4] float32",)


class FastThenSlow(nn.Module):
    """A forward that handles its fast path's exception and fails in the slow path."""

    def __init__(self) -> None:
        super().__init__()
        self.fast = nn.Identity()
        self.slow = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        try:
            return self.fast(x).view(3, -1, 7)  # 2 x 8 elements cannot be viewed like this
        except RuntimeError:
            return self.slow(x)  # and the input has 8 features, not 4


def test_error_names_the_module_that_failed_not_one_whose_error_was_handled() -> None:
    with pytest.raises(tt.ForwardError) as caught:
        tt.analyze(FastThenSlow(), (2, 8))
    assert caught.value.module_path == "slow"


def test_depth_must_be_a_whole_number() -> None:
    report = tt.analyze(nn.Linear(2, 2), (1, 2))
    for bad in (-1, "2", 1.5):
        with pytest.raises(tt.InputError, match="depth"):
            report.table(depth=bad)  # type: ignore[arg-type]


def test_bad_formulas_and_costs_are_reported() -> None:
    with pytest.raises(tt.InputError, match="not callable"):
        tt.register_formula("aten::mm", 5)  # type: ignore[arg-type]
    with pytest.raises(tt.InputError, match="whole number"):
        tt.Cost(macs=1.5)  # type: ignore[arg-type]
    with pytest.raises(tt.FormulaError, match="must return a Cost"):
        tt.analyze(nn.Linear(2, 2), (1, 2), formulas={"aten::addmm": lambda *a, out, **k: 7})


def test_dtypes_naming_an_unknown_input() -> None:
    with pytest.raises(tt.InputError, match="input_size does not"):
        tt.analyze(TwoInputs(), {"x": (2, 4), "y": (2, 6)}, dtypes={"z": torch.long})


def test_lazy_model_that_cannot_be_copied() -> None:
    import threading

    model = nn.Sequential(nn.LazyLinear(3))
    model.lock = threading.Lock()  # type: ignore[assignment]
    with pytest.raises(tt.InputError, match="deep-copied"):
        tt.analyze(model, (1, 4))
