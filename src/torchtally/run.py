"""The orchestrator: check the arguments, run the model once under the counting mode (on
fake tensors unless real values are needed), restore the model, build the report."""

from __future__ import annotations

import contextlib
import copy
import logging
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch import nn
from torch._subclasses import fake_tensor

from .build import build_report
from .counting import CountingMode
from .fakes import FakeConverter
from .errors import ForwardError, InputError, TorchtallyError, describe_module
from .formulas.registry import Formula, OpLike, per_call_registry
from .formulas.resolve import CostModel
from .guard import ModelState
from .inputs import DtypeSpec, InputPlan, InputSize, model_device, model_float_dtype
from .params import ParameterIndex, has_lazy_tensors
from .report import ModelReport
from .structures import describe_specs
from .tracking import ModuleTracker
from .tree import ModuleNode, module_tree

MODES = ("eval", "train", "same")
RUNS = ("auto", "fake", "real")

# What fake tensors cannot do: produce values, or shapes that depend on values.
_FAKE_LIMITS: tuple[type[BaseException], ...] = tuple(
    cls
    for cls in (
        getattr(fake_tensor, "DataDependentOutputException", None),
        getattr(fake_tensor, "DynamicOutputShapeException", None),
        getattr(fake_tensor, "UnsupportedOperatorException", None),
        getattr(fake_tensor, "UnsupportedFakeTensorException", None),
    )
    if cls is not None
)


class _NeedsRealRun(Exception):
    """A fake run hit something only real values can do; carries the reason for the report."""


def _choice(value: Any, allowed: tuple[str, ...], name: str) -> str:
    if value not in allowed:
        raise InputError(f"{name} must be one of {', '.join(repr(a) for a in allowed)}; got {value!r}")
    return str(value)


def _resolve_device(model: nn.Module, device: str | torch.device | None) -> torch.device:
    current = model_device(model)
    if device is None:
        return current
    try:
        wanted = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InputError(f"device={device!r} is not a device torch knows") from exc
    if wanted.type == current.type and wanted.index is None:
        return current
    has_tensors = any(True for _ in model.parameters()) or any(True for _ in model.buffers())
    if has_tensors and wanted != current:
        raise InputError(
            f"the model's parameters are on {current} but device={str(wanted)!r}; analysis never moves "
            f"the model: move it yourself (model.to({str(wanted)!r})) or leave device unset"
        )
    return wanted


def _is_fake_limitation(exc: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, _FAKE_LIMITS):
            return True
        if isinstance(current, RuntimeError) and "not supported for tensor subclasses" in str(current):
            return True  # .numpy() and friends on a fake tensor
        current = current.__cause__ or current.__context__
    return False


def _where(nodes: list[ModuleNode], tracker: ModuleTracker, exc: BaseException) -> tuple[ModuleNode, list[str]]:
    failure = tracker.failure_for(exc)
    if failure is not None:
        return nodes[failure.index], describe_specs(failure.inputs)
    root_inputs = tracker.records[0].inputs
    return nodes[0], describe_specs(root_inputs[-1]) if root_inputs else []


@contextlib.contextmanager
def _silenced(logger: logging.Logger) -> Iterator[None]:
    """FakeTensorMode logs a traceback for every failing operator; the error we raise says it
    all, and analysis must not write to the terminal."""
    previous = logger.disabled
    logger.disabled = True
    try:
        yield
    finally:
        logger.disabled = previous


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def _run_once(
    model: nn.Module,
    plan: InputPlan,
    device: torch.device,
    mode: str,
    cost_model: CostModel,
    *,
    fake: bool,
    fallback_reason: str | None,
) -> ModelReport:
    nodes = module_tree(model)
    index = ParameterIndex(nodes)
    state = ModelState(nodes)
    tracker = ModuleTracker(nodes)
    fake_mode = fake_tensor.FakeTensorMode(allow_non_fake_inputs=True) if fake else None
    # A fake run of a meta-device model runs as if on the CPU: PyTorch picks its kernels by
    # device (fused attention, RNN and multi-head-attention fast paths exist for the CPU, not
    # for meta), so this counts what a real CPU run would execute.
    run_device = torch.device("cpu") if fake and device.type == "meta" else device
    try:
        if not fake:
            state.copy_buffers()
        if mode != "same":
            model.train(mode == "train")
        with torch.no_grad():
            fakes = FakeConverter(fake_mode, meta_as=run_device) if fake_mode is not None else None
            try:
                args, kwargs = plan.materialize(run_device, fakes)
            except (RuntimeError, TypeError, ValueError) as exc:
                raise InputError(f"could not create the inputs on {device}: {exc}") from exc
            counting = CountingMode(tracker, cost_model, index, fakes, None if fake else state)
            tracker.attach()
            with contextlib.ExitStack() as modes:
                if fake_mode is not None:
                    modes.enter_context(_silenced(fake_tensor.log))
                    modes.enter_context(fake_mode)
                modes.enter_context(counting)
                model(*args, **kwargs)
    except TorchtallyError:
        raise
    except Exception as exc:
        node, shapes = _where(nodes, tracker, exc)
        where = describe_module(node.name, type(node.module).__name__)
        if fake and _is_fake_limitation(exc):
            raise _NeedsRealRun(f"{where} needs real values, which fake tensors do not have ({_first_line(exc)})") from exc
        raise ForwardError(node.name, type(node.module).__name__, shapes, f"{type(exc).__name__}: {exc}") from exc
    finally:
        tracker.detach()
        state.restore()
    return build_report(
        type(model).__name__,
        nodes,
        tracker.records,
        index,
        execution="fake" if fake else "real",
        fallback_reason=fallback_reason,
        mode=mode,
        device=str(device),
    )


def analyze(
    model: nn.Module,
    input_size: InputSize | None = None,
    *,
    input_data: Any = None,
    dtypes: DtypeSpec = None,
    device: str | torch.device | None = None,
    mode: str = "eval",
    run: str = "auto",
    formulas: Mapping[OpLike, Formula] | None = None,
    forward_kwargs: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> ModelReport:
    """Analyse one forward pass of ``model`` and return the report. Prints nothing.

    Args:
        model: any ``nn.Module``; it is left exactly as it was (see the README's guarantees).
        input_size: the shape of the input (any rank), a list of shapes for several
            positional inputs, or a dict of shapes by argument name.
        input_data: the inputs themselves instead: a tensor, a tuple/list (positional
            arguments), a dict (keyword arguments) or any nested structure of tensors.
        dtypes: dtype per input of ``input_size`` (e.g. ``[torch.long]`` for token ids);
            floating inputs default to the model's own floating dtype.
        device: where the inputs go; defaults to the model's device. The model is never moved.
        mode: ``"eval"`` (default), ``"train"`` or ``"same"`` (leave the flags as they are).
        run: ``"auto"`` (fake tensors, falling back to a real run when the model needs real
            values), ``"fake"`` (never compute) or ``"real"``.
        formulas: extra cost formulas for this call only, ``{op: formula}``.
        forward_kwargs / **kwargs: keyword arguments passed on to ``model.forward``.
    """
    if not isinstance(model, nn.Module):
        raise InputError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    mode = _choice(mode, MODES, "mode")
    run = _choice(run, RUNS, "run")
    cost_model = CostModel(per_call_registry(formulas))
    target = model
    fallback_reason = None
    if has_lazy_tensors(model):
        if run == "fake":
            raise InputError("the model has lazy (uninitialized) parameters; they need a real run (run='auto' or 'real')")
        # Materialising lazy parameters rewrites the modules, so that happens on a copy.
        try:
            target = copy.deepcopy(model)
        except Exception as exc:  # noqa: BLE001 - any object in the model may refuse copying
            raise InputError(
                "the model has lazy (uninitialized) parameters, which only a forward can materialise, and "
                f"analysis does that on a copy; but the model cannot be deep-copied ({type(exc).__name__}: {exc}). "
                "Run one forward pass yourself first to materialise them."
            ) from exc
        run = "real"
        fallback_reason = "the model has lazy (uninitialized) parameters, materialised on a copy by a real forward"
    run_device = _resolve_device(target, device)
    plan = InputPlan.from_arguments(
        input_size, input_data, dtypes, {**(forward_kwargs or {}), **kwargs}, model_float_dtype(target)
    )
    if run != "real":
        try:
            return _run_once(target, plan, run_device, mode, cost_model, fake=True, fallback_reason=None)
        except _NeedsRealRun as limit:
            if run == "fake":
                raise TorchtallyError(f"the model cannot run on fake tensors: {limit}; use run='auto' or 'real'") from limit.__cause__
            if run_device.type == "meta":
                raise TorchtallyError(
                    f"the model cannot be analysed on fake tensors ({limit}) and its parameters are on the "
                    "meta device, so a real run is impossible"
                ) from limit.__cause__
            fallback_reason = str(limit)
        except ForwardError as failure:
            # Fake kernels are not PyTorch's real ones: some are stricter (dtype checks), some
            # tensor kinds cannot be faked (nested tensors). The real run decides: it raises the
            # same error for a genuinely wrong input, or succeeds and says so in the report.
            if run == "fake" or run_device.type == "meta":
                raise
            where = describe_module(failure.module_path, failure.module_type)
            fallback_reason = f"the fake run failed in {where} ({failure.reason.splitlines()[0]})"
    return _run_once(target, plan, run_device, mode, cost_model, fake=False, fallback_reason=fallback_reason)
