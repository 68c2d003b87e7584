"""A book as `chatterbox book` reads it: metadata, a cover, and chapters of plain text in
reading order (what every reader makes and everything downstream sees)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

WORDS_PER_MINUTE = 155
"""A narrator's pace, for the audio time `--list-chapters` estimates before any synthesis."""


@dataclass
class Chapter:
    title: str
    text: str
    documents: list[str] = field(default_factory=list)
    """An EPUB 3's content documents its text comes from (a read-along book marks them)."""

    @property
    def words(self) -> int:
        return len(re.sub(r"\[/?(?:pause|voice)[^\][]*\]", " ", self.text).split())

    @property
    def estimated_s(self) -> float:
        return self.words / WORDS_PER_MINUTE * 60


@dataclass
class Book:
    title: str
    author: str | None = None
    language: str | None = None
    """An ISO 639-1 code from the book's metadata ("en" for "en-US"), if it names one."""
    cover: bytes | None = None
    cover_type: str | None = None
    """The cover's media type ("image/jpeg", "image/png")."""
    chapters: list[Chapter] = field(default_factory=list)
    package: str | None = None
    """An EPUB 3's package document (its path in the zip); None for other books."""
    documents: list[str] = field(default_factory=list)
    """An EPUB 3's content documents that were read, in reading order (a read-along book
    gives them overlays)."""


def short_language(code: str | None) -> str | None:
    """ "en-US" -> "en"; None for a missing or unusable code."""
    if not code:
        return None
    head = re.split(r"[-_]", code.strip())[0].lower()
    return head if re.fullmatch(r"[a-z]{2}", head) else None
