"""The orchestrator: check the arguments, run the model once under the counting mode (on
fake tensors unless real values are needed), restore the model, build the report."""

from __future__ import annotations

import contextlib
import contextvars
import copy
import inspect
import logging
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch._subclasses import fake_tensor
from torch.export import ExportedProgram

from .build import build_report, with_timing
from .collector import collector_paused
from .counting import CountingMode
from .fakes import FakeConverter, is_fake_limitation
from ..errors import ForwardError, InputError, NeedsRealValues, TorchtallyError, describe_module
from ..formulas.registry import Formula, OpLike, per_call_registry
from ..formulas.resolve import CostModel
from .guard import ModelState
from .memory import RunMemory, storage_bytes
from .optim import OptimizerFactory, OptimizerSpec, optimizer_factory, optimizer_step
from .inputs import DtypeSpec, InputPlan, InputSize, model_device, model_float_dtype, tensors_within
from .parallel import (
    check_cluster_open, describe_layout, dtensor_shaping_flagged, fake_mode_of, fsdp_groups, fsdp_storage_followed,
    is_distributed, local_gradient, local_tensor, original_class,
)  # fmt: skip
from .params import ParameterIndex, has_lazy_tensors
from ..report.model import ModelReport
from .tensors import describe_specs, iter_tensors
from .training import GradientBytes, LossFn, backward_targets, seed_gradients, stand_in_parameters
from .tracking import Failure, ModuleTracker
from .timing import TimingOptions, measure, timing_options
from .patching import room_for_wrappers
from .tree import ModuleNode, module_tree
from .exported import as_module, fixed_mode, mode_is_fixed
from .twins import twins_in_slots

MODES = ("eval", "train", "same")
RUNS = ("auto", "fake", "real")
# One analysis at a time in a process: a run changes process-wide state (module forwards,
# global hooks, RNGs, the recursion limit) and restores it afterwards, which two runs at once
# would interleave. A second thread's analysis waits for the first; re-entry (an analysis
# started from inside a model's forward) is allowed.
ANALYSIS_LOCK = threading.RLock()
# Set by a caller that chains runs (generation: each step's cache feeds the next): the model's
# output of every fake run is appended to it instead of being dropped.
OUTPUT_SINK: contextvars.ContextVar[list[Any] | None] = contextvars.ContextVar("torchtally_output_sink", default=None)

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


def _where(nodes: list[ModuleNode], tracker: ModuleTracker, failure: Failure | None) -> tuple[ModuleNode, list[str]]:
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


@dataclass(frozen=True)
class TrainingPlan:
    """What a training analysis adds to the forward."""

    loss_fn: LossFn | None
    optimizer_name: str | None
    optimizer: OptimizerFactory | None


@contextlib.contextmanager
def _autograd_on() -> Iterator[None]:
    with torch.inference_mode(False), torch.enable_grad():
        yield


@contextlib.contextmanager
def _autograd_off() -> Iterator[None]:
    """No autograd, and out of the caller's inference mode: inside it, composite operators
    (scaled_dot_product_attention) reach the counting mode whole instead of as the kernels
    they run, which the formulas know."""
    with torch.inference_mode(False), torch.no_grad():
        yield


def _measured_cuda_peak(device: torch.device, before: int | None) -> int | None:
    """The peak allocated during a real CUDA run, read without resetting the user's statistics:
    known only when the run set a new high-water mark."""
    if before is None:
        return None
    after = int(torch.cuda.max_memory_allocated(device))
    return after if after > before else None


def _run_once(
    model: nn.Module,
    plan: InputPlan,
    device: torch.device,
    mode: str,
    cost_model: CostModel,
    *,
    fake: bool,
    fallback_reason: str | None,
    training: TrainingPlan | None,
) -> ModelReport:
    nodes = module_tree(model)
    index = ParameterIndex(nodes)
    state = ModelState(nodes)
    tracker = ModuleTracker(nodes)
    # A model whose tensors are fake already (sharded in a simulated cluster) runs in their mode.
    fake_mode = (fake_mode_of(model) or fake_tensor.FakeTensorMode(allow_non_fake_inputs=True)) if fake else None
    sharded = any(is_distributed(param) for param in index.parameters())
    # A fake run of a meta-device model runs as if on the CPU: PyTorch picks its kernels by
    # device (fused attention, RNN and multi-head-attention fast paths exist for the CPU, not
    # for meta), so this counts what a real CPU run would execute.
    run_device = torch.device("cpu") if fake and device.type == "meta" else device
    figures = RunMemory()
    cuda_before = None if fake or device.type != "cuda" else int(torch.cuda.max_memory_allocated(device))
    counting: CountingMode | None = None
    try:
        if not fake:
            state.copy_buffers()
        if mode in ("eval", "train"):
            model.train(mode == "train")
        # Training needs autograd even when called under no_grad or inference_mode.
        grad_mode = _autograd_off() if training is None else _autograd_on()
        with grad_mode:
            fakes = FakeConverter(fake_mode, meta_as=run_device) if fake_mode is not None else None
            try:
                with torch.no_grad():
                    args, kwargs = plan.materialize(run_device, fakes)
            except (RuntimeError, TypeError, ValueError) as exc:
                raise InputError(f"could not create the inputs on {device}: {exc}") from exc
            # A sharded model is a fake copy (ours, or the user's simulated one, whose `.grad`
            # the guard resets): it trains as it is, FSDP keeping its own parameter objects.
            if fakes is not None and device.type == "meta" and not sharded:  # its code sees its tensors on the CPU too
                stand_ins = twins_in_slots(nodes, index, fakes)
            else:
                stand_ins = stand_in_parameters(nodes, index, fakes) if training is not None and not sharded else []
            gradient_bytes = GradientBytes(stand_ins if training is not None else [])
            counting = CountingMode(tracker, cost_model, index, fakes, None if fake else state)
            live = counting.live
            live.where = tracker._row  # the module running at each change, for the memory timeline
            tracker.attach()
            with contextlib.ExitStack() as modes:
                modes.enter_context(room_for_wrappers(nodes))
                if fake_mode is not None:
                    modes.enter_context(_silenced(fake_tensor.log))
                    modes.enter_context(fake_mode)
                modes.enter_context(counting)
                if sharded:
                    modes.enter_context(dtensor_shaping_flagged(counting))
                    modes.enter_context(fsdp_storage_followed(live))
                if training is not None:  # through the backward too: checkpointing creates nodes there
                    modes.enter_context(tracker.autograd_nodes_labelled())
                # Every tensor handed in, also inside objects (a cache), before the forward edits them.
                figures.inputs = storage_bytes(tensors_within((args, kwargs)))
                output = model(*args, **kwargs)
                sink = OUTPUT_SINK.get()
                if sink is not None and fake:
                    sink.append(output)
                if training is not None:  # a loss_fn's work is forward work
                    targets = backward_targets(output, training.loss_fn)
                figures.forward_peak, figures.forward_end = live.peak, live.current
                figures.outputs = storage_bytes(iter_tensors(output))
                figures.outputs_alive = live.bytes_of(iter_tensors(output))
                if training is not None:
                    tracker.in_backward = True
                    live.reset_peak()
                    seeds = seed_gradients(targets)
                    torch.autograd.backward(targets, seeds)
                    del targets, seeds
                    figures.backward_peak, figures.backward_end = live.peak, live.current
                    trained = index.parameters() if sharded else stand_ins
                    grads = [(p, local_gradient(p, p.grad)) for p in trained if p.grad is not None]
                    figures.gradients = gradient_bytes.total(grads)
                figures.trace = live.trace([grad for _, grad in grads] if training is not None else ())
                del output
            if training is not None and training.optimizer is not None:
                # Outside the run's modes: the step runs in a fake mode of its own, on this
                # rank's shards of the parameters.
                figures.step = optimizer_step(training.optimizer, [(local_tensor(p), g) for p, g in grads], cost_model)
    except TorchtallyError:
        raise
    except Exception as exc:
        failure = tracker.failure_for(exc)
        node, shapes = _where(nodes, tracker, failure)
        where = describe_module(node.name, original_class(node.module).__name__)
        found = failure is not None
        in_loss_fn = not found and not tracker.in_backward and bool(tracker.records[0].outputs)
        if in_loss_fn and training is not None and training.loss_fn is not None:
            where = "loss_fn"  # the root's forward had returned and the backward had not begun
        if fake and is_fake_limitation(exc):
            raise _NeedsRealRun(f"{where} needs real values, which fake tensors do not have ({_first_line(exc)})") from exc
        if tracker.in_backward:
            # Named only when a module's forward was running (a checkpoint's recomputation):
            # autograd's error does not say which node failed.
            place = f" in {where}" if found else ""
            raise TorchtallyError(f"the backward pass failed{place} ({type(exc).__name__}: {exc})") from exc
        raise ForwardError(node.name, original_class(node.module).__name__, shapes, f"{type(exc).__name__}: {exc}") from exc
    finally:
        if counting is not None:
            counting.live.stop()
        if training is not None:
            # Inside the caller's autocast region, the casts of our stand-in parameters sit in
            # autocast's weight-cast cache until the region ends (real memory in a real run).
            # The cache only saves recomputation, and is empty outside autocast regions.
            torch.clear_autocast_cache()
        tracker.detach()
        state.restore()
    figures.measured_peak = _measured_cuda_peak(device, cuda_before)
    assert counting is not None
    for row, gathered in fsdp_groups(nodes):
        if tracker.records[row].calls:  # FSDP gathered them for its forward: read, through the all-gather
            index.read.update(id(param) for param in gathered)
    layout = describe_layout(model, nodes, index.local_params(), tracker.transfers) if sharded else None
    routed = {}  # numel of each routed (expert) parameter -> elements one token uses on average
    for param in index.parameters():
        share = counting.weights.active_share(id(param), param.numel())
        if share is not None:
            routed[id(param)] = (param.numel(), share)
    return build_report(
        original_class(model).__name__,
        nodes,
        tracker.records,
        index,
        figures,
        routed=list(routed.values()),
        execution="fake" if fake else "real",
        fallback_reason=fallback_reason,
        mode=mode,
        device=str(device),
        optimizer=training.optimizer_name if training is not None else None,
        parallel=layout,
    )


# Settings of the table, not of the analysis: given to analyze() they would reach forward().
_VIEW_SETTINGS = ("depth", "columns", "rows", "style")


def _check_not_view_settings(model: nn.Module, kwargs: Mapping[str, Any]) -> None:
    """A view setting passed to analyze() is a mistake unless forward() takes that name."""
    misplaced = [name for name in _VIEW_SETTINGS if name in kwargs]
    if not misplaced:
        return
    try:
        parameters = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    unknown = [name for name in misplaced if name not in parameters and not takes_any]
    if unknown:
        given = ", ".join(f"{name}=" for name in unknown)
        raise InputError(
            f"{given} chooses how a report is shown, not what is analysed: use tt.summary(..., {given}...), "
            f"report.table({given}...) or report.with_view({given}...)"
        )


def analyze(
    model: nn.Module | ExportedProgram,
    input_size: InputSize | None = None,
    *,
    input_data: Any = None,
    dtypes: DtypeSpec = None,
    device: str | torch.device | None = None,
    mode: str | None = None,
    run: str = "auto",
    training: bool = False,
    optimizer: OptimizerSpec | None = None,
    loss_fn: LossFn | None = None,
    formulas: Mapping[OpLike, Formula] | None = None,
    timing: bool | TimingOptions = False,
    forward_kwargs: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> ModelReport:
    """Analyse one forward pass of ``model`` and return the report. Prints nothing.

    Args:
        model: any ``nn.Module``; it is left exactly as it was (see the README's guarantees). A
            ``torch.export.ExportedProgram`` is analysed as its ``.module()``, by default with
            its example inputs.
        input_size: the shape of the input (any rank), a list of shapes for several
            positional inputs, or a dict of shapes by argument name.
        input_data: the inputs themselves instead: a tensor, a tuple/list (positional
            arguments), a dict (keyword arguments) or any nested structure of tensors.
        dtypes: dtype per input of ``input_size`` (e.g. ``[torch.long]`` for token ids);
            floating inputs default to the model's own floating dtype.
        device: where the inputs go; defaults to the model's device. The model is never moved.
        mode: ``"eval"`` (the default for inference), ``"train"`` (the default with
            ``training=True``) or ``"same"`` (leave the modules' flags as they are).
        run: ``"auto"`` (fake tensors, falling back to a real run when the model needs real
            values), ``"fake"`` (never compute) or ``"real"``.
        training: also run the backward pass (from ``loss_fn``, the output's ``loss``, or a
            gradient of ones for each output) and report its cost and a training step's memory.
        optimizer: with ``training``, the optimizer whose state and step to include: a name
            (``"sgd"``, ``"sgd-momentum"``, ``"adam"``, ``"adamw"``, …) or a callable that
            builds one from a parameter list (``functools.partial(torch.optim.SGD, lr=0.1)``).
        loss_fn: with ``training``, turns the model's output into the loss to differentiate.
        formulas: extra cost formulas for this call only, ``{op: formula}``.
        timing: also time real forward passes (``True``, or ``tt.TimingOptions(warmup=3,
            repeats=20)``): latency and throughput, and each module's own and inclusive time.
            Needs real weights (not the meta device); the counting itself stays as ``run`` says.
        forward_kwargs / **kwargs: keyword arguments passed on to ``model.forward``.
    """
    model, input_data, forward_kwargs = as_module(model, input_size, input_data, forward_kwargs, kwargs)
    if not isinstance(model, nn.Module):
        raise InputError(f"model must be a torch.nn.Module or a torch.export.ExportedProgram; got {type(model).__name__}")
    with ANALYSIS_LOCK:
        return _analyze(
            model, input_size, input_data, dtypes, device, mode, run, training, optimizer, loss_fn, formulas,
            timing, forward_kwargs, kwargs,
        )  # fmt: skip


def _analyze(
    model: nn.Module,
    input_size: InputSize | None,
    input_data: Any,
    dtypes: DtypeSpec,
    device: str | torch.device | None,
    mode: str | None,
    run: str,
    training: bool,
    optimizer: OptimizerSpec | None,
    loss_fn: LossFn | None,
    formulas: Mapping[OpLike, Formula] | None,
    timing: bool | TimingOptions,
    forward_kwargs: Mapping[str, Any] | None,
    kwargs: dict[str, Any],
) -> ModelReport:
    if not isinstance(training, bool):
        raise InputError(f"training must be True or False; got {training!r}")
    check_cluster_open(model)
    if not training and (optimizer is not None or loss_fn is not None):
        raise InputError("optimizer= and loss_fn= describe a training step: pass training=True with them")
    if loss_fn is not None and not callable(loss_fn):
        raise InputError(f"loss_fn must be a callable taking the model's output; got {loss_fn!r}")
    timing_plan = timing_options(timing)
    _check_not_view_settings(model, kwargs)
    if mode_is_fixed(model):  # torch.export's module: its train() and eval() raise
        mode = fixed_mode(mode)
    else:
        mode = _choice(("train" if training else "eval") if mode is None else mode, MODES, "mode")
    run = _choice(run, RUNS, "run")
    plan_training = None
    if training:
        name, factory = optimizer_factory(optimizer) if optimizer is not None else (None, None)
        plan_training = TrainingPlan(loss_fn, name, factory)
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
    if timing_plan is not None and (run_device.type == "meta" or any(p.is_meta for p in target.parameters())):
        raise InputError("timing needs real weights to run; the model (or the device asked for) is on the meta device")
    report = _count(target, plan, run_device, mode, cost_model, run, fallback_reason, plan_training)
    if timing_plan is not None:
        report = _timed(report, target, plan, run_device, mode, timing_plan)
    return report


def _count(
    target: nn.Module,
    plan: InputPlan,
    run_device: torch.device,
    mode: str,
    cost_model: CostModel,
    run: str,
    fallback_reason: str | None,
    plan_training: TrainingPlan | None,
) -> ModelReport:
    """The counting run: on fake tensors unless ``run`` says real (or the fake run cannot)."""
    no_real_run = fake_mode_of(target) is not None  # its tensors hold no values
    if run == "real" and no_real_run:
        raise InputError("run='real' needs real tensors; this model's are fake (made in a simulated cluster)")
    if run != "real":
        try:
            with collector_paused():
                return _run_once(
                    target, plan, run_device, mode, cost_model, fake=True, fallback_reason=None, training=plan_training
                )
        except _NeedsRealRun as limit:
            if run == "fake":
                raise NeedsRealValues(f"the model cannot run on fake tensors: {limit}; use run='auto' or 'real'") from limit.__cause__
            if run_device.type == "meta" or no_real_run:
                where = "on the meta device" if run_device.type == "meta" else "fake (made in a simulated cluster)"
                raise NeedsRealValues(
                    f"the model cannot be analysed on fake tensors ({limit}) and its parameters are {where}, "
                    "so a real run is impossible"
                ) from limit.__cause__
            fallback_reason = str(limit)
        except ForwardError as failure:
            # Fake kernels are not PyTorch's real ones: some are stricter (dtype checks), some
            # tensor kinds cannot be faked (nested tensors). The real run decides: it raises the
            # same error for a genuinely wrong input, or succeeds and says so in the report.
            if run == "fake" or run_device.type == "meta" or no_real_run:
                raise
            where = describe_module(failure.module_path, failure.module_type)
            fallback_reason = f"the fake run failed in {where} ({failure.reason.splitlines()[0]})"
    return _run_once(
        target, plan, run_device, mode, cost_model, fake=False, fallback_reason=fallback_reason, training=plan_training
    )


def _timed(
    report: ModelReport, target: nn.Module, plan: InputPlan, device: torch.device, mode: str, options: TimingOptions
) -> ModelReport:
    """``report`` with measured times: real forward passes of ``target`` on ``device``."""
    nodes = module_tree(target)
    try:
        with torch.no_grad():
            args, kwargs = plan.materialize(device, None)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise InputError(f"could not create the inputs on {device}: {exc}") from exc
    first = report.inputs[0].shape if report.inputs else ()
    batch = max(first[0], 0) if first else 1  # a ragged (-1) or empty batch counts no samples
    return with_timing(report, measure(target, nodes, args, kwargs, device, mode, options, batch))
