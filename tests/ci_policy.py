"""A pytest plugin (loaded by conftest.py): under CI=true a missing test dependency is a
failure, not a quiet skip. The test extra must be installed whole, and only tests that need
hardware this machine lacks (a CUDA device) may skip. Every run lists its skips at the end."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the extra is not checked up front (the skips still are)
    tomllib = None  # type: ignore[assignment]

ALLOWED_SKIP_REASON = "needs a CUDA device"


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _allowed_skip(reason: str) -> bool:
    return reason == ALLOWED_SKIP_REASON or reason.endswith(f": {ALLOWED_SKIP_REASON}")


def _skip_reason(report: pytest.CollectReport | pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def _test_requirements() -> list[str]:
    """The project's ``test`` extra, as written in pyproject.toml."""
    if tomllib is None:
        return []
    text = (Path(__file__).resolve().parent.parent / "pyproject.toml").read_text(encoding="utf-8")
    return list(tomllib.loads(text)["project"]["optional-dependencies"]["test"])


def missing_test_requirements() -> list[str]:
    from importlib import metadata

    from packaging.requirements import Requirement

    missing = []
    for line in _test_requirements():
        requirement = Requirement(line)
        try:
            version = metadata.version(requirement.name)
        except metadata.PackageNotFoundError:
            missing.append(f"{line} (not installed)")
            continue
        if requirement.specifier and not requirement.specifier.contains(version, prereleases=True):
            missing.append(f"{line} (installed: {version})")
    return missing


def pytest_sessionstart(session: pytest.Session) -> None:
    if _in_ci():
        missing = missing_test_requirements()
        if missing:
            raise pytest.UsageError("CI=true and the test extra is not installed whole: " + "; ".join(missing))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if _in_ci() and report.skipped and not hasattr(report, "wasxfail") and not _allowed_skip(_skip_reason(report)):
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, and only tests needing a CUDA device may skip: {_skip_reason(report)}"


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Iterator[None]:
    outcome = yield
    report: pytest.CollectReport = outcome.get_result()
    if _in_ci() and report.skipped and not _allowed_skip(_skip_reason(report)):
        report.outcome = "failed"
        report.longrepr = f"a test module skipped under CI=true (a missing test dependency?): {_skip_reason(report)}"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    skipped = terminalreporter.stats.get("skipped", [])
    skips = [report for report in skipped if not hasattr(report, "wasxfail")]
    terminalreporter.write_line(f"skipped: {len(skips)} (under CI=true only tests that say they {ALLOWED_SKIP_REASON.replace('needs', 'need')} may skip)")
    for report in skips:
        terminalreporter.write_line(f"  {report.nodeid}: {_skip_reason(report)}")
