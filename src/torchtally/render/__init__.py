"""Views of a `ModelReport`; the report itself holds only data."""

from .text import render_tree

__all__ = ["render_tree"]
