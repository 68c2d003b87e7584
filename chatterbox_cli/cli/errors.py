"""The one error-mapping layer: typed errors -> one line on stderr + exit code."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import typer

from chatterbox_cli.cli.output import Output
from chatterbox_cli.runtime.atomic import disk_full, space_error
from chatterbox_cli.runtime.device import debug_enabled
from chatterbox_cli.runtime.errors import EXIT_FAILURE, EXIT_INTERRUPTED, ChatterboxError


def mapped_errors(fn: Callable) -> Callable:
    """Run a command so that no expected failure ever shows a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        out = Output()
        try:
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except ChatterboxError as exc:
            out.error(str(exc))
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            out.error("interrupted; nothing half-written was left behind")
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except Exception as exc:
            cause = space_error(exc)
            if cause is not None:  # standard output (-o -) on a full disk, or a pipe's file
                where = cause.filename or "standard output"
                out.error(f"{disk_full(Path(str(where)), cause)}")
                raise typer.Exit(EXIT_FAILURE) from None
            if debug_enabled():
                raise
            out.error(
                f"unexpected {type(exc).__name__}: {exc} (set CHATTERBOX_DEBUG=1 for a traceback)"
            )
            raise typer.Exit(EXIT_FAILURE) from None

    return wrapper
