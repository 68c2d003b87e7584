"""Reading a book: `read_book` picks the reader by suffix (EPUB in `text/epub.py`, Markdown
and plain text in `text/manuscript.py`); `pick_chapters` reads `--chapters`."""

from __future__ import annotations

import re
from pathlib import Path

from chatterbox_cli.runtime import limits
from chatterbox_cli.runtime.errors import BadInput
from chatterbox_cli.text.chapters import Book


def read_book(path: Path, include_front_matter: bool = False) -> Book:
    """The book at `path` (.epub, .md/.markdown, anything else as plain text)."""
    if not path.is_file():
        raise BadInput(f"{path} is not a file; pass an EPUB, a Markdown or a text file")
    suffix = path.suffix.lower()
    if suffix == ".epub":
        from chatterbox_cli.text.epub import read_epub

        book = read_epub(path, include_front_matter)
    else:
        from chatterbox_cli.text.manuscript import read_markdown, read_text
        from chatterbox_cli.text.segment import decode_bytes

        text = decode_bytes(limits.read_file(path), str(path))
        reader = read_markdown if suffix in (".md", ".markdown") else read_text
        book = reader(text, path.stem, include_front_matter)
    book.chapters = [c for c in book.chapters if c.text.strip()]
    if not book.chapters:
        raise BadInput(f"{path} holds no text to read (are its chapters all front matter?)")
    return book


def pick_chapters(spec: str | None, count: int) -> list[int]:
    """0-based chapter indexes, in reading order, from a 1-based spec like "3-7,9" (None: all)."""
    if not spec:
        return list(range(count))
    picked: set[int] = set()
    for part in spec.split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not m:
            raise BadInput(f"--chapters {spec!r}: use numbers and ranges like 3-7,9")
        lo, hi = int(m[1]), int(m[2] or m[1])
        if lo < 1 or hi > count or lo > hi:
            raise BadInput(f"--chapters {spec!r}: the book has chapters 1-{count}")
        picked.update(range(lo - 1, hi))
    return sorted(picked)
