"""Number formatting shared by every view."""

from __future__ import annotations

DECIMAL_UNITS = ((10**12, "T"), (10**9, "G"), (10**6, "M"), (10**3, "K"))
BINARY_UNITS = ((2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB"))


def with_commas(value: int) -> str:
    return f"{value:,}"


def decimal(value: int | float) -> str:
    """``1814083944`` -> ``1.81 G`` (powers of 1000, as MACs and FLOPs are quoted)."""
    for scale, unit in DECIMAL_UNITS:
        if abs(value) >= scale:
            return f"{value / scale:.2f} {unit}"
    return f"{value:g}" if isinstance(value, float) else str(value)


def binary_bytes(value: int) -> str:
    """``46758048`` -> ``44.59 MiB`` (powers of 1024, as memory is sized)."""
    for scale, unit in BINARY_UNITS:
        if abs(value) >= scale:
            return f"{value / scale:.2f} {unit}"
    return f"{value} B"


def shape_text(shape: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def seconds_text(value: float) -> str:
    """``0.00123`` -> ``1.23 ms`` (s, ms or µs)."""
    if abs(value) >= 1:
        return f"{value:.2f} s"
    if abs(value) >= 1e-3:
        return f"{value * 1e3:.2f} ms"
    return f"{value * 1e6:.1f} µs"
