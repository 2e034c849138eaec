"""Under CI=true the suite cannot skip silently (tests/ci_policy.py): a skipped test or test
module fails unless it needs a CUDA device, and a missing test dependency fails the run.
Checked on a throwaway test file, in a pytest process of its own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import ci_policy

SAMPLE = '''
import pytest

def test_runs():
    pass

def test_needs_cuda():
    pytest.skip("needs a CUDA device")

def test_needs_a_package():
    pytest.importorskip("a_package_that_is_not_installed")
'''
MODULE_SKIP = '''
import pytest
pytest.importorskip("a_package_that_is_not_installed")

def test_never_collected():
    pass
'''


def _pytest(folder: Path, ci: bool) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(Path(ci_policy.__file__).parent), "CI": "true" if ci else ""}
    command = [sys.executable, "-m", "pytest", "-p", "ci_policy", "-q", "-p", "no:cacheprovider", str(folder)]
    return subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    (tmp_path / "test_sample.py").write_text(SAMPLE)
    (tmp_path / "test_module_skip.py").write_text(MODULE_SKIP)
    return tmp_path


def test_outside_ci_skips_are_allowed_and_listed(sample: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = _pytest(sample, ci=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "skipped: 3" in run.stdout  # two tests and one module, each named below
    assert "test_sample.py::test_needs_a_package" in run.stdout


def test_under_ci_only_cuda_tests_may_skip(sample: Path) -> None:
    (sample / "test_module_skip.py").unlink()
    run = _pytest(sample, ci=True)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "FAILED test_sample.py::test_needs_a_package" in run.stdout
    assert "1 failed, 1 passed, 1 skipped" in run.stdout  # the CUDA test is the one skip
    assert "test_sample.py::test_needs_cuda: needs a CUDA device" in run.stdout


def test_under_ci_a_test_module_that_skips_fails_the_collection(sample: Path) -> None:
    (sample / "test_sample.py").unlink()
    run = _pytest(sample, ci=True)
    assert run.returncode == 2, run.stdout + run.stderr  # pytest's "interrupted": a collection error
    assert "ERROR test_module_skip.py - a test module skipped under CI=true" in run.stdout


def test_under_ci_a_missing_test_dependency_fails_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ci_policy, "_test_requirements", lambda: ["a-package-that-is-not-installed>=1", "pytest>=8"])
    assert ci_policy.missing_test_requirements() == ["a-package-that-is-not-installed>=1 (not installed)"]
    monkeypatch.setattr(ci_policy, "_test_requirements", lambda: ["pytest<1"])
    assert ci_policy.missing_test_requirements() == [f"pytest<1 (installed: {pytest.__version__})"]


def test_here_the_test_extra_is_installed_whole() -> None:
    assert ci_policy.missing_test_requirements() == []
