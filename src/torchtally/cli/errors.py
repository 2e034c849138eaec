"""The CLI's exit codes, and the one error type its modules raise for a problem to report in
one line (the entry point turns it into ``torchtally: error: ...`` and its exit code)."""

from __future__ import annotations

EXIT_OK = 0
EXIT_ANALYSIS_FAILED = 1  # the model's forward (or backward) failed: tt.ForwardError / TorchtallyError
EXIT_USAGE = 2  # bad invocation, unknown model, bad input, a file that cannot be used
EXIT_BUDGET = 3  # the analysis ran and its report was written, but a --max-* budget was exceeded
EXIT_PIPE_CLOSED = 141  # the reader of stdout left (`| head`): 128 + SIGPIPE, as other tools


class CLIError(Exception):
    """A problem the user can fix, said in one line, with the exit code to return."""

    def __init__(self, message: str, code: int = EXIT_USAGE):
        super().__init__(message)
        self.code = code


def one_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message, prefixed by its type when the
    message alone would not say what happened."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
