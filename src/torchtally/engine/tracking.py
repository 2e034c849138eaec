"""Which module is running: during the run every module's ``forward`` is wrapped (an
instance attribute over the class's method) to keep a call stack, record each call's input
and output tensors, and note where an exception started. `detach`, which the orchestrator
calls in a ``finally``, removes the wrappers and leaves each module as it was.

Why wrappers rather than forward hooks: a module with hooks takes PyTorch's slow call path,
which made hooks a quarter of the analysis time; a wrapper also sees exceptions directly.
The difference users may notice: operators run by their own forward hooks are charged to
the parent module (the module's own forward is what is timed and counted).

Activation checkpointing (``torch.utils.checkpoint``, reentrant or not) runs a block's forward
again during the backward pass. That recomputation is backward work: during the backward the
wrappers keep the call stack (so we know which module is recomputing) but record no calls,
inputs or outputs (a block called once has ``calls == 1`` and its activations are counted
once), and every operator is charged to the ``backward_*`` figures of the innermost module on
the stack, or, when no module is running, to the module whose forward created the autograd
node being run. Autograd nodes created during the backward (the reentrant variant's
recomputed graph) are labelled the same way, so their own backward is charged to the module
that recomputed them, not to the root. Hence, with checkpointing, the forward totals are
unchanged and the backward totals grow by the recomputation that runs: one forward of each
checkpointed block (less with non-reentrant early stop, PyTorch's default, which stops once
every tensor the forward saved is recomputed: a last Linear, whose saved tensors are its
inputs, is not rerun)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
import contextlib
from dataclasses import dataclass, field
from typing import Any

import torch

from ..formulas.registry import Cost
from .communication import Transfer
from .patching import ForwardPatches
from ..report.specs import TensorSpec
from .tensors import call_specs, tensor_specs
from .tree import ModuleNode

# Key under which an autograd node remembers the row of the module whose forward created it.
_ROW = "torchtally.row"
# Attribute under which an exception remembers the innermost module it left.
_FAILURE = "_torchtally_failure"


@dataclass
class OpTally:
    calls: int = 0
    macs: int = 0
    flops: int = 0
    uncounted: int = 0  # calls that no formula could count
    read: int = 0  # bytes its calls read and wrote (the forward's and the backward's alike)
    written: int = 0
    dtype: str | None = None  # the dtype its calls computed in: of the calls with the most FLOPs
    dtype_flops: int = -1  # FLOPs of those calls (-1: none seen)

    def note_dtype(self, dtype: str | None, flops: int) -> None:
        """Keep the dtype that did the most work (the first one on ties)."""
        if dtype is not None and flops > self.dtype_flops:
            self.dtype, self.dtype_flops = dtype, flops


@dataclass
class ModuleRecord:
    """What happened in one module during the run (mutable while it runs).

    Costs are the module's own: operators that ran while it was the innermost module on the
    call stack. Inclusive figures are summed up the module tree when the report is built.
    """

    calls: int = 0
    inputs: list[tuple[TensorSpec, ...]] = field(default_factory=list)
    outputs: list[tuple[TensorSpec, ...]] = field(default_factory=list)
    macs: int = 0
    flops: int = 0
    ops: dict[str, OpTally] = field(default_factory=dict)
    # The backward pass of a training run: operators autograd ran for the nodes this module's
    # forward created.
    backward_macs: int = 0
    backward_flops: int = 0
    backward_ops: dict[str, OpTally] = field(default_factory=dict)
    # Forward memory traffic: bytes the module's own operators read and wrote.
    memory_read: int = 0
    memory_write: int = 0
    # Collectives run while it was the innermost module (forward and backward): data size.
    communication_bytes: int = 0


@dataclass(frozen=True)
class Failure:
    index: int
    inputs: tuple[TensorSpec, ...]


class ModuleTracker:
    def __init__(self, nodes: list[ModuleNode]):
        self.nodes = nodes
        self.records = [ModuleRecord() for _ in nodes]
        self.stack: list[int] = []
        self.in_backward = False
        self._patches = ForwardPatches()
        # Where an exception started is written on the exception itself (with this token, so an
        # exception from another analysis is not mistaken for ours): keeping exceptions here
        # would keep their frames' tensors alive after the model handled them (checkpointing
        # does, on every recomputation), and the memory figures would count them.
        self._token = object()
        self._thread = threading.get_ident()
        self.transfers: dict[str, tuple[int, int, int]] = {}  # collective kind -> (calls, bytes, wire bytes)

    def attach(self) -> None:
        self._patches.attach(self.nodes, self._tracked)

    def detach(self) -> None:
        self._patches.detach()

    def _tracked(self, index: int, forward: Callable[..., Any]) -> Callable[..., Any]:
        record = self.records[index]
        stack = self.stack

        # Not functools.wraps'd: the patch's own wrapper around it carries the forward's name
        # and signature (one update_wrapper per module per run is enough).
        def tracked_forward(*args: Any, **kwargs: Any) -> Any:
            # A call during the backward is a checkpoint's recomputation: not a call of its own.
            recording = not self.in_backward
            inputs = call_specs(args, kwargs)
            if recording:
                record.calls += 1
                record.inputs.append(inputs)
            stack.append(index)
            try:
                output = forward(*args, **kwargs)
            except BaseException as exc:
                # The first module to see an exception is the one it started in.
                if self._failure_on(exc) is None:
                    try:
                        setattr(exc, _FAILURE, (self._token, Failure(index, inputs)))
                    except (AttributeError, TypeError):  # an exception class that takes no attributes
                        pass
                raise
            finally:
                # Unwind to this module (a child that raised and was caught may still be on top).
                while stack and stack.pop() != index:
                    pass
            if recording:
                record.outputs.append(tensor_specs(output))
            return output

        return tracked_forward

    def _failure_on(self, exception: BaseException) -> Failure | None:
        mark = getattr(exception, _FAILURE, None)
        if isinstance(mark, tuple) and len(mark) == 2 and mark[0] is self._token:
            return mark[1]  # type: ignore[no-any-return]
        return None

    @property
    def innermost(self) -> int:
        """The module running now (the root when none is)."""
        return self.stack[-1] if self.stack else 0

    @contextlib.contextmanager
    def autograd_nodes_labelled(self) -> Iterator[None]:
        """While active, every autograd node created remembers the module running then (see
        `_row`), so the backward pass can charge its operators to that module. A training run
        keeps it active through the backward, where checkpointing recomputes forwards."""
        push = getattr(torch._C._autograd, "_push_node_creation_hook", None)
        pop = getattr(torch._C._autograd, "_pop_node_creation_hook", None)
        if push is None or pop is None:  # a torch without the hook: backward is charged to the root
            yield
            return
        push(self._label_node)
        try:
            yield
        finally:
            pop()

    def _label_node(self, node: Any) -> None:
        if threading.get_ident() == self._thread:  # not a node another thread's autograd creates
            node.metadata.setdefault(_ROW, self._row())

    def _row(self) -> int:
        """The module charged now: the innermost running one (in the backward pass, a
        checkpoint's recomputation), else in the backward the module whose forward created the
        autograd node being run, else the root."""
        if self.stack or not self.in_backward:
            return self.innermost
        node: Any = torch._C._current_autograd_node()
        if node is None:
            return 0  # outside autograd's engine (e.g. creating the gradient of the output)
        row = node.metadata.get(_ROW, 0)
        return row if isinstance(row, int) else 0

    def record_transfer(self, transfer: Transfer) -> None:
        """A collective ran: its data size goes to the module `_row` names, and to the run's
        totals per kind (calls, data size, bytes this rank sends)."""
        self.records[self._row()].communication_bytes += transfer.size
        calls, size, wire = self.transfers.get(transfer.kind, (0, 0, 0))
        self.transfers[transfer.kind] = (calls + 1, size + transfer.size, wire + transfer.wire)

    def record_op(
        self, name: str, cost: Cost | None, read: int = 0, written: int = 0, dtype: str | None = None
    ) -> None:
        """Charge one operator call to the module `_row` names: to its forward figures, or in
        the backward pass (recomputation included) to its ``backward_*`` figures. ``read`` and
        ``written`` are the operator's memory traffic in bytes (the module's memory columns
        count the forward's only), ``dtype`` the dtype it computed in."""
        record = self.records[self._row()]
        ops = record.backward_ops if self.in_backward else record.ops
        if not self.in_backward:
            record.memory_read += read  # an uncounted operator still moves memory
            record.memory_write += written
        tally = ops.get(name)
        if tally is None:
            tally = ops[name] = OpTally()
        tally.calls += 1
        tally.read += read
        tally.written += written
        tally.note_dtype(dtype, cost.flops if cost is not None else 0)
        if cost is None:
            tally.uncounted += 1
            return
        tally.macs += cost.macs
        tally.flops += cost.flops
        if self.in_backward:
            record.backward_macs += cost.macs
            record.backward_flops += cost.flops
        else:
            record.macs += cost.macs
            record.flops += cost.flops

    def failure_for(self, exception: BaseException) -> Failure | None:
        """Where ``exception`` started: the deepest exception of its ``raise ... from`` chain that
        a module saw. Implicit context is not followed: an exception a forward caught and
        handled (a fast path falling back to a slow one) is not where the failure is."""
        found: Failure | None = None
        seen: set[int] = set()
        current: BaseException | None = exception
        while current is not None and id(current) not in seen:
            seen.add(id(current))
            failure = self._failure_on(current)
            if failure is not None:
                found = failure
            current = current.__cause__
        return found
