"""Typed errors: each carries the exit code and a one-line message that names the fix."""

from __future__ import annotations

from collections.abc import Callable

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class ChatterboxError(Exception):
    """An expected failure: shown as one line on stderr, no traceback."""

    exit_code = EXIT_FAILURE


class BadInput(ChatterboxError):
    """The user's input (text, file, voice, flag value) is unusable."""

    exit_code = EXIT_USAGE


class ModelUnavailable(ChatterboxError):
    """Weights could not be found or loaded."""


class VoiceError(BadInput):
    """A voice reference or cached voice is missing or invalid."""


class DiskFull(ChatterboxError):
    """A write ran out of space (or into the file-size limit): nothing half-written is kept,
    and running the same work again once there is room finishes it."""


Spell = Callable[[str], str]
"""How a caller names an option in a message: `as_field` (Python, the server, batch columns)
by default; the CLI passes its own (`--top-k`)."""


def as_field(name: str) -> str:
    return name
