"""The JSON Schemas of torchtally's exports, shipped in the package: ``report_schema()``
describes ``ModelReport.to_dict()``/``to_json()`` (``"schema": "torchtally.report/1"``),
``table_schema()`` describes ``DataTable.to_dict()`` (``"torchtally.table/1"``).

Versioning: a field's meaning never changes within a version. New fields may be added to a
version (the schema file is updated with them); a removed, renamed or redefined field means
a new version string."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any


def _load(name: str) -> dict[str, Any]:
    text = resources.files("torchtally.report").joinpath(name).read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def report_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a report's ``to_dict()``."""
    return _load("report.schema.json")


def table_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a `DataTable`'s ``to_dict()``."""
    return _load("table.schema.json")


def generation_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a `GenerationReport`'s ``to_dict()``
    (``"schema": "torchtally.generation/1"``); its ``prefill`` is a report as `report_schema` says."""
    schema = _load("generation.schema.json")
    schema["$defs"]["report"] = report_schema()  # an embedded resource: `prefill` refers to it by its $id
    return schema
