"""Which rows a table shows and what numbers each holds, independent of how it is drawn.

A row shows one module, or several (a run of identical sibling blocks collapsed into one).
A row whose children are shown holds the module's own values (the parameters it holds, the
operators it ran itself); a row standing for a whole subtree (folded by ``depth``, or
collapsed) holds the subtree's sums. Either way every summable column's rows add up to the
report's total, in every style and with every row setting."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from ..report.model import LayerReport, ModelReport
from ..report.settings import Column, RowSetting, Style, ViewOptions

# The quantities that add up over rows, in the order of `Amounts`' fields.
SUMMED = (
    "params", "trainable_params", "macs", "flops", "backward_macs", "backward_flops",
    "activation_bytes", "memory_read", "memory_write", "time", "estimated_time", "communication_bytes",
)


# What a module did itself, whatever the columns: its weights and its operators' work.
_WORK = frozenset({"params", "macs", "flops", "backward_macs", "backward_flops", "memory_read", "memory_write", "communication_bytes"})
# The summed quantity behind each column that shows one.
_QUANTITY_OF = {
    Column.PARAMS: "params", Column.PARAMS_PERCENT: "params", Column.TRAINABLE: "trainable_params",
    Column.MACS: "macs", Column.MACS_PERCENT: "macs", Column.FLOPS: "flops", Column.ARITHMETIC_INTENSITY: "flops",
    Column.BACKWARD_MACS: "backward_macs", Column.BACKWARD_FLOPS: "backward_flops",
    Column.ACTIVATION_BYTES: "activation_bytes", Column.MEMORY_READ: "memory_read",
    Column.MEMORY_WRITE: "memory_write", Column.TIME: "time", Column.TIME_PERCENT: "time",
    Column.ESTIMATED_TIME: "estimated_time", Column.BOUND: "estimated_time",
    Column.COMMUNICATION: "communication_bytes",
}


@dataclass(frozen=True)
class Amounts:
    """Summable numbers of one row."""

    params: int = 0
    trainable_params: int = 0
    macs: int = 0
    flops: int = 0
    backward_macs: int = 0
    backward_flops: int = 0
    activation_bytes: int = 0  # outputs of leaf modules (a container's outputs are its last child's)
    memory_read: int = 0
    memory_write: int = 0
    time: float = 0.0  # measured seconds per forward pass (0 when not timed)
    estimated_time: float = 0.0  # estimated seconds per forward pass (0 without an estimate)
    communication_bytes: int = 0  # data size of the collectives it ran (a parallel layout's rank)

    @classmethod
    def own(cls, layer: LayerReport) -> Amounts:
        return cls(
            layer.params, layer.trainable_params, layer.self_macs, layer.self_flops,
            layer.self_backward_macs, layer.self_backward_flops,
            layer.output_bytes if layer.is_leaf else 0, layer.self_memory_read, layer.self_memory_write,
            layer.self_time or 0.0, layer.self_estimated_time or 0.0, layer.self_communication_bytes,
        )

    def __add__(self, other: Amounts) -> Amounts:
        return Amounts(*(getattr(self, name) + getattr(other, name) for name in SUMMED))

    def is_empty(self, shown: frozenset[str] = frozenset(SUMMED)) -> bool:
        """Nothing among the ``shown`` quantities (parameters always count)."""
        return not self.params and not any(getattr(self, name) for name in shown)


def subtree_amounts(report: ModelReport) -> list[Amounts]:
    """Per layer, its own amounts summed over its whole subtree."""
    totals = [Amounts.own(layer) for layer in report.layers]
    for index in range(len(report.layers) - 1, -1, -1):  # children come after their parent
        parent = report.layers[index].parent
        if parent is not None:
            totals[parent] = totals[parent] + totals[index]
    return totals


@dataclass
class Row:
    """One row: the modules it stands for (several when collapsed) and its numbers."""

    indices: tuple[int, ...]
    whole_subtree: bool  # folded or collapsed: the amounts are the subtrees' sums
    amounts: Amounts
    children: list[Row] = field(default_factory=list)
    prefix: str = ""  # tree drawing before the label (tree style)
    number: int = 0  # 1-based position among the shown rows of its depth (torchinfo's depth-idx)

    @property
    def index(self) -> int:
        return self.indices[0]


class _Signatures:
    """A hashable description of a module's subtree (types, parameters and whether they
    train, costs, tensor shapes and dtypes), equal for blocks that differ only by name: used
    to find runs of repeated blocks."""

    def __init__(self, report: ModelReport):
        self._report = report
        self._cache: dict[int, object] = {}

    def of(self, index: int) -> object:
        found = self._cache.get(index)
        if found is None:
            layer = self._report.layers[index]
            found = self._cache[index] = (
                layer.type, layer.calls, layer.params, layer.trainable_params, layer.self_macs, layer.self_flops,
                layer.self_backward_flops, layer.inputs, layer.outputs,  # shapes and dtypes
                tuple(self.of(child) for child in layer.children),
            )
        return found


def _runs(children: tuple[int, ...], signatures: _Signatures | None) -> Iterator[tuple[int, ...]]:
    """Consecutive children, grouped into runs of identical blocks when asked."""
    if signatures is None:
        yield from ((child,) for child in children)
        return
    run: list[int] = []
    for child in children:
        if run and signatures.of(child) != signatures.of(run[0]):
            yield tuple(run)
            run = []
        run.append(child)
    if run:
        yield tuple(run)


class _Builder:
    def __init__(self, report: ModelReport, options: ViewOptions):
        self.layers = report.layers
        self.depth = options.depth
        self.subtree = subtree_amounts(report)
        self.signatures = _Signatures(report) if RowSetting.COLLAPSE_REPEATS in options.rows else None
        self.hide_empty = RowSetting.HIDE_EMPTY in options.rows
        # What makes a row worth showing: the summed quantities the table shows (an
        # Identity's activation bytes only matter when activations are a column; hiding it
        # then would break that column's sum).
        columns = options.columns_for(report.training, report.timing is not None, report.estimate is not None, report.parallel is not None)
        self.shown = frozenset(name for column, name in _QUANTITY_OF.items() if column in columns)

    def row(self, indices: tuple[int, ...]) -> Row:
        layer = self.layers[indices[0]]
        if len(indices) > 1 or layer.depth >= self.depth or layer.is_leaf:
            amounts = Amounts()
            for index in indices:
                amounts = amounts + self.subtree[index]
            return Row(indices, whole_subtree=len(indices) > 1 or not layer.is_leaf, amounts=amounts)
        row = Row(indices, whole_subtree=False, amounts=Amounts.own(layer))
        for run in _runs(layer.children, self.signatures):
            child = self.row(run)
            if not (self.hide_empty and child.amounts.is_empty(self.shown) and not child.children):
                row.children.append(child)
        return row


def build_rows(report: ModelReport, options: ViewOptions) -> list[Row]:
    """The rows to show, in order (pre-order of the shown tree), with tree prefixes and
    depth-index numbers filled in. The flat style leaves out the root when it holds nothing
    itself, and containers whose children are shown and that hold nothing themselves."""
    if not report.layers:
        return []
    builder = _Builder(report, options)
    root = builder.row((0,))
    ascii_only = RowSetting.ASCII_ONLY in options.rows
    branch, last_branch, bar, space = ("|-", "`-", "| ", "  ") if ascii_only else ("├─", "└─", "│ ", "  ")
    ordered: list[Row] = []
    counters: dict[int, int] = {}

    def visit(row: Row, child_prefix: str) -> None:
        ordered.append(row)
        depth = report.layers[row.index].depth
        counters[depth] = counters.get(depth, 0) + 1
        row.number = counters[depth]
        for position, child in enumerate(row.children):
            last = position == len(row.children) - 1
            child.prefix = child_prefix + (last_branch if last else branch)
            visit(child, child_prefix + (space if last else bar))

    visit(root, "")
    if options.style is Style.FLAT:
        # A container is listed when it did work of its own (a residual add) or holds weights,
        # or has something in a column shown (its measured time, when Time is a column).
        wanted = builder.shown | _WORK
        ordered = [row for row in ordered if row.whole_subtree or not row.children or not row.amounts.is_empty(wanted)]
    return ordered
