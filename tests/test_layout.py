"""The package's folders show the flow of data (inputs -> engine -> report -> views), and
their imports keep to it: report/ never imports the engine, the engine never imports a
view, the command line or the compat layer, formulas/ imports only itself and the errors
module, and no two engine modules import each other (directly or round a longer circle).

Every import statement counts, including those inside functions and under TYPE_CHECKING:
a lazy import is still a dependency."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import torchtally

PACKAGE = Path(torchtally.__file__).parent


def _module_name(path: Path) -> str:
    parts = ["torchtally", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """The torchtally modules (or packages) that ``path`` imports, resolved to absolute names."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("torchtally"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("torchtally"):
                continue
            found.add(target)
            # `from . import notebook` imports a submodule, not a name of the package
            found.update(f"{target}.{alias.name}" for alias in node.names if (PACKAGE.parent / f"{target}.{alias.name}".replace(".", "/")).with_suffix(".py").exists())
    return found


MODULES = {_module_name(path): _imports(path) for path in sorted(PACKAGE.rglob("*.py"))}


def _in(name: str, folder: str) -> bool:
    return name == f"torchtally.{folder}" or name.startswith(f"torchtally.{folder}.")


def _violations(folder: str, allowed: object) -> list[str]:
    return [
        f"{module} imports {target}"
        for module, targets in MODULES.items()
        if _in(module, folder)
        for target in sorted(targets)
        if not allowed(target)  # type: ignore[operator]
    ]


def test_the_walk_sees_the_package() -> None:
    # The checker is only as good as its view of the imports: it must see the engine's
    # dependence on formulas and the top-level's on the engine, or it would pass vacuously.
    assert "torchtally.formulas.resolve" in MODULES["torchtally.engine.run"]
    assert "torchtally.engine.run" in MODULES["torchtally.analysis"]
    assert "torchtally.render.notebook" in MODULES["torchtally.summary"]  # `from .render import notebook`
    assert len([m for m in MODULES if _in(m, "engine")]) >= 15


def test_report_does_not_import_the_engine() -> None:
    assert _violations("report", lambda t: not (_in(t, "engine") or _in(t, "estimate") or _in(t, "cli") or _in(t, "compat"))) == []


def test_engine_does_not_import_views_cli_or_compat() -> None:
    forbidden = ("render", "cli", "compat", "estimate")
    assert _violations("engine", lambda t: not any(_in(t, f) for f in forbidden)) == []


def test_render_does_not_import_the_engine() -> None:
    assert _violations("render", lambda t: not (_in(t, "engine") or _in(t, "cli") or _in(t, "compat"))) == []


def test_formulas_import_only_themselves_and_errors() -> None:
    assert _violations("formulas", lambda t: _in(t, "formulas") or t == "torchtally.errors") == []


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle in ``graph``, as the list of modules round it, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_no_import_circle_between_engine_modules() -> None:
    engine = {m: {t for t in targets if _in(t, "engine") and t != "torchtally.engine"} for m, targets in MODULES.items() if _in(m, "engine")}
    assert _cycle(engine) is None


@pytest.mark.parametrize(
    "graph, expected",
    [
        ({"a": {"b"}, "b": {"a"}}, ["a", "b", "a"]),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, ["a", "b", "c", "a"]),
        ({"a": {"b"}, "b": {"c"}, "c": set()}, None),
    ],
)
def test_the_circle_finder_finds_circles(graph: dict[str, set[str]], expected: list[str] | None) -> None:
    assert _cycle(graph) == expected


def test_top_level_holds_only_the_public_face() -> None:
    loose = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert loose == [
        "__init__.py", "__main__.py", "_version.py", "analysis.py", "compare.py", "errors.py", "generation.py", "summary.py",
    ]  # fmt: skip
