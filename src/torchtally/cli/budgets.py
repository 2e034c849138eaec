"""Budgets for CI: ``--max-params 25M``, ``--max-macs 4G``, ``--max-flops 1.5e9``,
``--max-memory 8GiB``. A report over budget is still written; the CLI then says which
budget it broke, in one line, and exits with its own code."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from ..report.model import ModelReport
from .errors import CLIError

# Counts are quoted in powers of 1000 (as MACs are); "B" is the billions of "7B parameters".
COUNT_UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "b": 10**9, "t": 10**12}
# Memory must say which thousand it means: GB is 10^9 bytes, GiB is 2^30.
BYTE_UNITS = {
    "": 1, "b": 1,
    "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
    "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
}
_NUMBER = re.compile(r"\s*(\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)\s*([A-Za-z]*)\s*")


def _split(text: str, option: str) -> tuple[float, str]:
    match = _NUMBER.fullmatch(text)
    if match is None:
        raise CLIError(f"{option}: {text!r} is not a number such as 25M, 4G or 1.5e9")
    return float(match.group(1)), match.group(2).lower()


def parse_count(text: str, option: str) -> int:
    value, unit = _split(text, option)
    if unit not in COUNT_UNITS:
        raise CLIError(f"{option}: unknown unit {unit!r} in {text!r}; use K, M, G (or B) or T (powers of 1000)")
    return round(value * COUNT_UNITS[unit])


def parse_bytes(text: str, option: str) -> tuple[int, bool]:
    """Bytes, and whether the user counts in powers of 1000 (GB) rather than 1024 (GiB)."""
    value, unit = _split(text, option)
    if unit not in BYTE_UNITS:
        hint = " (say GB for 10^9 bytes or GiB for 2^30)" if unit in ("k", "m", "g", "t") else ""
        raise CLIError(f"{option}: unknown unit {unit!r} in {text!r}{hint}; use B, KB, MB, GB, KiB, MiB, GiB, ...")
    return round(value * BYTE_UNITS[unit]), unit.endswith("b") and not unit.endswith("ib") and unit != "b"


def _compact(value: int, units: tuple[tuple[int, str], ...]) -> str:
    """``1_000_000_000`` -> ``1 G``, ``4_089_000_000`` -> ``4.09 G`` (two decimals at most)."""
    for scale, unit in units:
        if value >= scale:
            number = f"{value / scale:.2f}".rstrip("0").rstrip(".")
            return f"{number} {unit}"
    return f"{value:,}" if not units[-1][1].endswith("B") else f"{value} B"


COUNT_TEXT = ((10**12, "T"), (10**9, "G"), (10**6, "M"), (10**3, "K"))
BINARY_TEXT = ((2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB"))
DECIMAL_BYTES_TEXT = ((10**12, "TB"), (10**9, "GB"), (10**6, "MB"), (10**3, "KB"))


@dataclass(frozen=True)
class Budget:
    label: str  # how the reason line names the figure: "params", "MACs", ...
    limit: int
    units: tuple[tuple[int, str], ...]
    read: Callable[[ModelReport], int]

    def excess(self, report: ModelReport) -> str | None:
        """``MACs 4.09 G > 1 G`` when the report is over this budget, else None."""
        value = self.read(report)
        if value <= self.limit:
            return None
        shown, limit = _compact(value, self.units), _compact(self.limit, self.units)
        if shown == limit:  # over by less than the rounding: say it exactly
            shown, limit = f"{value:,}", f"{self.limit:,}"
        return f"{self.label} {shown} > {limit}"


def parse_budgets(
    max_params: str | None, max_macs: str | None, max_flops: str | None, max_memory: str | None
) -> list[Budget]:
    budgets = []
    if max_params is not None:
        budgets.append(Budget("params", parse_count(max_params, "--max-params"), COUNT_TEXT, lambda r: r.total_params))
    if max_macs is not None:
        budgets.append(Budget("MACs", parse_count(max_macs, "--max-macs"), COUNT_TEXT, lambda r: r.total_macs))
    if max_flops is not None:
        budgets.append(Budget("FLOPs", parse_count(max_flops, "--max-flops"), COUNT_TEXT, lambda r: r.total_flops))
    if max_memory is not None:
        limit, decimal = parse_bytes(max_memory, "--max-memory")
        units = DECIMAL_BYTES_TEXT if decimal else BINARY_TEXT
        budgets.append(Budget("peak memory", limit, units, lambda r: r.memory.peak))
    return budgets


def excesses(report: ModelReport, budgets: list[Budget]) -> list[str]:
    return [text for text in (budget.excess(report) for budget in budgets) if text is not None]
