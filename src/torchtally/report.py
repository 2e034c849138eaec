"""The data model of an analysis: frozen dataclasses of plain values (no torch objects, no
display strings). Totals are derived from the rows, so a column's rows always add up to its
total. Views (text tables, exports) live in `torchtally.render`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from .errors import InputError
from .structures import TensorSpec

SCHEMA = "torchtally.report/1"


@dataclass(frozen=True)
class OpStats:
    """One operator's calls and cost inside a module (inclusive of its submodules)."""

    calls: int
    macs: int
    flops: int
    uncounted: int  # calls that no formula covered (their cost is unknown, not zero)

    def to_dict(self) -> dict[str, int]:
        return {"calls": self.calls, "macs": self.macs, "flops": self.flops, "uncounted": self.uncounted}


Shape = tuple[int, ...]


@dataclass(frozen=True)
class LayerReport:
    """One module: a row of the table."""

    name: str  # path in named_modules(); "" for the root
    type: str  # class name
    depth: int  # 0 for the root
    parent: int | None  # index of the parent row in ModelReport.layers
    children: tuple[int, ...]
    calls: int
    inputs: tuple[tuple[TensorSpec, ...], ...]  # per call: the tensors it was given
    outputs: tuple[tuple[TensorSpec, ...], ...]  # per call: the tensors it returned
    params: int  # elements of the parameters it holds directly and first (by identity)
    trainable_params: int
    used_params: int  # of `params`, those an operator read during the run
    param_bytes: int
    subtree_params: int  # `params` summed over this module and everything below it
    shared_from: tuple[str, ...]  # earlier rows owning parameters this module also holds
    buffers: int
    buffer_bytes: int
    macs: int  # all calls, inclusive of its submodules (summed up the module tree)
    flops: int
    self_macs: int  # operators that ran while it was the innermost module running
    self_flops: int
    operators: Mapping[str, OpStats] = field(default_factory=dict)  # inclusive, like macs
    lazy: bool = False  # its parameters were uninitialized (lazy) and materialised for the run

    @property
    def input_shapes(self) -> tuple[tuple[Shape, ...], ...]:
        """Per call, the shapes of the tensors it was given."""
        return tuple(tuple(spec.shape for spec in call) for call in self.inputs)

    @property
    def output_shapes(self) -> tuple[tuple[Shape, ...], ...]:
        """Per call, the shapes of the tensors it returned."""
        return tuple(tuple(spec.shape for spec in call) for call in self.outputs)

    @property
    def output_shape(self) -> Shape | None:
        """The shape of the first tensor returned by the first call (the common case)."""
        return self.outputs[0][0].shape if self.outputs and self.outputs[0] else None

    @property
    def trainable(self) -> bool | None:
        """True if all its own parameters train, False if none does, None if mixed or none."""
        if self.params == 0 or 0 < self.trainable_params < self.params:
            return None
        return self.trainable_params == self.params

    @property
    def is_leaf(self) -> bool:
        return not self.children

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "depth": self.depth,
            "parent": self.parent,
            "children": list(self.children),
            "calls": self.calls,
            "inputs": [[spec.to_dict() for spec in call] for call in self.inputs],
            "outputs": [[spec.to_dict() for spec in call] for call in self.outputs],
            "params": self.params,
            "trainable_params": self.trainable_params,
            "used_params": self.used_params,
            "param_bytes": self.param_bytes,
            "subtree_params": self.subtree_params,
            "shared_from": list(self.shared_from),
            "buffers": self.buffers,
            "buffer_bytes": self.buffer_bytes,
            "macs": self.macs,
            "flops": self.flops,
            "self_macs": self.self_macs,
            "self_flops": self.self_flops,
            "operators": {name: stats.to_dict() for name, stats in self.operators.items()},
            "lazy": self.lazy,
        }


@dataclass(frozen=True)
class ModelReport:
    """Everything one analysis found. ``print(report)`` shows the table; ``to_dict()`` the data."""

    model_type: str
    layers: tuple[LayerReport, ...]
    execution: str  # "fake" (fake tensors, no arithmetic) or "real"
    fallback_reason: str | None  # why a fake run was not possible, when it fell back to real
    mode: str  # "eval", "train" or "same"
    device: str
    shared_params: int  # elements of parameters held by more than one module (counted once)
    unused_modules: tuple[str, ...]  # top-most modules never called (their subtrees were not either)
    lazy_modules: tuple[str, ...] = ()
    display_depth: int = 3  # the depth `print(report)` folds the tree to

    # Parameter totals, each counted once by identity.
    @property
    def total_params(self) -> int:
        return sum(layer.params for layer in self.layers)

    @property
    def trainable_params(self) -> int:
        return sum(layer.trainable_params for layer in self.layers)

    @property
    def non_trainable_params(self) -> int:
        return self.total_params - self.trainable_params

    @property
    def used_params(self) -> int:
        return sum(layer.used_params for layer in self.layers)

    @property
    def unused_params(self) -> int:
        return self.total_params - self.used_params

    @property
    def param_bytes(self) -> int:
        return sum(layer.param_bytes for layer in self.layers)

    @property
    def total_buffers(self) -> int:
        return sum(layer.buffers for layer in self.layers)

    @property
    def buffer_bytes(self) -> int:
        return sum(layer.buffer_bytes for layer in self.layers)

    # Compute totals: every operator is charged to exactly one row's self_* column.
    @property
    def total_macs(self) -> int:
        return sum(layer.self_macs for layer in self.layers)

    @property
    def total_flops(self) -> int:
        return sum(layer.self_flops for layer in self.layers)

    @property
    def operators(self) -> Mapping[str, OpStats]:
        """Every operator of the run with its calls and cost (the root row's breakdown)."""
        return self.layers[0].operators if self.layers else {}

    @property
    def uncounted_ops(self) -> dict[str, int]:
        """Operators no formula covered, with how many calls; when not empty the totals are a lower bound."""
        return {name: stats.uncounted for name, stats in self.operators.items() if stats.uncounted}

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        """The tensors the model was called with."""
        root = self.layers[0] if self.layers else None
        return root.inputs[0] if root is not None and root.inputs else ()

    def layer(self, name: str) -> LayerReport:
        """The row of the module at this path ("" for the root)."""
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(f"no module named {name!r} in this report")

    def with_display_depth(self, depth: int) -> ModelReport:
        return replace(self, display_depth=depth)

    def table(self, depth: int | None = None) -> str:
        """The text table (tree of modules and totals), folded to ``depth`` levels."""
        from .render.text import render_tree

        depth = self.display_depth if depth is None else depth
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 0:
            raise InputError(f"depth must be a whole number >= 0 (0 shows only the model's row); got {depth!r}")
        return render_tree(self, depth=depth)

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-serialisable data."""
        return {
            "schema": SCHEMA,
            "model_type": self.model_type,
            "execution": self.execution,
            "fallback_reason": self.fallback_reason,
            "mode": self.mode,
            "device": self.device,
            "inputs": [spec.to_dict() for spec in self.inputs],
            "totals": {
                "params": self.total_params,
                "trainable_params": self.trainable_params,
                "non_trainable_params": self.non_trainable_params,
                "used_params": self.used_params,
                "unused_params": self.unused_params,
                "shared_params": self.shared_params,
                "param_bytes": self.param_bytes,
                "buffers": self.total_buffers,
                "buffer_bytes": self.buffer_bytes,
                "macs": self.total_macs,
                "flops": self.total_flops,
            },
            "unused_modules": list(self.unused_modules),
            "lazy_modules": list(self.lazy_modules),
            "uncounted_ops": self.uncounted_ops,
            "layers": [layer.to_dict() for layer in self.layers],
        }

    def __str__(self) -> str:
        return self.table()

    def __repr__(self) -> str:
        return (
            f"<ModelReport {self.model_type}: {self.total_params:,} params, "
            f"{self.total_macs:,} MACs, {self.total_flops:,} FLOPs ({self.execution} run)>"
        )

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """IPython / notebook display: the table."""
        printer.text(repr(self) if cycle else self.table())
