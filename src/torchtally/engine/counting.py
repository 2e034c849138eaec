"""The dispatch mode that sees every aten operator of the run, costs it and charges it to
the innermost running module.

In a fake run it also turns every real tensor an operator receives (parameters, buffers,
user data) into a fake one first, memoised, so no real arithmetic happens, no real
memory is allocated and no real tensor is ever written. In a real run it lets the model
state guard save tensors before an operator overwrites them."""

from __future__ import annotations

import functools
from typing import Any

import torch
from torch._ops import OpOverload
from torch._subclasses.fake_tensor import FakeTensor
from torch.nn.parameter import is_lazy
from torch.utils._python_dispatch import TorchDispatchMode

from .communication import transfer_of
from .fakes import FakeConverter, is_fake_limitation, lenient_result
from ..formulas.registry import tensor_args
from ..formulas.resolve import CostModel
from .guard import ModelState
from .known_values import VALUE_FREE_IDS, KnownValues
from .memory import LiveSet
from .params import ParameterIndex
from .replay import ResultReplay
from .routing import WeightUse
from .summaries import Summary, spans_its_elements, summaries_for
from .tracking import ModuleTracker
from .traffic import Traffic, compute_dtype


_DEVICE_OF = torch.ops.prim.device.default
_COLLECTIVE_NAMESPACES = frozenset({"c10d", "_c10d_functional"})
_DTENSOR: type | None
try:
    from torch.distributed.tensor import DTensor

    _DTENSOR = DTensor
except ImportError:  # a torch without distributed support
    _DTENSOR = None


def _holds_dtensor(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    for value in (*args, *kwargs.values()):
        if type(value) is _DTENSOR:
            return True
        if isinstance(value, (list, tuple)) and any(type(item) is _DTENSOR for item in value):
            return True
    return False


def _note_twin(tracked_ids: dict[int, int], weights: WeightUse, real: torch.Tensor, fake: FakeTensor) -> None:
    """A parameter's fake twin is a weight the routing figures follow."""
    param_id = tracked_ids.get(id(real))
    if param_id is not None:
        weights.add_weight(param_id, fake)


class CountingMode(TorchDispatchMode):  # type: ignore[no-untyped-call]
    def __init__(
        self,
        tracker: ModuleTracker,
        cost_model: CostModel,
        index: ParameterIndex,
        fakes: FakeConverter | None,
        state: ModelState | None,
    ):
        super().__init__()  # type: ignore[no-untyped-call]
        self.tracker = tracker
        self.cost_model = cost_model
        self.index = index
        self.tracked_ids = index.tracked_ids
        self.read_ids = index.read
        self.fakes = fakes
        self.replay = ResultReplay(fakes.fake_mode) if fakes is not None else None
        self.state = state
        self.live = LiveSet()
        self.weights = WeightUse()
        self.traffic = Traffic()
        if fakes is not None:
            new_twin = functools.partial(_note_twin, self.tracked_ids, self.weights)
            for real, fake in fakes.twins():  # made before the run (a training run's stand-ins)
                new_twin(real, fake)
            # Not a bound method: the converter would refer back to this mode, a cycle that
            # leaves the whole run (its fake tensors, records) to the cyclic collector.
            fakes.on_new_twin = new_twin
            for param in index.parameters():  # a model made of fake tensors already (a copy of ours, a simulated cluster's)
                local = getattr(param, "_local_tensor", param)  # a DTensor's shard on this rank
                if isinstance(local, FakeTensor):
                    self.weights.add_weight(id(param), local)
        else:
            for param in index.parameters():
                if param.device.type != "meta" and not is_lazy(param):
                    self.weights.add_weight(id(param), param)
        # Small integer tensors whose values are known, followed through a fake run.
        self.known = KnownValues(fakes)
        self._names: dict[OpOverload, str] = {}
        # Per replay key, what a call adds besides its module and memory (fake runs only).
        self._summaries = summaries_for(cost_model) if fakes is not None else None
        # A sharded model (DTensor parameters): operators on DTensors are left to DTensor;
        # ``shaping`` is set while DTensor derives an output's metadata (see parallel.py).
        self.shaping = False
        self.distributed = any(type(param) is _DTENSOR for param in index.parameters()) if _DTENSOR is not None else False

    def __torch_dispatch__(self, func: OpOverload, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None) -> Any:
        if func is _DEVICE_OF and type(args[0]) is FakeTensor:
            return args[0].fake_device  # asked all the time (a third of a CNN's calls); metadata, not an operation
        kwargs = kwargs or {}
        self._note_reads(args)
        if kwargs:
            self._note_reads(kwargs.values())
        if self.distributed:
            if _holds_dtensor(args, kwargs):
                # A DTensor operator: let DTensor run it. It comes back here as the operators on
                # this rank's shards (and the collectives it needs), which are what this rank does.
                return NotImplemented
            if self.shaping:
                # DTensor working out an output's global shape on fake tensors: not this rank's work.
                return func(*args, **kwargs)
        key = None
        if self.fakes is not None:
            args = self.fakes.values(args)
            if kwargs:
                kwargs = {k: self.fakes.value(v) for k, v in kwargs.items()}
            assert self.replay is not None
            if func is _DEVICE_OF and isinstance(args[0], FakeTensor):
                return args[0].fake_device  # a real tensor's fake twin (or a FakeTensor subclass)
            key = self.replay.key(func, args, kwargs)
            out = self.replay.replay(key, func, args, kwargs) if key is not None else None
            if out is None:
                try:
                    out = func(*args, **kwargs)
                except RuntimeError as refusal:
                    out = lenient_result(func, args, kwargs)
                    if out is None:
                        # Only a refusal for want of values: any other (devices that do not
                        # match, a wrong shape) stands, as it would in a real run.
                        if not is_fake_limitation(refusal):
                            raise
                        found, out = self.known.instead(func, args, kwargs)  # from known values (known_values.py)
                        if not found:
                            raise
                        key = None  # a result that depends on values is never replayed
                if key is not None:
                    self.replay.remember(key, func, out)
            if self.known.values or id(func) in VALUE_FREE_IDS:
                self.known.after(func, args, kwargs, out)
        else:
            if self.state is not None and func._schema.is_mutable:
                self.state.before_write(func, args, kwargs)
            out = func(*args, **kwargs)
        summary = self._summaries.get(key) if key is not None and self._summaries is not None else None
        if summary is None:
            summary = self._summarise(func, args, kwargs, out)
            if key is not None and self._summaries is not None and self._key_fixes_summary(key, args, kwargs, out):
                self._summaries[key] = summary
        name, cost, read, written, dtype = summary
        self.tracker.record_op(name, cost, read, written, dtype)
        if not self.tracker.in_backward and cost is not None and cost.macs:
            self.weights.after_product(func, args, cost.macs)
        self.live.after_op(func, args, kwargs, out)
        if self.distributed and func.namespace in _COLLECTIVE_NAMESPACES:
            transfer = transfer_of(func, args, kwargs, out)
            if transfer is not None:
                self.tracker.record_transfer(transfer)
        return out

    def _summarise(self, func: OpOverload, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> Summary:
        """The call's name, cost, bytes read and written, and compute dtype."""
        name = self._names.get(func)
        if name is None:
            name = self._names[func] = str(func.overloadpacket)
        cost = self.cost_model.cost(func, args, kwargs, out)
        read, written = self.traffic.of(func, args, kwargs, out)
        return name, cost, read, written, compute_dtype(args, out)

    def _key_fixes_summary(self, key: Any, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> bool:
        """Whether every call with ``key`` has this call's summary (see summaries.py): its
        result is replayable, and its tensors' bytes do not depend on their storages' sizes."""
        assert self.replay is not None
        if not self.replay.knows(key):
            return False
        outs = out if isinstance(out, (list, tuple)) else (out,)
        return all(spans_its_elements(t) for t in tensor_args((*args, *kwargs.values(), *outs)))

    def _note_reads(self, values: Any) -> None:
        tracked = self.tracked_ids
        for value in values:
            if id(value) in tracked:
                self.read_ids.add(tracked[id(value)])
            elif isinstance(value, (list, tuple)):
                for item in value:
                    if id(item) in tracked:
                        self.read_ids.add(tracked[id(item)])
            elif isinstance(value, torch.ScriptObject):  # packed (quantized) weights
                self.index.note_packed_read(self.tracker.innermost)
