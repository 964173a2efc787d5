"""The command's own failures: one line on stderr and an exit code of fastfn_cli.exits."""

from __future__ import annotations

import sys

from fastfn_cli import PROG
from fastfn_cli.exits import EXIT_PROTOCOL


class CliError(Exception):
    """A failure reported as one line on stderr, exiting with `code` (fastfn_cli.exits)."""

    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.code = code


class NotAGateway(CliError):
    """A /_fn/ endpoint did not answer as a fastfn gateway does."""

    def __init__(self, message: str):
        super().__init__(message, EXIT_PROTOCOL)


def warn(message: str) -> None:
    sys.stderr.write(f"{PROG}: {message}\n")
    sys.stderr.flush()
