"""Close matches for a name nobody knows: "did you mean ...?"."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def close_matches(name: str, known: Iterable[str], count: int = 3) -> list[str]:
    return difflib.get_close_matches(name, list(known), n=count, cutoff=0.6)


def did_you_mean(name: str, known: Iterable[str], prefix: str = "") -> str:
    """`` (did you mean resnet18, resnet34?)`` or an empty string."""
    matches = close_matches(name, known)
    return f" (did you mean {', '.join(prefix + m for m in matches)}?)" if matches else ""
