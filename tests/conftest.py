from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest

# The persistent replay cache (torchtally/engine/replay_disk.py) never touches the user's
# own cache folder from the suite: every session gets an empty folder of its own, so no
# test depends on what an earlier session left there. Tests of the cache itself point
# TORCHTALLY_CACHE at their own tmp_path.
_CACHE = tempfile.mkdtemp(prefix="torchtally-test-cache-")
os.environ["TORCHTALLY_CACHE"] = _CACHE
atexit.register(shutil.rmtree, _CACHE, True)  # registered first, so it runs after the cache's own flush

# Under CI=true a skip is a failure unless the test needs a CUDA device (tests/ci_policy.py).
pytest_plugins = ["ci_policy"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite the golden files under tests/golden from the current output instead of comparing",
    )


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


# -- guarantee 1 over the whole suite --------------------------------------------------------
# Every analysis any test runs is checked by tests/model_state.py: the model and the process
# must be exactly as they were (values, recursively), whether the analysis returned or raised.
# A test that makes a breach on purpose (to check that it is reported) is marked
# `@pytest.mark.changes_model("why")`.


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "changes_model(why): the test breaks guarantee 1 on purpose; not checked suite-wide")


@pytest.fixture(autouse=True)
def analysis_leaves_the_model_unchanged(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    if request.node.get_closest_marker("changes_model") is not None:
        yield
        return
    from model_state import capture, differences

    import torchtally.engine.run as run_module

    analyse = run_module._analyze
    problems: list[str] = []

    def checked(model: Any, *args: Any) -> Any:
        before = capture(model)
        try:
            return analyse(model, *args)
        finally:
            found = differences(before, capture(model))
            problems.extend(f"{type(model).__name__}: {problem}" for problem in found)

    monkeypatch.setattr(run_module, "_analyze", checked)
    yield
    assert not problems, "an analysis changed the model or the process (guarantee 1):\n  " + "\n  ".join(problems[:20])
