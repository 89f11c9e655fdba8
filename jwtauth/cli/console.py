"""The operator's console: one error class for one-line failures, one secret prompt."""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path


class OperatorError(Exception):
    """A failure to report to the operator as one line, without a traceback (exit status 2)."""


def stdin_is_a_terminal() -> bool:
    """Return whether a person is typing (then secrets are prompted for, not read as a line)."""
    return sys.stdin.isatty()


def read_secret(prompt: str, from_stdin: bool, *, confirm: bool = True) -> str:
    """Read a secret from standard input (one line) or a prompt (typed twice when it is new).

    Never from the command line, where `ps` and shell history would keep it.
    """
    if from_stdin or not stdin_is_a_terminal():
        value = sys.stdin.readline().rstrip("\r\n")
    else:
        value = getpass.getpass(f"{prompt}: ")
        if confirm and getpass.getpass(f"{prompt} again: ") != value:
            raise OperatorError("the two entries differ")
    if not value:
        raise OperatorError(f"an empty {prompt.lower()} is not allowed")
    return value


def settings_file(chosen: str | None) -> Path:
    """Return the settings file a command edits: --config, else $JWTAUTH_CONFIG."""
    chosen = chosen or os.environ.get("JWTAUTH_CONFIG")
    if not chosen:
        raise OperatorError("say which settings file to edit: --config FILE (or set JWTAUTH_CONFIG)")
    return Path(chosen)
