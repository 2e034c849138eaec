"""torchinfo's words around torchtally's numbers: the ``Layer (type:depth-idx)`` header,
the ``Total mult-adds`` and ``(MB)`` footer lines in torchinfo's order and units, then one
line saying how torchtally counted them, then torchtally's own lines."""

from __future__ import annotations

from dataclasses import replace

from ..render.footer import tree_footer
from ..render.table import table_view
from ..render.text import render_text
from ..render.units import with_commas
from ..report.model import ModelReport
from ..report.settings import Column, RowSetting

MB = 1e6  # torchinfo's MB is decimal (torchsummary's is 2**20)
HEADERS = {Column.MACS: "Mult-Adds"}  # torchinfo's title where torchtally's differs
CONVENTIONS = (
    "torchtally: mult-adds = MACs of every aten operator (no bias additions); shared weights once; "
    "sizes from real dtypes, MB = 10^6 B; forward/backward = 2 x every leaf module's outputs"
)
# tree_footer's lines that the torchinfo block above already says
_SAID = ("Total params:", "Trainable params:", "Non-trainable params:")


def _layer_header(rows: frozenset[RowSetting], var_names: bool) -> str:
    """torchinfo's first header cell for the labels shown: ``Conv2d: 1-1`` or ``conv1 (Conv2d)``."""
    if var_names:
        return "Layer (type (var_name))"
    return "Layer (type:depth-idx)" if RowSetting.TYPE_NAMES in rows else "Layer (type)"


def mult_adds(macs: int) -> str:
    """torchinfo's ``Total mult-adds`` line: M below 10^9, G below 10^12, T above; two
    decimals unless whole."""
    unit, scale = ("T", 1e12) if macs >= 1e12 else ("G", 1e9) if macs >= 1e9 else ("M", 1e6)
    value = macs / scale
    text = f"{int(value):,d}" if value.is_integer() else f"{value:,.2f}"
    return f"Total mult-adds ({unit}): {text}"


def _sizes(report: ModelReport) -> list[str]:
    memory = report.memory
    passes = 2 * memory.activations  # each leaf output and its gradient
    total = memory.inputs + passes + report.param_bytes
    return [
        f"Input size (MB): {memory.inputs / MB:0.2f}",
        f"Forward/backward pass size (MB): {passes / MB:0.2f}",
        f"Params size (MB): {report.param_bytes / MB:0.2f}",
        f"Estimated Total Size (MB): {total / MB:0.2f}",
    ]


def render(report: ModelReport, var_names: bool) -> str:
    """The report's tree table under torchinfo's header, with torchinfo's footer, the
    conventions line and torchtally's further lines."""
    options = report.view
    view = table_view(report, options)
    columns = options.columns_for(report.training, report.timing is not None, report.estimate is not None, report.parallel is not None)
    headers = (_layer_header(options.rows, var_names), *(HEADERS.get(c, h) for c, h in zip(columns, view.headers[1:])))
    table = render_text(replace(view, headers=headers, footer=()))
    rule = table.splitlines()[0]
    params = [
        f"Total params: {with_commas(report.total_params)}",
        f"Trainable params: {with_commas(report.trainable_params)}",
        f"Non-trainable params: {with_commas(report.non_trainable_params)}",
        mult_adds(report.total_macs),
    ]
    ours = [line for section in tree_footer(report) for line in section if not line.startswith(_SAID)]
    return "\n".join([table, *params, rule, *_sizes(report), rule, CONVENTIONS, *ours, rule])
