"""Running the model's own code from the command line: what it prints goes to stderr
(stdout holds only the result), it sees its own name as argv, and its exit is an error,
not ours."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

from .errors import CLIError


@contextlib.contextmanager
def model_code(spec: str) -> Iterator[None]:
    arguments = sys.argv
    try:
        with contextlib.redirect_stdout(sys.stderr):
            sys.argv = [spec.rpartition(":")[0] or spec]
            yield
    except SystemExit as exit_:
        raise CLIError(f"{spec}: the model's code exited (SystemExit {exit_.code!r}) instead of building a model") from None
    finally:
        sys.argv = arguments
