"""Files appear whole or not at all: a temp file beside the target, then a rename.

`mkstemp` makes its file 0600 and a rename keeps the mode, so the temp file is given the mode a
plain `open()` would (0666 less the umask) before it takes the target's name: a web server, a
media library or another user reads our files as they would any other.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

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


@contextlib.contextmanager
def atomic_write(path: Path, overwrite: bool = True, suffix: str = ".part") -> Iterator[BinaryIO]:
    """Yield a binary file that becomes `path` when the block ends without an exception (synced
    first); otherwise nothing appears and the temp file is gone. Without `overwrite` an existing
    target is never replaced: FileExistsError."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=suffix, dir=path.parent)
    tmp = Path(name)
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
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
