"""`book --read-along`: the book's chapters, already assembled from the work folder, into an
EPUB 3 with Media Overlays.

Each chapter's audio becomes an MP3 inside the book; each content document (the EPUB 3's own,
or one generated per chapter for Markdown, text and EPUB 2 books) gets its sentences wrapped
(`text/overlay.py`) and timed against the spoken segments (`text/align.py`); sentences that
were not said (front matter, chapters left out) get no overlay. Writing is `sinks/readalong.py`.
"""

from __future__ import annotations

import posixpath
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from chatterbox_cli.sinks.readalong import Clip, Overlay, folder, generated, write_read_along
from chatterbox_cli.text.chapters import Book
from chatterbox_cli.text.cues import Segment


@dataclass
class _Audio:
    name: str
    """Its path in the book."""
    path: Path
    start_s: float
    duration_s: float


@dataclass
class ReadAlong:
    """Collects each chapter's audio while the book is assembled, then writes the EPUB."""

    out: Path
    source: Path
    book: Book
    language: str
    overwrite: bool = True
    _audio: list[_Audio] = field(default_factory=list)
    _segments: list[Segment] = field(default_factory=list)
    _chapters: list[int] = field(default_factory=list)
    _tmp: tempfile.TemporaryDirectory | None = None

    @property
    def _opf(self) -> str:
        return self.book.package or "OEBPS/content.opf"

    def chapter(self, number: int, start_s: float, audio, sr: int, segments: list[Segment]):
        """Chapter `number` (1-based) said `audio`, starting at `start_s` in the book."""
        from chatterbox_cli.sinks.files import AudioFormat, write_file

        if self._tmp is None:
            self.out.parent.mkdir(parents=True, exist_ok=True)
            self._tmp = tempfile.TemporaryDirectory(prefix=".readalong-", dir=self.out.parent)
        local = Path(self._tmp.name) / f"{number:03d}.mp3"
        write_file(local, audio, sr, AudioFormat("mp3"), overwrite=True)
        name = posixpath.join(folder(self._opf), f"chapter-{number:03d}.mp3")
        self._audio.append(_Audio(name, local, start_s, len(audio) / sr))
        self._segments += [s.shifted(start_s) for s in segments]
        self._chapters.append(number)

    def finish(self) -> Path:
        try:
            return self._write()
        finally:
            self.close()

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def _source(self):
        """Makes an iterator over the book's files: the EPUB 3's own (read from the zip each
        time, not held), or the generated EPUB 3 (built once)."""
        if self.book.package is not None:
            from chatterbox_cli.text.epub import members

            return lambda: members(self.source)
        files = self._generated()[1]
        return lambda: iter(files)

    def _generated(self):
        from chatterbox_cli.text.overlay import page

        book = self.book
        pages = [
            (book.chapters[n - 1].title, page(book.chapters[n - 1].title,
                                              book.chapters[n - 1].text, self.language))
            for n in self._chapters
        ]  # fmt: skip
        cover = (book.cover, book.cover_type) if book.cover and book.cover_type else None
        return generated(book.title, book.author, self.language, pages, cover)

    def _documents(self, files) -> dict[str, bytes]:
        """The content documents to mark, by their path in the book, in reading order."""
        if self.book.package is None:
            return {n: d for n, d in files if n.startswith("OEBPS/text/")}
        wanted = {d for n in self._chapters for d in self.book.chapters[n - 1].documents}
        found = {n: d for n, d in files if n in wanted}
        return {n: found[n] for n in self.book.documents if n in found}

    def _write(self) -> Path:
        from chatterbox_cli.text.align import document_times
        from chatterbox_cli.text.languages import LANGUAGES
        from chatterbox_cli.text.overlay import mark

        lang = LANGUAGES[self.language]
        css = posixpath.join(folder(self._opf), "readalong.css")
        source = self._source()
        marked = {}
        for name, data in self._documents(source()).items():
            done = mark(data, lang, posixpath.relpath(css, posixpath.dirname(name)))
            if done is not None:
                marked[name] = done
        times = document_times(
            [[text for _, text in m.spans] for m in marked.values()], self._segments, lang.code
        )
        overlays = []
        for (name, doc), spans in zip(marked.items(), times, strict=True):
            if spans is None:
                continue
            overlay = Overlay(name)
            for (span, _), (start, end) in zip(doc.spans, spans, strict=True):
                clip = self._clip(span, start, end)
                if clip is not None:
                    overlay.clips.append(clip)
            overlays.append(overlay)
        said = {o.document for o in overlays if o.clips}
        documents = {n: m.xhtml for n, m in marked.items() if n in said}
        audio = {a.name: a.path for a in self._audio}
        return write_read_along(
            self.out, source(), self._opf, documents, overlays, audio, self.overwrite
        )

    def _clip(self, span: str, start: float, end: float) -> Clip | None:
        """The sentence's stretch of the chapter it starts in; None when it has none."""
        home = next((a for a in reversed(self._audio) if a.start_s <= start + 1e-6), None)
        if home is None:
            return None
        begin = start - home.start_s
        end = min(end - home.start_s, home.duration_s)
        if end - begin < 0.001:
            return None
        return Clip(span, home.name, round(begin, 3), round(end, 3))
