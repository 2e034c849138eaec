"""The machinery of tests/test_docs.py: find the fenced blocks of the Markdown pages, say what
each one is, run the samples and compare what they print with what the page shows.
The conventions are described at the top of tests/test_docs.py."""

from __future__ import annotations

import contextlib
import difflib
import io
import json
import os
import re
import shlex
import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# -- finding the blocks -------------------------------------------------------------------

FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
MARKER = re.compile(r"^\s*<!--\s*doc-test:\s*(?P<what>.*?)\s*-->\s*$")
OUTPUT_LANGUAGES = {"", "text", "json", "csv"}
SHELL_LANGUAGES = {"bash", "sh", "shell", "console"}


@dataclass
class Block:
    page: Path
    index: int  # the n-th fenced block of the page (from 0)
    line: int  # the line of its opening fence (from 1)
    language: str  # the first word of the info string ("" when none)
    text: str
    marker: str | None  # the `<!-- doc-test: ... -->` comment right above the fence, if any
    follows_previous: bool  # only blank lines between the previous block's closing fence and this one

    @property
    def name(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    @property
    def lines(self) -> list[str]:
        return self.text.splitlines()

    @property
    def is_session(self) -> bool:
        """A terminal session: its first line is a ``$ command``."""
        first = next((line for line in self.lines if line.strip()), "")
        return first.startswith("$ ")


def blocks_of(page: Path) -> list[Block]:
    lines = page.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    last_close = -10  # the line index of the previous block's closing fence
    number = 0
    while number < len(lines):
        opening = FENCE.match(lines[number])
        if opening is None:
            number += 1
            continue
        indent, fence = len(opening["indent"]), opening["fence"]
        body: list[str] = []
        close = number + 1
        while close < len(lines):
            closing = FENCE.match(lines[close])
            if closing and closing["fence"][0] == fence[0] and len(closing["fence"]) >= len(fence) and not closing["info"].strip():
                break
            line = lines[close]
            body.append(line[indent:] if line[:indent].strip() == "" else line)
            close += 1
        else:
            raise ValueError(f"{page}:{number + 1}: a fenced block that never closes")
        above = next((lines[i] for i in range(number - 1, -1, -1) if lines[i].strip()), "")
        marker = MARKER.match(above)
        between = lines[last_close + 1 : number] if last_close >= 0 else ["x"]
        found.append(
            Block(
                page=page,
                index=len(found),
                line=number + 1,
                language=(opening["info"].split() or [""])[0].lower(),
                text="\n".join(body),
                marker=marker["what"] if marker else None,
                follows_previous=bool(found) and all(not line.strip() for line in between),
            )
        )
        last_close = close
        number = close + 1
    return found


def all_blocks() -> list[Block]:
    return [block for page in PAGES for block in blocks_of(page)]


# -- what a block is ----------------------------------------------------------------------

SKIP = re.compile(r"^skip \((?P<reason>[^)]+)\)$")
FILE = re.compile(r"^file (?P<path>[\w./-]+)$")
CUDA_REASON = "needs a CUDA device"


def kind_of(block: Block, previous: Block | None) -> str:
    """One of: skip, file, layout, python, output, session, commands.

    An ``output`` block shows what the block before it printed: it is checked when that block
    runs, and has no test of its own."""
    if block.marker is not None:
        if SKIP.match(block.marker):
            return "skip"
        if FILE.match(block.marker):
            return "file"
        if block.marker == "layout":
            return "layout"
        raise ValueError(f"{block.name}: unknown doc-test marker {block.marker!r}")
    if block.is_session and block.language in SHELL_LANGUAGES | {"", "text"}:
        return "session"
    if block.language == "python":
        return "python"
    if block.language in OUTPUT_LANGUAGES:
        if previous is not None and block.follows_previous and _runs_as_python(previous):
            return "output"
        raise ValueError(
            f"{block.name}: a ```{block.language} block that does not directly follow a ```python block; "
            "show the code that prints it right above it (or mark it, see tests/test_docs.py)"
        )
    if block.language in SHELL_LANGUAGES:
        return "commands"
    raise ValueError(f"{block.name}: a ```{block.language} block, which the doc tests do not know how to check")


def _runs_as_python(block: Block) -> bool:
    if block.language != "python":
        return False
    return block.marker is None or SKIP.match(block.marker) is not None


# -- comparing output ---------------------------------------------------------------------


def _normal(text: str) -> list[str]:
    lines = [line.rstrip() for line in text.splitlines()]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    return lines


def _line_pattern(line: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in line.split("...")) + r"\Z")


def text_matches(expected: str, actual: str) -> bool:
    """The elision rule: a line that is exactly ``...`` stands for any number of lines (none
    too); ``...`` inside a line stands for any text within that line. Everything else must
    be equal, after trailing whitespace and leading/trailing blank lines are dropped."""
    want, got = _normal(expected), _normal(actual)
    patterns = [None if line.strip() == "..." else _line_pattern(line) for line in want]
    memo: dict[tuple[int, int], bool] = {}

    def match(i: int, j: int) -> bool:
        if (i, j) in memo:
            return memo[(i, j)]
        if i == len(patterns):
            result = j == len(got)
        elif patterns[i] is None:
            result = any(match(i + 1, k) for k in range(j, len(got) + 1))
        else:
            result = j < len(got) and patterns[i].match(got[j]) is not None and match(i + 1, j + 1)  # type: ignore[union-attr]
        memo[(i, j)] = result
        return result

    return match(0, 0)


def text_difference(expected: str, actual: str) -> str:
    return "\n".join(
        difflib.unified_diff(_normal(expected), _normal(actual), "shown in the page", "printed", lineterm="", n=2)
    )


ELIDED = "..."


def json_matches(expected: Any, actual: Any, where: str = "$") -> list[str]:
    """The JSON rule: an object with a ``"..."`` key may leave keys out (the others must be
    there, equal); without it, it lists exactly the keys. A ``"..."`` item in an array stands
    for any number of items. The string ``"..."`` as a value stands for any value."""
    if expected == ELIDED:
        return []
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{where}: an object in the page, {type(actual).__name__} in the output"]
        problems = []
        for key, value in expected.items():
            if key == ELIDED:
                continue
            if key not in actual:
                problems.append(f"{where}: key {key!r} is not in the output")
            else:
                problems += json_matches(value, actual[key], f"{where}.{key}")
        if ELIDED not in expected and set(actual) != set(expected):
            problems.append(f"{where}: the output also has {sorted(set(actual) - set(expected))} (add \"...\": \"...\")")
        return problems
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return [f"{where}: an array in the page, {type(actual).__name__} in the output"]
        return [] if _items_match(expected, actual, where) else [f"{where}: the items differ: {json.dumps(actual)[:300]}"]
    if expected != actual or type(expected) is not type(actual) and not (isinstance(expected, (int, float)) and isinstance(actual, (int, float))):
        return [f"{where}: {json.dumps(expected)} in the page, {json.dumps(actual)} in the output"]
    return []


def _items_match(expected: list[Any], actual: list[Any], where: str) -> bool:
    if not expected:
        return not actual
    head, rest = expected[0], expected[1:]
    if head == ELIDED:
        return any(_items_match(rest, actual[k:], where) for k in range(len(actual) + 1))
    return bool(actual) and not json_matches(head, actual[0], where) and _items_match(rest, actual[1:], where)


def check_output(block: Block, printed: str) -> None:
    """Compare what a sample printed with the output block ``block`` shows; AssertionError if not."""
    if block.language == "json":
        expected = json.loads(block.text)
        try:
            actual = json.loads(printed)
        except json.JSONDecodeError as error:
            raise AssertionError(f"{block.name}: the sample did not print JSON ({error}):\n{printed[:500]}") from None
        problems = json_matches(expected, actual)
        assert not problems, f"{block.name}: the JSON shown differs from the real output:\n" + "\n".join(problems)
        return
    assert text_matches(block.text, printed), (
        f"{block.name}: the output shown differs from the real output:\n{text_difference(block.text, printed)}"
    )


# -- shell commands -----------------------------------------------------------------------

# Commands in the pages that are not torchtally and are never run: (pattern, why). Paths they
# name must exist. Anything else that is not `torchtally ...` fails the test.
NOT_RUN = [
    (re.compile(r"bash scripts/(demo|test|setup)\.sh( .*)?"), "sets up .venv (minutes)"),
    (re.compile(r"pip install .*"), "installs packages"),
    (re.compile(r"(python|\.venv/bin/python) benchmarks/\w+\.py( .*)?"), "a benchmark (minutes)"),
    (re.compile(r"(python -m |\.venv/bin/python -m )?pytest( .*)?"), "the test suite"),
    (re.compile(r"(python -m |\.venv/bin/python -m )?(mypy|ruff check)( .*)?"), "the type and lint checks"),
]
EXIT_ECHO = '; echo "exit $?"'


@dataclass
class Command:
    text: str  # as written, continuation lines joined
    argv: list[str]
    echo_exit: bool  # ends with `; echo "exit $?"`: the exit code is shown after the output
    expected: list[str] = field(default_factory=list)  # the output lines shown below it (sessions)

    @property
    def is_torchtally(self) -> bool:
        return bool(self.argv) and (self.argv[0] == "torchtally" or self.argv[:3] == ["python", "-m", "torchtally"])

    @property
    def cli_args(self) -> list[str]:
        return self.argv[1:] if self.argv[0] == "torchtally" else self.argv[3:]


def _command(text: str) -> Command:
    echo = text.endswith(EXIT_ECHO)
    if echo:
        text = text[: -len(EXIT_ECHO)]
    argv = shlex.split(text, comments=True)
    special = [word for word in argv if word in {"|", "||", "&&", ";", ">", ">>", "<", "&"} or word.endswith(";")]
    if special:
        raise ValueError(f"shell syntax the doc tests do not run: {text!r}")
    return Command(text, argv, echo)


def _logical_lines(lines: list[str]) -> Iterator[tuple[str, list[str]]]:
    """(command, output lines) for a session; (command, []) for a list of commands."""
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if not line.strip() or (line.lstrip().startswith("#") and not line.startswith("$ ")):
            continue
        text = line[2:] if line.startswith("$ ") else line
        while text.rstrip().endswith("\\") and index < len(lines):
            text = text.rstrip()[:-1] + " " + lines[index].strip()
            index += 1
        output: list[str] = []
        if line.startswith("$ "):
            while index < len(lines) and not lines[index].startswith("$ "):
                output.append(lines[index])
                index += 1
        yield text.strip(), output


def commands_of(block: Block) -> list[Command]:
    commands = []
    for text, output in _logical_lines(block.lines):
        command = _command(text)
        command.expected = output
        if command.argv:
            commands.append(command)
    return commands


def not_run_reason(command: Command) -> str | None:
    """Why an allowed non-torchtally command is not run; None if it is not allowed."""
    text = " ".join(command.argv)
    for pattern, why in NOT_RUN:
        if pattern.fullmatch(text):
            return why
    return None


def named_paths(command: Command) -> list[str]:
    return [word for word in command.argv[1:] if re.match(r"(scripts|benchmarks|tests)/", word)]


def run_cli(args: list[str]) -> tuple[int, str, str]:
    """``torchtally ARGS`` in this process: (exit code, stdout, stderr)."""
    from torchtally.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(args)
    return code, out.getvalue(), err.getvalue()


# -- the module layout ----------------------------------------------------------------------


def layout_problems(block: Block) -> list[str]:
    """The layout block must name every folder and module of src/torchtally, and only ones that
    exist. A folder's entry is a line indented by two spaces under ``src/torchtally/`` (with its
    more indented continuation lines); it names its modules by stem (``run``) or file name."""
    package = ROOT / "src" / "torchtally"
    entries: dict[str, str] = {}
    top: list[str] = []
    current: str | None = None
    inside = False
    for line in block.lines:
        if not line.startswith(" "):
            inside = line.strip() == "src/torchtally/"
            current = None
            if line.strip() and not inside:
                first = line.split()[0]
                if not (ROOT / first).exists():
                    entries.setdefault("?", "")
                    top.append(first)
            continue
        if not inside:
            continue
        if line.startswith("  ") and not line.startswith("   "):
            current = line.split()[0]
            entries[current] = line
        elif current is not None:
            entries[current] += " " + line
    problems = [f"{name} does not exist" for name in top]
    folders = sorted(p.name for p in package.iterdir() if p.is_dir() and p.name != "__pycache__")
    for folder in folders:
        key = next((k for k in entries if k.rstrip(",") == f"{folder}/"), None)
        text = entries.get(key, "") if key else " ".join(entries.values())
        if f"{folder}/" not in text:
            problems.append(f"the folder {folder}/ is not in the layout")
            continue
        words = set(re.findall(r"[\w*]+(?:\.[\w*]+)*", text))
        for module in sorted((package / folder).glob("*.py")):
            if module.stem != "__init__" and module.stem not in words and module.name not in words:
                problems.append(f"{folder}/{module.name} is not named in the {folder}/ entry")
        for name in words:
            if name.endswith((".py", ".json")) and not list((package / folder).glob(name)):
                if key and name in entries[key]:
                    problems.append(f"{folder}/{name} is named but does not exist")
    loose = " ".join(text for name, text in entries.items() if not name.endswith("/"))
    for module in sorted(package.glob("*.py")):
        if module.name not in loose:
            problems.append(f"{module.name} (top level) is not in the layout")
    for name in re.findall(r"[\w]+\.py", loose):
        if not (package / name).exists():
            problems.append(f"{name} (top level) is named but does not exist")
    return problems


# -- one page's samples, run in order ---------------------------------------------------------


class PageRun:
    """The samples of one page, run in page order in one namespace and one working folder."""

    def __init__(self, page: Path, folder: Path):
        self.page = page
        self.folder = folder
        self.blocks = blocks_of(page)
        self.kinds: list[str | ValueError] = []
        for i, block in enumerate(self.blocks):
            try:
                self.kinds.append(kind_of(block, self.blocks[i - 1] if i else None))
            except ValueError as error:  # reported by that block's test
                self.kinds.append(error)
        self.module = types.ModuleType(f"doc_{page.stem.replace('-', '_')}")
        self.done: dict[int, BaseException | None] = {}
        self.printed: dict[int, str] = {}  # what each sample printed (to fix a page: see the assertion)

    @contextlib.contextmanager
    def _inside(self) -> Iterator[None]:
        previous = os.getcwd()
        os.chdir(self.folder)
        sys.modules[self.module.__name__] = self.module
        sys.path.insert(0, str(self.folder))
        try:
            yield
        finally:
            sys.path.remove(str(self.folder))
            os.chdir(previous)

    def output_block(self, index: int) -> Block | None:
        following = index + 1
        if following < len(self.blocks) and self.kinds[following] == "output":
            return self.blocks[following]
        return None

    def run_up_to(self, index: int) -> None:
        """Run the blocks before ``index`` that have not run (a page's samples build on each other)."""
        for earlier in range(index):
            if earlier not in self.done:
                try:
                    self.run(earlier)
                except BaseException as error:  # noqa: BLE001 - reported by that block's own test
                    self.done[earlier] = error

    def run(self, index: int) -> None:
        kind, block = self.kinds[index], self.blocks[index]
        if isinstance(kind, ValueError):
            raise kind
        try:
            with self._inside():
                if kind == "skip":  # runs only when its test says so (a CUDA sample on a CUDA machine)
                    kind = kind_of(replace(block, marker=None), self.blocks[index - 1] if index else None)
                if kind == "python":
                    self._python(index, block)
                elif kind == "file":
                    match = FILE.match(block.marker or "")
                    assert match is not None
                    path = self.folder / match["path"]
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_text(block.text + "\n", encoding="utf-8")
                elif kind == "session":
                    self._session(index, block)
                elif kind == "commands":
                    self._commands(block)
        except BaseException as error:
            self.done[index] = error
            raise
        self.done[index] = None

    def _python(self, index: int, block: Block) -> None:
        printed = io.StringIO()
        code = compile(block.text, f"{block.name}", "exec")
        with contextlib.redirect_stdout(printed):
            try:
                exec(code, self.module.__dict__)
            finally:
                self.printed[index] = printed.getvalue()
        shown = self.output_block(index)
        if shown is not None:
            check_output(shown, printed.getvalue())

    def _session(self, index: int, block: Block) -> None:
        self.printed[index] = ""
        for command in commands_of(block):
            if not command.is_torchtally:
                raise AssertionError(f"{block.name}: `$ {command.text}` is not a torchtally command; sessions run only those")
            code, out, err = run_cli(command.cli_args)
            printed = out + err + (f"exit {code}\n" if command.echo_exit else "")
            self.printed[index] += f"$ {command.text}\n{printed}"
            expected = "\n".join(command.expected)
            assert text_matches(expected, printed), (
                f"{block.name}: `$ {command.text}` printed something else:\n{text_difference(expected, printed)}"
            )

    def _commands(self, block: Block) -> None:
        from torchtally.cli.arguments import parse

        for command in commands_of(block):
            if command.is_torchtally:
                parse(command.cli_args)  # a renamed or removed option fails here (CLIError)
                code, out, err = run_cli(command.cli_args)
                assert code == 0, f"{block.name}: `{command.text}` exited with {code}:\n{err}"
                assert out, f"{block.name}: `{command.text}` printed nothing"
                continue
            why = not_run_reason(command)
            assert why is not None, (
                f"{block.name}: `{command.text}` is neither torchtally nor on the list of commands "
                "that are not run (NOT_RUN in tests/docs_support.py)"
            )
            for path in named_paths(command):
                assert (ROOT / path).exists(), f"{block.name}: `{command.text}` names {path}, which does not exist"
