"""Which module is running: forward hooks on every module keep a call stack, record each
call's input and output tensors, and note where an exception started. The hooks are
removed by `detach`, which the orchestrator calls in a ``finally``."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from torch.utils.hooks import RemovableHandle

from .formulas.registry import Cost
from .structures import TensorSpec, tensor_specs
from .tree import ModuleNode


@dataclass
class OpTally:
    calls: int = 0
    macs: int = 0
    flops: int = 0
    uncounted: int = 0  # calls no formula could count


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


@dataclass(frozen=True)
class Failure:
    index: int
    inputs: tuple[TensorSpec, ...]


class ModuleTracker:
    def __init__(self, nodes: list[ModuleNode]):
        self.nodes = nodes
        self.records = [ModuleRecord() for _ in nodes]
        self.stack: list[int] = []
        self._handles: list[RemovableHandle] = []
        # id(exception) -> (exception, innermost module it left); the exception is kept so its id stays unique
        self._failures: dict[int, tuple[BaseException, Failure]] = {}

    def attach(self) -> None:
        for node in self.nodes:
            module = node.module
            # Prepended so that ops in the user's own pre-hooks are attributed to the module.
            self._handles.append(
                module.register_forward_pre_hook(partial(self._enter, node.index), prepend=True, with_kwargs=True)
            )
            self._handles.append(
                module.register_forward_hook(partial(self._exit, node.index), with_kwargs=True, always_call=True)
            )

    def detach(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _enter(self, index: int, module: Any, args: Any, kwargs: Any) -> None:
        record = self.records[index]
        record.calls += 1
        record.inputs.append(tensor_specs((args, kwargs)))
        self.stack.append(index)

    def _exit(self, index: int, module: Any, args: Any, kwargs: Any, output: Any) -> None:
        # Unwind to this module (a child that raised and was caught may still be on top).
        while self.stack and self.stack.pop() != index:
            pass
        exception = sys.exc_info()[1]
        if output is None and exception is not None:
            # Called while an exception propagates: the first module to see it is where it began.
            self._failures.setdefault(id(exception), (exception, Failure(index, self.records[index].inputs[-1])))
        else:
            self.records[index].outputs.append(tensor_specs(output))

    @property
    def innermost(self) -> int:
        """The module running now (the root when none is: ops before its pre-hooks ran)."""
        return self.stack[-1] if self.stack else 0

    def record_op(self, name: str, cost: Cost | None) -> None:
        """Charge one operator call to the innermost running module."""
        record = self.records[self.innermost]
        tally = record.ops.get(name)
        if tally is None:
            tally = record.ops[name] = OpTally()
        tally.calls += 1
        if cost is None:
            tally.uncounted += 1
            return
        record.macs += cost.macs
        record.flops += cost.flops
        tally.macs += cost.macs
        tally.flops += cost.flops

    def failure_for(self, exception: BaseException) -> Failure | None:
        """Where ``exception`` started: the deepest exception of its chain that a module saw."""
        found: Failure | None = None
        seen: set[int] = set()
        current: BaseException | None = exception
        while current is not None and id(current) not in seen:
            seen.add(id(current))
            entry = self._failures.get(id(current))
            if entry is not None and entry[0] is current:
                found = entry[1]
            current = current.__cause__ or current.__context__
        return found
