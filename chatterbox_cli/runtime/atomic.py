"""Files appear whole or not at all: a temp file beside the target, then a rename.

`mkstemp` makes its file 0600 and a rename keeps the mode, so the temp file is given the mode a
plain `open()` would (0666 less the umask) before it takes the target's name: a web server, a
media library or another user reads our files as they would any other.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from chatterbox_cli.runtime.errors import DiskFull

TEMP_PREFIX = ".chatterbox-"
"""Temp files start with this (hidden, and swept from a batch directory on resume)."""


def plain_mode() -> int:
    """0666 less the process's umask (read from /proc where it can be, so no thread ever sees
    the umask changed for a moment)."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


SPACE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def space_error(exc: BaseException | None) -> OSError | None:
    """The out-of-space OSError behind `exc` (itself, or what it was raised from), if any."""
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, OSError) and exc.errno in SPACE_ERRNOS:
            return exc
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None


def _mb(n: float) -> str:
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{n / 1024:.0f} kB"


def disk_full(path: Path, cause: OSError, needed: int | None = None) -> DiskFull:
    """One line: which file, what stopped it, how much room it needs and what is free."""
    if cause.errno == errno.EFBIG:
        return DiskFull(
            f"writing {path} hit this process's file-size limit (ulimit -f); raise the limit "
            "and run it again: finished work is kept, nothing half-written is"
        )
    probe = Path(path).parent
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    need = f"it needs about {_mb(needed)}, " if needed else ""
    return DiskFull(
        f"no space left on the disk for {path} ({need}{_mb(free)} free); free some space and "
        "run it again: finished work is kept, nothing half-written is"
    )


@contextlib.contextmanager
def atomic_write(
    path: Path, overwrite: bool = True, suffix: str = ".part", needed: int | None = None
) -> Iterator[BinaryIO]:
    """Yield a binary file that becomes `path` when the block ends without an exception (synced
    first); otherwise nothing appears and the temp file is gone. Without `overwrite` an existing
    target is never replaced: FileExistsError. Running out of space (or into the file-size
    limit) is `DiskFull`, naming the file and `needed` bytes."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=suffix, dir=path.parent)
    except OSError as exc:
        if space_error(exc):
            raise disk_full(path, exc, needed) from None
        raise
    tmp = Path(name)
    cause = None
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), plain_mode())
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)  # fails if the target appeared meanwhile; never clobbers
    except BaseException as exc:
        cause = space_error(exc)
        if cause is None:
            raise
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    if cause is not None:  # told after the temp file is gone, so "free" is what is free
        raise disk_full(path, cause, needed)
