"""Every fenced block of README.md and docs/*.md is run or checked against real output.

The blocks are found automatically, so a new sample cannot escape: each is one test, named
``PAGE:LINE-KIND``. What a block is, and how it is checked:

* ```python: run. The blocks of one page run in page order, in one shared namespace (a
  later block may use the ``report`` an earlier one made), in a temporary working folder of
  that page. Running one block alone (``-k``) runs the page's earlier blocks first.
* Output: a ``` (no language), ```text, ```csv or ```json block with only blank lines
  between it and a ```python block is what that block prints to stdout; it is compared
  with the real output. Any other such block is an error: show the code that prints it.
* A session: a block whose first line starts with ``$ ``. Each ``$ torchtally ...``
  command (``\\`` continues a line) runs in-process through ``torchtally.cli.main``; the
  lines below it, up to the next ``$``, must equal its stdout followed by its stderr. A
  command ending in ``; echo "exit $?"`` shows its exit code as ``exit N`` after that.
  Sessions hold only torchtally commands.
* A command list: a ```bash (or sh, shell, console) block without ``$``. Each
  ``torchtally ...`` line is parsed by the real argument parser (``cli.arguments.parse``:
  a renamed option fails) and run; it must exit 0 and print something. Other commands must
  match NOT_RUN in tests/docs_support.py (the setup scripts, ``pip install``, benchmarks,
  pytest, mypy and ruff), are never run, and the scripts/, benchmarks/ and tests/ paths
  they name must exist.

Comparing text: trailing whitespace and leading/trailing blank lines are ignored. The
elision rule: a line that is exactly ``...`` stands for any number of lines (none too);
``...`` inside a line stands for any text within that line (use it for measured times).
JSON output is compared as data: an object with a ``"...": "..."`` entry may leave keys
out (the keys it shows must be there, with these values); without one, it has exactly the
keys shown. A ``"..."`` item in an array stands for any number of items; ``"..."`` as a
value stands for any value.

Markers: an HTML comment on the line right above a fence says what the block is:

* ``<!-- doc-test: file PATH -->``: the block is a file the samples use; it is written to
  PATH in the page's working folder when its turn comes (and not run).
* ``<!-- doc-test: layout -->``: the module layout; it must name every folder and module of
  src/torchtally, and only files that exist.
* ``<!-- doc-test: skip (REASON) -->``: not run; test_skipped_samples lists these. The only
  reason allowed is "needs a CUDA device", and such a block does run where CUDA is available.

Samples must be fast: big models are built on the meta device. The whole file runs in
about 30 s on a 2-core CPU machine."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from docs_support import (
    CUDA_REASON,
    PAGES,
    ROOT,
    SKIP,
    Block,
    PageRun,
    all_blocks,
    blocks_of,
    layout_problems,
)

BLOCKS = all_blocks()
ALLOWED_SKIPS = {CUDA_REASON}
README_LIMIT = 14_000  # bytes (about a fifth of the 61 KB manual it replaced): a front door; the reference lives in docs/


def _id(block: Block) -> str:
    return f"{block.page.relative_to(ROOT)}:{block.line}-{block.language or 'plain'}"


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[Path, PageRun]:
    return {page: PageRun(page, tmp_path_factory.mktemp(page.stem)) for page in PAGES}


@pytest.mark.parametrize("block", BLOCKS, ids=_id)
def test_block(block: Block, runs: dict[Path, PageRun]) -> None:
    run = runs[block.page]
    kind = run.kinds[block.index]
    if isinstance(kind, ValueError):
        pytest.fail(str(kind))
    run.run_up_to(block.index)
    if kind == "output":  # compared when the block above it ran
        error = run.done.get(block.index - 1)
        assert error is None, f"{block.name}: the sample above it failed: {error!r}"
        return
    if kind == "skip":
        match = SKIP.match(block.marker or "")
        assert match is not None
        if not (match["reason"] == CUDA_REASON and torch.cuda.is_available()):
            run.done[block.index] = None
            pytest.skip(f"{block.name}: {match['reason']}")
    if kind == "layout":
        problems = layout_problems(block)
        assert not problems, f"{block.name}: the layout is stale:\n" + "\n".join(problems)
        return
    if block.index in run.done:  # ran already (as an earlier block of a test run with -k)
        error = run.done[block.index]
        if error is not None:
            raise error
        return
    run.run(block.index)


def test_skipped_samples() -> None:
    skipped = [(block.name, match["reason"]) for block in BLOCKS if block.marker and (match := SKIP.match(block.marker))]
    print("skipped samples:", *(f"{name} ({reason})" for name, reason in skipped), sep="\n  ")
    assert {reason for _, reason in skipped} <= ALLOWED_SKIPS, skipped


def test_pages_are_found() -> None:
    # The discovery itself: the README and the docs pages, each with samples to check.
    assert PAGES[0] == ROOT / "README.md"
    assert len(PAGES) >= 8
    for page in PAGES:
        assert blocks_of(page), f"{page} has no fenced block: is it parsed?"


# -- links between the pages ---------------------------------------------------------------

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to dashes."""
    anchors = set()
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return anchors


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_links_resolve(page: Path) -> None:
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    for target in LINK.findall(text):
        if re.match(r"[a-z]+://", target):
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        assert linked.exists(), f"{page.name}: link to {target}, which does not exist"
        if anchor and linked.suffix == ".md":
            assert anchor in _anchors(linked), f"{page.name}: link to {target}: no such heading"


def test_every_docs_page_is_linked_from_the_index() -> None:
    index = (ROOT / "docs" / "README.md").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for page in PAGES[1:]:
        if page.name != "README.md":
            assert f"({page.name})" in index, f"docs/README.md does not link {page.name}"
            assert f"(docs/{page.name})" in readme, f"README.md does not link docs/{page.name}"


# -- the front door ----------------------------------------------------------------------


def test_readme_is_short() -> None:
    size = len((ROOT / "README.md").read_bytes())
    assert size <= README_LIMIT, f"README.md is {size} bytes; move reference material to docs/"


def test_the_two_commands_do_what_the_readme_says() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "bash scripts/demo.sh    # setup, then the main job: `torchtally resnet18 --depth 1`" in readme
    assert "bash scripts/test.sh    # setup, then the whole test suite (what CI runs: .ci/run)" in readme
    demo = (ROOT / "scripts" / "demo.sh").read_text(encoding="utf-8")
    assert re.search(r"^\S*torchtally resnet18 --depth 1\b", demo, flags=re.M), demo
    assert "scripts/test.sh" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "$ torchtally resnet18 --depth 1" in readme  # its output is checked with the other sessions
