"""The data model of an analysis: frozen dataclasses of plain values (no torch objects, no
display strings). Totals are derived from the rows, so a column's rows always add up to its
total. Views (text tables, exports) live in `torchtally.render`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from .settings import ColumnsArg, RowsArg, Style, ViewOptions, parse_depth
from .specs import TensorSpec
from .estimate import EstimateStats
from .parallel import ParallelLayout
from .timing import TimingStats

if TYPE_CHECKING:
    from ..render.table import TableView
    from .tables import DataTable

SCHEMA = "torchtally.report/1"


TIMELINE_CATEGORIES = ("parameters", "buffers", "inputs", "activations", "gradients", "optimizer_state")


@dataclass(frozen=True)
class MemoryTimeline:
    """Live bytes through the run, split by what they hold, at a bounded number of moments.

    The run's every change of the live set is recorded; long runs are thinned, keeping in
    each stretch its highest and lowest moment, so the highest total is `Memory.peak`.
    ``values[i]`` holds the bytes of each of ``categories`` at moment ``i``; they add up to
    ``totals[i]``. "activations" is every other tensor the operators allocated (outputs,
    what autograd saved, temporaries); during the optimizer step "optimizer_state" holds the
    state and the step's own temporaries."""

    categories: tuple[str, ...]
    phases: tuple[tuple[str, int], ...]  # each phase ("forward", "backward", "optimizer step") and its first moment
    operators: tuple[int, ...]  # per moment: operators run before it (the step's continue the count)
    modules: tuple[int | None, ...]  # per moment: the row of the module running (None: none, or the optimizer)
    values: tuple[tuple[int, ...], ...]

    @property
    def totals(self) -> tuple[int, ...]:
        return tuple(sum(point) for point in self.values)

    @property
    def peak_index(self) -> int:
        """The first moment with the highest total."""
        totals = self.totals
        return max(range(len(totals)), key=totals.__getitem__)

    @property
    def peak(self) -> int:
        return max(self.totals)

    def phase_at(self, index: int) -> str:
        name = self.phases[0][0]
        for phase, start in self.phases:
            if start <= index:
                name = phase
        return name

    def to_dict(self) -> dict[str, Any]:
        return {
            "categories": list(self.categories),
            "phases": [{"name": name, "start": start} for name, start in self.phases],
            "operators": list(self.operators),
            "modules": list(self.modules),
            "values": [list(point) for point in self.values],
        }


@dataclass(frozen=True)
class Memory:
    """Memory of the run in bytes, from every tensor's real dtype.

    ``peak`` is the largest total of live tensors at any moment: parameters, buffers and
    inputs, plus every tensor the operators allocated and that was still referenced then
    (found by following storage lifetimes; views and in-place results share storage). In a
    training analysis it is the peak of a steady-state step: the optimizer state already
    exists during forward and backward, gradients live from the backward through the
    optimizer's step (``zero_grad(set_to_none=True)`` before the next forward)."""

    parameters: int
    buffers: int
    inputs: int
    outputs: int  # the tensors the model returned
    activations: int  # the output bytes of every leaf module, per call (the "activation" column's total)
    forward_peak: int  # parameters, buffers and inputs + the most the forward had alive at once
    peak: int
    peak_phase: str  # where ``peak`` was reached: "forward", "backward" or "optimizer step"
    # Training only (None otherwise):
    saved_for_backward: int | None = None  # alive when the forward ended, outputs excluded: what autograd keeps
    backward_peak: int | None = None  # parameters, buffers and inputs + the most alive during the backward
    gradients: int | None = None
    optimizer_state: int | None = None
    optimizer_step_peak: int | None = None  # the optimizer step's peak (gradients and state alive)
    measured_peak: int | None = None  # torch.cuda.max_memory_allocated over a real CUDA run
    timeline: MemoryTimeline | None = field(default=None, repr=False)  # live bytes through the run

    def to_dict(self) -> dict[str, Any]:
        figures: dict[str, Any] = {name: getattr(self, name) for name in self.__dataclass_fields__ if name != "timeline"}
        figures["timeline"] = None if self.timeline is None else self.timeline.to_dict()
        return figures


@dataclass(frozen=True)
class OpStats:
    """One operator's calls and cost inside a module (inclusive of its submodules)."""

    calls: int
    macs: int
    flops: int
    uncounted: int  # calls that no formula covered (their cost is unknown, not zero)
    read: int = 0  # bytes its calls read (inputs, weights) and wrote (results)
    written: int = 0
    dtype: str | None = None  # the dtype its calls computed in (of those with the most FLOPs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls, "macs": self.macs, "flops": self.flops, "uncounted": self.uncounted,
            "read": self.read, "written": self.written, "dtype": self.dtype,
        }


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
    shared_from: tuple[str, ...]  # names of earlier rows owning parameters this module also holds ("": the root)
    buffers: int
    buffer_bytes: int
    macs: int  # all calls, inclusive of its submodules (summed up the module tree)
    flops: int
    self_macs: int  # operators that ran while it was the innermost module running
    self_flops: int
    operators: Mapping[str, OpStats] = field(default_factory=dict)  # inclusive, like macs
    lazy: bool = False  # its parameters were uninitialized (lazy) and materialised for the run
    output_bytes: int = 0  # bytes of the tensors it returned, all calls (its activations)
    # Training: the backward operators autograd ran for the nodes this module's forward created.
    backward_macs: int = 0  # inclusive
    backward_flops: int = 0
    self_backward_macs: int = 0
    self_backward_flops: int = 0
    backward_operators: Mapping[str, OpStats] = field(default_factory=dict)  # inclusive
    # Memory traffic of the forward's operators: bytes of the tensors they read (inputs and
    # weights) and wrote (outputs); views move nothing. Inclusive, and the module's own.
    memory_read: int = 0
    memory_write: int = 0
    self_memory_read: int = 0
    self_memory_write: int = 0
    # The module's kernel size and groups where it has them (convolutions, pooling).
    kernel_size: tuple[int, ...] | None = None
    groups: int | None = None
    # Measured (``analyze(..., timing=True)``), seconds per forward pass, all calls, mean over
    # the timed passes: its own work, and that summed over its subtree (like macs). None when
    # not timed, or when the timed passes never called it.
    time: float | None = None
    self_time: float | None = None
    # Estimated (``analyze(..., hardware=...)``), seconds per forward pass on that chip: its own
    # operators, and summed over its subtree (like macs); what limits them most ("compute",
    # "memory", "overhead" or "network"). None without an estimate.
    estimated_time: float | None = None
    self_estimated_time: float | None = None
    # Collectives under a parallel layout: their data size in bytes (forward and backward).
    communication_bytes: int = 0
    self_communication_bytes: int = 0
    bound: str | None = None
    self_bound: str | None = None

    @property
    def arithmetic_intensity(self) -> float | None:
        """FLOPs per byte its operators read or wrote (forward, inclusive); None when they moved nothing."""
        moved = self.memory_read + self.memory_write
        return self.flops / moved if moved else None

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
            "output_bytes": self.output_bytes,
            "backward_macs": self.backward_macs,
            "backward_flops": self.backward_flops,
            "self_backward_macs": self.self_backward_macs,
            "self_backward_flops": self.self_backward_flops,
            "backward_operators": {name: stats.to_dict() for name, stats in self.backward_operators.items()},
            "memory_read": self.memory_read,
            "memory_write": self.memory_write,
            "self_memory_read": self.self_memory_read,
            "self_memory_write": self.self_memory_write,
            "kernel_size": None if self.kernel_size is None else list(self.kernel_size),
            "groups": self.groups,
            "time": self.time,
            "self_time": self.self_time,
            "arithmetic_intensity": self.arithmetic_intensity,
            "estimated_time": self.estimated_time,
            "self_estimated_time": self.self_estimated_time,
            "communication_bytes": self.communication_bytes,
            "self_communication_bytes": self.self_communication_bytes,
            "bound": self.bound,
            "self_bound": self.self_bound,
        }


@dataclass(frozen=True)
class ModelReport:
    """Everything one analysis found. ``print(report)`` shows the table; ``to_dict()`` the data."""

    model_type: str
    layers: tuple[LayerReport, ...]
    execution: str  # "fake" (fake tensors, no arithmetic) or "real"
    fallback_reason: str | None  # why a fake run was not possible, when it fell back to real
    mode: str  # "eval", "train", "same" or "fixed" (torch.export's module)
    device: str
    shared_params: int  # elements of parameters held by more than one module (counted once)
    unused_modules: tuple[str, ...]  # top-most modules never called (their subtrees were not either)
    memory: Memory
    lazy_modules: tuple[str, ...] = ()
    training: bool = False  # the backward pass (and optimizer step) was analysed too
    optimizer: str | None = None
    optimizer_macs: int = 0  # one optimizer step (not part of any layer)
    optimizer_flops: int = 0
    optimizer_uncounted: Mapping[str, int] = field(default_factory=dict)
    # Mixture of experts, when the run shows routing: elements of the routed (expert)
    # parameters, and the parameters one token uses on average (used params, routed ones
    # counted by their average share). None when nothing was routed.
    routed_params: int = 0
    active_params: int | None = None
    timing: TimingStats | None = None  # measured forward passes (``analyze(..., timing=True)``)
    estimate: EstimateStats | None = None  # estimated time on a chip (``analyze(..., hardware=...)``)
    parallel: ParallelLayout | None = None  # the layout of the rank this report describes
    view: ViewOptions = ViewOptions()  # how `print(report)` and notebooks show it (see `with_view`)
    # The notebook cell `summary()` already showed this report in (see notebook.py).
    shown_in_cell: int | None = field(default=None, repr=False, compare=False)

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
        """MACs of the forward pass (``backward_macs`` has the backward's)."""
        return sum(layer.self_macs for layer in self.layers)

    @property
    def total_flops(self) -> int:
        """FLOPs of the forward pass (``backward_flops`` has the backward's)."""
        return sum(layer.self_flops for layer in self.layers)

    @property
    def forward_macs(self) -> int:
        return self.total_macs

    @property
    def forward_flops(self) -> int:
        return self.total_flops

    @property
    def backward_macs(self) -> int:
        """MACs of the backward pass (0 unless ``training``)."""
        return sum(layer.self_backward_macs for layer in self.layers)

    @property
    def backward_flops(self) -> int:
        return sum(layer.self_backward_flops for layer in self.layers)

    @property
    def operators(self) -> Mapping[str, OpStats]:
        """Every operator of the run with its calls and cost (the root row's breakdown)."""
        return self.layers[0].operators if self.layers else {}

    @property
    def backward_operators(self) -> Mapping[str, OpStats]:
        """Every operator of the backward pass with its calls and cost."""
        return self.layers[0].backward_operators if self.layers else {}

    @property
    def uncounted_ops(self) -> dict[str, int]:
        """Operators no formula covered (forward, backward and optimizer step), with how many
        calls; when not empty the totals are a lower bound."""
        found: dict[str, int] = {}
        for operators in (self.operators, self.backward_operators):
            for name, stats in operators.items():
                if stats.uncounted:
                    found[name] = found.get(name, 0) + stats.uncounted
        for name, calls in self.optimizer_uncounted.items():
            found[name] = found.get(name, 0) + calls
        return found

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

    def with_view(
        self,
        depth: int | None = None,
        *,
        columns: ColumnsArg = None,
        rows: RowsArg = None,
        style: Style | str | None = None,
    ) -> ModelReport:
        """The same report, shown by default (``print``, notebooks) with these settings."""
        return replace(self, view=self._options(depth, columns, rows, style))

    def _options(
        self, depth: int | None, columns: ColumnsArg, rows: RowsArg, style: Style | str | None
    ) -> ViewOptions:
        """The report's own view settings, with those given here instead."""
        view = self.view
        return ViewOptions.parse(
            depth=view.depth if depth is None else depth,
            columns=view.columns if columns is None else columns,
            rows=view.rows if rows is None else rows,
            style=view.style if style is None else style,
        )

    def _table_view(
        self, depth: int | None, columns: ColumnsArg, rows: RowsArg, style: Style | str | None
    ) -> TableView:
        from ..render.table import table_view

        return table_view(self, self._options(depth, columns, rows, style))

    def table(
        self,
        depth: int | None = None,
        *,
        columns: ColumnsArg = None,
        rows: RowsArg = None,
        style: Style | str | None = None,
    ) -> str:
        """The text table and its footer.

        Args:
            depth: fold modules deeper than this into their ancestor's row (0: one row).
            columns: `Column` names to show after the layer name, in order (default: input
                and output shape, Param #, MACs, FLOPs; backward MACs/FLOPs when training,
                Time and Time % when timed; the flat style: output shape and Param #).
            rows: `RowSetting` names: ``"type_names"``, ``"ascii_only"``, ``"hide_empty"``,
                ``"collapse_repeats"``.
            style: ``"tree"`` (the module hierarchy) or ``"flat"`` (torchsummary's layout).
        """
        from ..render.text import render_text

        return render_text(self._table_view(depth, columns, rows, style))

    def to_markdown(
        self, depth: int | None = None, *, columns: ColumnsArg = None, rows: RowsArg = None, style: Style | str | None = None
    ) -> str:
        """The table as GitHub Markdown, the footer as a list below it."""
        from ..render.markdown import render_markdown

        return render_markdown(self._table_view(depth, columns, rows, style))

    def to_html(
        self, depth: int | None = None, *, columns: ColumnsArg = None, rows: RowsArg = None, style: Style | str | None = None
    ) -> str:
        """The table as HTML (what a notebook shows)."""
        from ..render.html import render_html

        return render_html(self._table_view(depth, columns, rows, style))

    def to_html_page(self, depth: int | None = None) -> str:
        """One self-contained HTML page: the totals, the module tree as an interactive table
        (opened at ``depth``, default the report's view depth), and charts of the parameters,
        MACs, operators and memory through the run (see docs/html-report.md). Scripts and
        styles are inline; it fetches nothing."""
        from ..render.page import render_page

        return render_page(self, None if depth is None else parse_depth(depth))

    def save_html(self, path: str | os.PathLike[str], depth: int | None = None) -> None:
        """Write `to_html_page(depth)` to ``path`` (UTF-8)."""
        with open(path, "w", encoding="utf-8") as file:
            file.write(self.to_html_page(depth))

    def display_page(self, height: int = 900) -> Any:
        """The whole page for a notebook cell, in a frame of its own (the report's own notebook
        display stays the compact table)."""
        from ..render.notebook import page_frame

        return page_frame(self.to_html_page(), height)

    def to_rich(
        self, depth: int | None = None, *, columns: ColumnsArg = None, rows: RowsArg = None, style: Style | str | None = None
    ) -> Any:
        """A rich renderable (``rich.print(report.to_rich())``); needs rich installed."""
        from ..render.rich_view import rich_renderable

        return rich_renderable(self._table_view(depth, columns, rows, style))

    def to_json(self, indent: int | None = 2) -> str:
        """`to_dict()` as JSON text (schema: ``torchtally.report_schema()``)."""
        import json

        return json.dumps(self.to_dict(), indent=indent)

    def to_csv(self) -> str:
        """One CSV row per layer (every module), with the same numbers as `to_dict()`'s layers."""
        from ..render.export import LAYER_COLUMNS, layer_records
        from .tables import csv_from

        return csv_from(layer_records(self), LAYER_COLUMNS)

    def to_dataframe(self) -> Any:
        """A pandas DataFrame, one row per layer (the `to_csv` columns); needs pandas."""
        from ..render.export import LAYER_COLUMNS, layer_records
        from .tables import dataframe_from

        return dataframe_from(layer_records(self), LAYER_COLUMNS)

    def by_operator(self) -> DataTable:
        """Calls, MACs and FLOPs per operator (forward and backward apart)."""
        from ..render.export import by_operator

        return by_operator(self)

    def by_type(self) -> DataTable:
        """Modules, calls, parameters, MACs and FLOPs per module class."""
        from ..render.export import by_type

        return by_type(self)

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
                "routed_params": self.routed_params,
                "active_params": self.active_params,
                "param_bytes": self.param_bytes,
                "buffers": self.total_buffers,
                "buffer_bytes": self.buffer_bytes,
                "macs": self.total_macs,
                "flops": self.total_flops,
                "backward_macs": self.backward_macs,
                "backward_flops": self.backward_flops,
                "optimizer_macs": self.optimizer_macs,
                "optimizer_flops": self.optimizer_flops,
            },
            "training": self.training,
            "optimizer": self.optimizer,
            "memory": self.memory.to_dict(),
            "timing": None if self.timing is None else self.timing.to_dict(),
            "estimate": None if self.estimate is None else self.estimate.to_dict(),
            "parallel": None if self.parallel is None else self.parallel.to_dict(),
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
        """IPython's terminal display: the text table."""
        printer.text(repr(self) if cycle else self.table())

    def _repr_html_(self) -> str:
        """The HTML table, for front ends that ask for HTML."""
        return self.to_html()

    def _ipython_display_(self) -> None:
        """IPython/Jupyter: the HTML table (text in a terminal), unless `summary()` showed
        this report in the running cell already."""
        from ..render.notebook import cell, show

        if self.shown_in_cell is None or self.shown_in_cell != cell():
            show(self)

    def __rich__(self) -> Any:
        """``rich.print(report)``: the table at the terminal's width."""
        return self.to_rich()
