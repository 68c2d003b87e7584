"""Every input's size limit, in one place: each has a name, a default and an environment
variable that raises it (docs/reference.md#input-limits lists them). A limit exists so that
memory and time stay bounded whatever a file or a client sends: inputs are measured before
they are read, and read no further than the limit.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from chatterbox_cli.runtime.errors import BadInput

MB = 1024 * 1024
READ_BLOCK = 1 << 20


@dataclass(frozen=True)
class Limit:
    env: str
    default: float
    unit: str
    what: str

    @property
    def value(self) -> float:
        raw = os.environ.get(self.env)
        if raw is None or not raw.strip():
            return self.default
        try:
            value = float(raw)
        except ValueError:
            value = -1.0
        if not value > 0:
            raise BadInput(f"{self.env}={raw!r}: give a positive number of {self.unit}")
        return value

    def hint(self) -> str:
        """How to raise it, for an error's end."""
        return f"raise the limit with {self.env}=N ({self.unit})"


TEXT_MB = Limit("CHATTERBOX_MAX_TEXT_MB", 20, "MB", "one text input: a file, stdin, a book")
ROWS = Limit("CHATTERBOX_MAX_ROWS", 200_000, "rows", "rows of one batch run")
LEXICON_ENTRIES = Limit("CHATTERBOX_MAX_LEXICON", 20_000, "entries", "entries of a lexicon")
EPUB_FILES = Limit("CHATTERBOX_MAX_EPUB_FILES", 10_000, "files", "files inside an EPUB")
EPUB_MEMBER_MB = Limit("CHATTERBOX_MAX_EPUB_MEMBER_MB", 50, "MB", "one EPUB file, inflated")
EPUB_MB = Limit("CHATTERBOX_MAX_EPUB_MB", 200, "MB", "all the EPUB files read, inflated")
INFLATE_RATIO = Limit("CHATTERBOX_MAX_INFLATE_RATIO", 100, "x", "an EPUB file's inflate ratio")
AUDIO_STDIN_MB = Limit("CHATTERBOX_MAX_AUDIO_STDIN_MB", 512, "MB", "a recording piped in")
AUDIO_S = Limit("CHATTERBOX_MAX_AUDIO_S", 12 * 3600, "seconds", "a recording to convert")

RATIO_FLOOR = 1 * MB
"""Below this inflated size the ratio is not checked: small, repetitive XHTML compresses well."""
ALL = (TEXT_MB, ROWS, LEXICON_ENTRIES, EPUB_FILES, EPUB_MEMBER_MB, EPUB_MB, INFLATE_RATIO,
       AUDIO_STDIN_MB, AUDIO_S)  # fmt: skip


def too_big(what: str, size: float, limit: Limit, fix: str = "split it") -> BadInput:
    return BadInput(
        f"{what} is {size / MB:.1f} MB, over the {limit.value:g} MB limit; "
        f"{fix + ', or ' if fix else ''}{limit.hint()}"
    )


def read_file(path: Path, what: str | None = None, limit: Limit = TEXT_MB) -> bytes:
    """A file's bytes, refused by its size before anything is read (a sparse 1 GB file costs
    nothing) and read no further than the limit (a file that grows, or a device)."""
    what = what or str(path)
    cap = int(limit.value * MB)
    try:
        size = path.stat().st_size
        if size > cap:
            raise too_big(what, size, limit)
        with open(path, "rb") as fh:
            return read_stream(fh, what, limit)
    except OSError as exc:
        raise BadInput(f"cannot read {what} ({exc.strerror or type(exc).__name__})") from None


def read_stream(stream: BinaryIO, what: str, limit: Limit = TEXT_MB) -> bytes:
    """At most the limit's bytes of a stream (stdin); more is refused, not truncated."""
    cap = int(limit.value * MB)
    parts: list[bytes] = []
    size = 0
    while block := stream.read(min(READ_BLOCK, cap + 1 - size)):
        parts.append(block)
        size += len(block)
        if size > cap:
            raise BadInput(
                f"{what} is over the {limit.value:g} MB limit; split it, or {limit.hint()}"
            )
    return b"".join(parts)
