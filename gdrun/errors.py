"""User-facing errors and the exit codes gdrun promises.

Anything a user can get wrong (a config key, an expression, a device) raises
:class:`GdrunError`; the CLI turns it into one line on stderr and its exit code.
"""

from __future__ import annotations

import difflib
from typing import Iterable

#: Exit codes, documented in ``gdrun --help`` and the README.
EXIT_OK = 0  # converged or max_epochs
EXIT_EXPECTATION = 1  # reserved: a config's expectations were not met
EXIT_BAD_INPUT = 2  # bad config, expression, flag or device
EXIT_DIVERGED = 3
EXIT_FAILED = 4
EXIT_INTERRUPTED = 130  # Ctrl-C, as shells report SIGINT

STATUS_EXIT_CODES = {
    "converged": EXIT_OK,
    "max_epochs": EXIT_OK,
    "diverged": EXIT_DIVERGED,
    "failed": EXIT_FAILED,
    "interrupted": EXIT_INTERRUPTED,
}


class GdrunError(Exception):
    """What gdrun raises for anything a user can get wrong; its message is one line.

    Raised as ``GdrunError(message)`` it is an :class:`InputError` (exit code 2); with another exit
    code (4: a run could not finish) a :class:`RunError`, so a Python caller can tell them apart
    while every ``except GdrunError`` still catches both.
    """

    default_exit_code = EXIT_BAD_INPUT

    def __new__(cls, message: str = "", exit_code: int | None = None):
        if cls is GdrunError:
            cls = InputError if exit_code in (None, EXIT_BAD_INPUT) else RunError
        return super().__new__(cls, message)

    def __init__(self, message: str = "", exit_code: int | None = None):
        super().__init__(message)
        self.exit_code = self.default_exit_code if exit_code is None else exit_code


class InputError(GdrunError):
    """Bad input: a config key, an expression, a flag, a device, a run that is not there."""


class RunNotFound(InputError):
    """A run reference (a path, ``last~N``, a name or a prefix) names no run, or more than one."""


class RunError(GdrunError):
    """A run that could not finish (a full disk): exit code 4."""

    default_exit_code = EXIT_FAILED


def closest(name: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices``, or ``''``."""
    match = difflib.get_close_matches(str(name), list(choices), n=1, cutoff=0.5)
    return f" (did you mean '{match[0]}'?)" if match else ""


def unknown_name(kind: str, name: str, choices: Iterable[str]) -> GdrunError:
    """The one error every registry raises for a name it does not know."""
    choices = sorted(choices)
    return GdrunError(f"unknown {kind} '{name}'{closest(name, choices)}; choices: {', '.join(choices)}")


def known(kind: str, name, choices: Iterable[str]) -> str:
    """``name`` if it is one of ``choices``; otherwise the registry's one error (a list or a number
    where a name is due included)."""
    choices = tuple(choices)
    if not isinstance(name, str) or name not in choices:
        raise unknown_name(kind, name if isinstance(name, str) else repr(name)[:60], choices)
    return name


def check_option_names(owner: str, given, known) -> None:
    """One error for an option ``owner`` (e.g. "optimizer 'sgd'") does not take."""
    names = sorted(known)
    for key in given:
        if key not in known:
            raise GdrunError(f"unknown option '{key}' for {owner}{closest(key, names)}; options: {', '.join(names)}")
