"""The shipped JSON Schemas (``tt.report_schema()``, ``tt.table_schema()``) describe what
``to_dict()`` really produces: every report of a wide spread of models validates (every
nullable and optional branch is taken by at least one of them), and the schemas are strict
enough to fail: an added, missing or mistyped field is rejected."""

from __future__ import annotations

import copy
import json
import warnings
from collections.abc import Callable, Iterator
from functools import cache
from typing import Any

import pytest
import torch
from torch import nn

import torchtally as tt
from torchtally.compare import compare
from torchtally.report import SCHEMA
from torchtally.report.tables import TABLE_SCHEMA

from seed_models import SharedConv, SmallCNN, UnusedConv

jsonschema = pytest.importorskip("jsonschema")
Draft202012Validator = jsonschema.Draft202012Validator


# --- the reports --------------------------------------------------------------------------


class DataDependentShape(nn.Module):
    """``nonzero`` has an output size only real values decide: the fake run falls back."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x).nonzero()


class Uncounted(nn.Module):
    """Operators without a cost formula (FFT, SVD): the report lists them as uncounted."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.lin(x)
        return torch.fft.fft(y).real + torch.linalg.svdvals(y).sum()


class Tied(nn.Module):
    """Weights held by two modules (and one by the root itself): ``shared_from`` is filled."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(4))
        self.encode = nn.Linear(4, 4)
        self.decode = nn.Linear(4, 4)
        self.decode.weight = self.encode.weight
        self.norm = nn.LayerNorm(4)
        self.norm.weight = self.scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.norm(self.encode(x)))


def _small_cnn() -> tt.ModelReport:
    return tt.analyze(SmallCNN(), (1, 3, 32, 32))


def _small_cnn_real() -> tt.ModelReport:
    return tt.analyze(SmallCNN(), (1, 3, 32, 32), run="real")


def _shared() -> tt.ModelReport:
    return tt.analyze(SharedConv(), (1, 1, 8, 8), mode="same")


def _tied() -> tt.ModelReport:
    return tt.analyze(Tied(), (2, 4))


def _unused() -> tt.ModelReport:
    return tt.analyze(UnusedConv(), (1, 1, 8, 8))


def _train_adam() -> tt.ModelReport:
    return tt.analyze(SmallCNN(), (2, 3, 32, 32), training=True, optimizer="adam")


def _train_no_optimizer() -> tt.ModelReport:
    return tt.analyze(SmallCNN(), (2, 3, 32, 32), training=True)


def _lazy() -> tt.ModelReport:
    return tt.analyze(nn.Sequential(nn.LazyLinear(3), nn.ReLU()), (2, 4))


def _real_fallback() -> tt.ModelReport:
    return tt.analyze(DataDependentShape(), (2, 4))


def _uncounted_training() -> tt.ModelReport:
    return tt.analyze(Uncounted(), (2, 4), training=True, optimizer="sgd")


def _nested_tensors() -> tt.ModelReport:
    """The encoder's fast path turns a padded batch into a nested tensor (ragged shapes: -1)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "The PyTorch API of nested tensors", UserWarning)
        layer = nn.TransformerEncoderLayer(16, 2, 32, batch_first=True)
        encoder = nn.TransformerEncoder(layer, 1, enable_nested_tensor=True).eval()
        mask = torch.zeros(2, 6, dtype=torch.bool)
        mask[0, 3:] = True
        return tt.analyze(encoder, input_data=(torch.randn(2, 6, 16),), src_key_padding_mask=mask)


def _gpt2() -> tt.ModelReport:
    transformers = pytest.importorskip("transformers")
    config = transformers.GPT2Config(
        n_layer=1, n_embd=32, n_head=2, vocab_size=100, n_positions=16, bos_token_id=0, eos_token_id=0
    )
    torch.manual_seed(0)
    return tt.analyze(transformers.GPT2LMHeadModel(config), (1, 8), dtypes=[torch.long])


def _gpt2_training() -> tt.ModelReport:
    transformers = pytest.importorskip("transformers")
    config = transformers.GPT2Config(
        n_layer=1, n_embd=32, n_head=2, vocab_size=100, n_positions=16, bos_token_id=0, eos_token_id=0
    )
    with torch.device("meta"):
        model = transformers.GPT2LMHeadModel(config)
    return tt.analyze(model, (1, 8), dtypes=[torch.long], training=True, optimizer="adamw")


def _mixture_of_experts() -> tt.ModelReport:
    """Routed experts: the only kind of report with ``active_params`` set."""
    transformers = pytest.importorskip("transformers")
    config = transformers.MixtralConfig(
        vocab_size=100, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4,
        num_key_value_heads=2, num_local_experts=4, num_experts_per_tok=2, bos_token_id=0, eos_token_id=0,
    )
    config._experts_implementation = "grouped_mm"
    with torch.device("meta"):
        model = transformers.MixtralForCausalLM(config)
    return tt.analyze(model, (1, 8), dtypes=[torch.long])


def _timed() -> tt.ModelReport:
    return tt.analyze(SmallCNN(), (2, 3, 32, 32), timing=tt.TimingOptions(warmup=1, repeats=2))


def _parallel_training() -> tt.ModelReport:
    # FSDP x TP with bf16 mixed precision and an optimizer: every field of report.parallel filled
    with torch.device("meta"):
        model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 8))
    plan = tt.Parallel(fsdp=2, tp=2, mixed_precision="bf16", tp_plan={"0": "colwise", "2": "rowwise"})
    return tt.analyze(model, (4, 8), training=True, optimizer="adam", parallel=plan)


def _resnet18_meta() -> tt.ModelReport:
    torchvision = pytest.importorskip("torchvision")
    with torch.device("meta"):
        model = torchvision.models.resnet18()
    return tt.analyze(model, (1, 3, 32, 32))


BUILDERS: dict[str, Callable[[], tt.ModelReport]] = {
    "small_cnn": _small_cnn,
    "small_cnn_real": _small_cnn_real,
    "shared_weights": _shared,
    "tied_weights": _tied,
    "unused_layer": _unused,
    "training_adam": _train_adam,
    "training_no_optimizer": _train_no_optimizer,
    "lazy": _lazy,
    "real_fallback": _real_fallback,
    "uncounted_training": _uncounted_training,
    "nested_tensors": _nested_tensors,
    "gpt2": _gpt2,
    "gpt2_training_meta": _gpt2_training,
    "mixture_of_experts": _mixture_of_experts,
    "resnet18_meta": _resnet18_meta,
    "timed": _timed,
    "parallel_training": _parallel_training,
}
# Those that need only torch: the branch coverage below must not depend on optional packages.
CORE = [name for name in BUILDERS if name not in ("gpt2", "gpt2_training_meta", "mixture_of_experts", "resnet18_meta")]


@cache
def _built(name: str) -> tt.ModelReport | BaseException:
    try:
        return BUILDERS[name]()
    except BaseException as exc:  # pytest.skip included: remembered, raised again per test
        return exc


def report(name: str) -> tt.ModelReport:
    built = _built(name)
    if isinstance(built, BaseException):
        raise built
    return built


def as_json(value: tt.ModelReport) -> dict[str, Any]:
    """What a consumer of ``to_json()`` reads."""
    loaded: dict[str, Any] = json.loads(value.to_json())
    return loaded


@cache
def _validator(which: str) -> Any:
    schema = tt.report_schema() if which == "report" else tt.table_schema()
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def report_validator() -> Any:
    return _validator("report")


def table_validator() -> Any:
    return _validator("table")


# --- the schemas themselves ---------------------------------------------------------------


@pytest.mark.parametrize("load", [tt.report_schema, tt.table_schema])
def test_schemas_are_valid_draft_2020_12(load: Callable[[], dict[str, Any]]) -> None:
    schema = load()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] and schema["title"] and schema["description"]
    Draft202012Validator.check_schema(schema)


def test_schemas_name_the_versions_the_code_writes() -> None:
    assert tt.report_schema()["properties"]["schema"]["const"] == SCHEMA == "torchtally.report/1"
    assert tt.table_schema()["properties"]["schema"]["const"] == TABLE_SCHEMA == "torchtally.table/1"


def _property_schemas(node: Any, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema that defines a field (under ``properties``), with its path; the
    conditional constraints under ``allOf`` restate fields and are not definitions."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "allOf":
                continue
            if key == "properties":
                for name, sub in value.items():
                    yield f"{path}.{name}", sub
                    yield from _property_schemas(sub, f"{path}.{name}")
            else:
                yield from _property_schemas(value, f"{path}/{key}")
    elif isinstance(node, list):
        for position, item in enumerate(node):
            yield from _property_schemas(item, f"{path}[{position}]")


@pytest.mark.parametrize("load", [tt.report_schema, tt.table_schema])
def test_every_property_is_described(load: Callable[[], dict[str, Any]]) -> None:
    fields = list(_property_schemas(load(), "#"))
    assert len(fields) > 10 if load is tt.report_schema else len(fields) == 5  # schema, title, columns, kinds, rows
    undescribed = [path for path, sub in fields if not str(sub.get("description", "")).strip()]
    assert not undescribed


def test_fixed_key_objects_are_closed() -> None:
    """Each object with named fields requires all of them and allows no other, so a field
    added to a ``to_dict()`` without the schema fails the tests above."""
    schema = tt.report_schema()
    closed = [schema, schema["properties"]["totals"], *schema["$defs"].values()]
    for node in closed:
        assert node["additionalProperties"] is False
        assert sorted(node["required"]) == sorted(node["properties"])
    assert set(schema["$defs"]) == {
        "TensorSpec", "OpStats", "Layer", "Memory", "MemoryTimeline", "TimingStats", "EstimateStats", "Hardware",
        "ParallelLayout", "CollectiveStats",
    }  # fmt: skip


# --- reports validate ---------------------------------------------------------------------


@pytest.mark.parametrize("name", list(BUILDERS))
def test_report_matches_the_schema(name: str) -> None:
    data = as_json(report(name))
    report_validator().validate(data)
    assert data == report(name).to_dict()  # JSON changes nothing: no tuples, no non-string keys


def test_the_spread_takes_every_branch() -> None:
    """The reports above exercise each nullable field as null and as a value, each enum
    value, and each optional list or map empty and not."""
    seen: set[tuple[str, Any]] = set()

    def kind(value: Any) -> str:
        if value is None:
            return "null"
        if isinstance(value, (list, dict)):
            return "filled" if value else "empty"
        return type(value).__name__

    names = list(CORE)
    try:
        pytest.importorskip("transformers")
        names.append("mixture_of_experts")
    except pytest.skip.Exception:
        pass
    for name in names:
        data = as_json(report(name))
        for key in ("fallback_reason", "optimizer", "unused_modules", "lazy_modules", "uncounted_ops"):
            seen.add((key, kind(data[key])))
        for key in ("execution", "mode", "training"):
            seen.add((key, data[key]))
        seen.add(("active_params", kind(data["totals"]["active_params"])))
        seen.add(("timing", kind(data["timing"])))
        seen.add(("parallel", kind(data["parallel"])))
        for key, value in data["memory"].items():
            seen.add((f"memory.{key}", value if key == "peak_phase" else kind(value)))
        for layer in data["layers"]:
            for key in ("parent", "kernel_size", "groups", "shared_from", "operators", "backward_operators", "lazy", "time", "self_time"):
                seen.add((f"layer.{key}", kind(layer[key]) if key != "lazy" else layer[key]))
            for call in layer["inputs"] + layer["outputs"]:
                for spec in call:
                    seen.add(("ragged shape", -1 in spec["shape"]))

    expected = {
        ("fallback_reason", "null"), ("fallback_reason", "str"),
        ("optimizer", "null"), ("optimizer", "str"),
        ("unused_modules", "empty"), ("unused_modules", "filled"),
        ("lazy_modules", "empty"), ("lazy_modules", "filled"),
        ("uncounted_ops", "empty"), ("uncounted_ops", "filled"),
        ("execution", "fake"), ("execution", "real"),
        ("mode", "eval"), ("mode", "train"), ("mode", "same"),
        ("training", False), ("training", True),
        ("active_params", "null"),
        ("memory.peak_phase", "forward"), ("memory.peak_phase", "backward"), ("memory.peak_phase", "optimizer step"),
        ("memory.measured_peak", "null"),
        ("layer.parent", "null"), ("layer.parent", "int"),
        ("layer.kernel_size", "null"), ("layer.kernel_size", "filled"),
        ("layer.groups", "null"), ("layer.groups", "int"),
        ("layer.shared_from", "empty"), ("layer.shared_from", "filled"),
        ("layer.operators", "empty"), ("layer.operators", "filled"),
        ("layer.backward_operators", "empty"), ("layer.backward_operators", "filled"),
        ("layer.lazy", False), ("layer.lazy", True),
        ("timing", "null"), ("timing", "filled"),
        ("parallel", "null"), ("parallel", "filled"),
        ("layer.time", "null"), ("layer.time", "float"), ("layer.self_time", "null"), ("layer.self_time", "float"),
        ("ragged shape", False), ("ragged shape", True),
    }
    for key in ("saved_for_backward", "backward_peak", "gradients", "optimizer_state", "optimizer_step_peak"):
        expected |= {(f"memory.{key}", "null"), (f"memory.{key}", "int")}
    if "mixture_of_experts" in names:
        expected.add(("active_params", "int"))
    assert expected <= seen, sorted(expected - seen, key=str)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_report_with_a_measured_peak() -> None:  # measured_peak is only measured in a real CUDA run
    model = SmallCNN().cuda()
    data = as_json(tt.analyze(model, (1, 3, 32, 32), run="real", training=True, optimizer="adam"))
    report_validator().validate(data)
    assert data["device"].startswith("cuda")


# --- the report schema can fail -----------------------------------------------------------


def _set(path: tuple[Any, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        node = data
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return change


def _delete(path: tuple[Any, ...]) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        node = data
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]

    return change


CONV1 = 1  # SmallCNN's rows: the root, then conv1 (a convolution: kernel size, groups, an operator)
BROKEN: dict[str, Callable[[dict[str, Any]], None]] = {
    "extra top-level key": _set(("total_params",), 1),
    "extra totals key": _set(("totals", "activations"), 0),
    "extra memory key": _set(("memory", "peak_bytes"), 0),
    "extra layer key": _set(("layers", CONV1, "stride"), [1, 1]),
    "extra tensor spec key": _set(("inputs", 0, "device"), "cpu"),
    "extra operator stats key": _set(("layers", CONV1, "operators", "aten.convolution", "bytes"), 0),
    "missing top-level key": _delete(("uncounted_ops",)),
    "missing schema": _delete(("schema",)),
    "missing totals key": _delete(("totals", "routed_params")),
    "missing memory key": _delete(("memory", "measured_peak")),
    "missing layer key": _delete(("layers", CONV1, "self_memory_write")),
    "missing tensor spec key": _delete(("layers", CONV1, "outputs", 0, 0, "nbytes")),
    "missing operator stats key": _delete(("layers", CONV1, "operators", "aten.convolution", "uncounted")),
    "another version": _set(("schema",), "torchtally.report/2"),
    "unknown execution": _set(("execution",), "compiled"),
    "unknown mode": _set(("mode",), "inference"),
    "unknown peak phase": _set(("memory", "peak_phase"), "loss"),
    "float count": _set(("totals", "macs"), 1.5),
    "count as text": _set(("layers", CONV1, "params"), "448"),
    "boolean count": _set(("layers", CONV1, "macs"), True),
    "negative bytes": _set(("memory", "peak"), -1),
    "negative parent": _set(("layers", CONV1, "parent"), -1),
    "null where not nullable": _set(("totals", "params"), None),
    "ragged below -1": _set(("inputs", 0, "shape"), [1, -2]),
    "operator stats not an object": _set(("layers", CONV1, "operators", "aten.convolution"), 3),
    "uncounted calls not a count": _set(("uncounted_ops",), {"aten.fft": "1"}),
    "no layers": _set(("layers",), []),
    "tensor spec not an object": _set(("layers", CONV1, "inputs", 0), [[1, 3, 32, 32]]),
    # the documented relations between fields
    "fake run with a fallback reason": _set(("fallback_reason",), "because"),
    "inference with an optimizer": _set(("optimizer",), "adam"),
    "inference with gradients": _set(("memory", "gradients"), 0),
    "inference with backward cost": _set(("totals", "backward_macs"), 1),
}


@pytest.mark.parametrize("change", list(BROKEN.values()), ids=list(BROKEN))
def test_schema_rejects_a_broken_report(change: Callable[[dict[str, Any]], None]) -> None:
    data = as_json(report("small_cnn"))
    report_validator().validate(data)  # intact, it validates
    broken = copy.deepcopy(data)
    change(broken)
    assert broken != data
    assert not report_validator().is_valid(broken)


def test_training_reports_need_their_training_figures() -> None:
    data = as_json(report("training_adam"))
    report_validator().validate(data)
    for key in ("gradients", "optimizer_state", "optimizer_step_peak", "saved_for_backward", "backward_peak"):
        broken = copy.deepcopy(data)
        broken["memory"][key] = None
        assert not report_validator().is_valid(broken), key
    without_optimizer = copy.deepcopy(data)
    without_optimizer["optimizer"] = None  # its step's cost and memory cannot stay
    assert not report_validator().is_valid(without_optimizer)


# --- tables -------------------------------------------------------------------------------


def _tables() -> dict[str, tt.DataTable]:
    tables: dict[str, tt.DataTable] = {}
    for name in ("small_cnn", "training_adam", "uncounted_training", "shared_weights", "nested_tensors"):
        tables[f"{name}.by_operator"] = report(name).by_operator()
        tables[f"{name}.by_type"] = report(name).by_type()
    tables["compare"] = compare({"a": report("small_cnn"), "b": report("training_adam")})
    tables["compare_unnamed"] = compare([report("unused_layer"), report("lazy"), report("real_fallback")])
    return tables


def test_tables_match_the_schema() -> None:
    for name, table in _tables().items():
        data = json.loads(table.to_json())
        table_validator().validate(data)
        assert data["rows"], name
        assert all(list(row) == data["columns"] for row in data["rows"]), name  # what the schema cannot say


@pytest.mark.parametrize("name", ["gpt2", "resnet18_meta"])
def test_tables_of_larger_models_match_the_schema(name: str) -> None:
    tables = [report(name).by_operator(), report(name).by_type(), compare({name: report(name), "cnn": report("small_cnn")})]
    for table in tables:
        table_validator().validate(json.loads(table.to_json()))


@pytest.mark.parametrize(
    "change",
    [
        _set(("units",), {}),
        _delete(("rows",)),
        _delete(("title",)),
        _set(("schema",), "torchtally.report/1"),
        _set(("rows", 0, "model"), ["a"]),
        _set(("rows", 0, "params"), {"value": 1}),
        _set(("columns",), ["model", "model"]),
        _set(("rows",), [["a", 1]]),
    ],
    ids=["extra key", "missing rows", "missing title", "report version", "list cell", "object cell",
         "repeated column", "row as a list"],
)
def test_table_schema_rejects_a_broken_table(change: Callable[[dict[str, Any]], None]) -> None:
    data = json.loads(compare({"a": report("small_cnn")}).to_json())
    table_validator().validate(data)
    broken = copy.deepcopy(data)
    change(broken)
    assert not table_validator().is_valid(broken)
