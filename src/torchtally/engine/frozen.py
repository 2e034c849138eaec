"""Making frozen dataclass instances (the report's rows) without their generated __init__.

A frozen dataclass's __init__ sets every field through ``object.__setattr__``: a LayerReport
(45 fields) takes ~20 µs, a report of a 200-module network ~4 ms of its build. For a plain
frozen dataclass (no __post_init__, no slots, every field in __init__) the same instance is
its fields' values in its __dict__, in field order: that is what `maker` builds. Any other
class is made by its own constructor."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def _plain(cls: type) -> bool:
    params = getattr(cls, "__dataclass_params__", None)
    return (
        params is not None
        and params.frozen
        and not hasattr(cls, "__post_init__")
        and "__slots__" not in cls.__dict__
        and all(field.init for field in dataclasses.fields(cls))
    )


def maker(cls: type[T]) -> Callable[..., T]:
    """``cls(*args, **kwargs)``, faster for a plain frozen dataclass (same instance)."""
    if not _plain(cls):
        return cls
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    names = tuple(field.name for field in fields)
    defaults: dict[str, Any] = {}
    factories: dict[str, Callable[[], Any]] = {}
    for field in fields:
        if field.default is not dataclasses.MISSING:
            defaults[field.name] = field.default
        elif field.default_factory is not dataclasses.MISSING:
            factories[field.name] = field.default_factory
    new = object.__new__

    def make(*args: Any, **kwargs: Any) -> T:
        if len(args) > len(names):
            return cls(*args, **kwargs)  # raises as the constructor does
        given = dict(zip(names, args))
        for name, value in kwargs.items():
            if name in given:
                return cls(*args, **kwargs)
            given[name] = value
        state = {}
        for name in names:
            if name in given:
                state[name] = given.pop(name)
            elif name in defaults:
                state[name] = defaults[name]
            elif name in factories:
                state[name] = factories[name]()
            else:
                return cls(*args, **kwargs)  # a required field missing: the constructor's error
        if given:
            return cls(*args, **kwargs)  # an unknown field: the constructor's error
        instance = new(cls)
        instance.__dict__.update(state)
        return instance

    return make
