"""A book -> sentence groups as batch items in a work folder -> chapters assembled from it.

Each group is one batch item (`jobs/batch.py`: batched, guarded, retried, journaled in the work
folder's manifest, on this machine or on Ray) named by a digest of everything that shapes its
audio (text, voice, language, model, sampling, seed). So a rerun after a crash reuses every
finished group, a changed chapter invalidates only its own groups, and a group's seed comes from
what it says, not where it sits. Assembly reads only the work folder: chapters stream into an
M4B (`sinks/m4b.py`) and/or one file per chapter, with pauses between groups and paragraphs.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from chatterbox_cli.jobs.inputs import BatchItem
from chatterbox_cli.runtime.atomic import disk_full, space_error
from chatterbox_cli.runtime.errors import DiskFull
from chatterbox_cli.synth.seeds import group_seed
from chatterbox_cli.text.chapters import Book
from chatterbox_cli.text.cues import Segment
from chatterbox_cli.text.languages import LANGUAGES
from chatterbox_cli.text.markup import Lexicon, Pause, prepare
from chatterbox_cli.text.segment import split_groups

PARAGRAPH_S = 0.6
"""Silence after a paragraph (a group's own pause is `--pause`)."""
CHAPTER_S = 2.0
"""Silence after each chapter, so chapters do not run into each other."""
WORK_FORMAT = "flac"
HEARD = ("transcript", "wer", "unit")
"""What the report keeps of a group's listening (word timings stay in the work manifest)."""


@dataclass
class Piece:
    """A group to say (`name` is its work file's stem) or a `[pause]` (name None), and the
    silence after it."""

    name: str | None
    text: str
    voice: str | None
    after_s: float


@dataclass
class PlannedChapter:
    number: int
    """1-based, as in the book (and `--chapters`)."""
    title: str
    pieces: list[Piece] = field(default_factory=list)


def _spoken_title(title: str, text: str) -> bool:
    """Say the title first unless the text opens with it (an EPUB's heading)."""
    first = " ".join(text.split("\n\n", 1)[0].split()).lower().rstrip(".")
    return not first or first not in title.lower()


def plan(
    book: Book,
    picked: list[int],
    identity: dict,
    language: str,
    lexicon: Lexicon | None,
    pause_s: float,
    normalize: bool = True,
) -> list[PlannedChapter]:
    """The chapters in `picked`, as pieces of spoken text (markup, lexicon and normalization
    applied). `identity` holds what shapes the audio besides the text, voice and language
    (model, checkpoint, sampling, seed, loudness)."""
    lang = LANGUAGES[language]
    planned = []
    for index in picked:
        chapter = book.chapters[index]
        text = chapter.text
        if _spoken_title(chapter.title, text):
            text = f"{chapter.title}.\n\n{text}"
        out = PlannedChapter(index + 1, chapter.title)
        for part in prepare(text, lexicon, language if normalize else None):
            if isinstance(part, Pause):
                if out.pieces:
                    out.pieces[-1].after_s = 0.0
                out.pieces.append(Piece(None, "", None, part.seconds))
                continue
            groups = split_groups(part.text, lang=lang)
            for k, group in enumerate(groups):
                last = k + 1 == len(groups)
                gap = pause_s if last or groups[k + 1].paragraph == group.paragraph else PARAGRAPH_S
                if last and part.text.rstrip(" \t").endswith("\n"):
                    gap = PARAGRAPH_S
                name = piece_name(identity, part.voice, language, group.text)
                out.pieces.append(Piece(name, group.text, part.voice, gap))
        planned.append(out)
    return planned


def piece_name(identity: dict, voice: str | None, language: str, text: str) -> str:
    key = json.dumps([identity, voice, language, text], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:24]


def items(planned: list[PlannedChapter], source: str, language: str, seed: int | None):
    """One batch item per distinct group (a sentence said twice is synthesized once)."""
    seen: dict[str, BatchItem] = {}
    for chapter in planned:
        for piece in chapter.pieces:
            if piece.name is None or piece.name in seen:
                continue
            seen[piece.name] = BatchItem(
                source=source,
                line=chapter.number,
                text=piece.text,
                id=piece.name,
                voice=piece.voice,
                language=language,
                seed=group_seed(seed, int(piece.name[:15], 16)),
                name=piece.name,
                plain=True,
            )
    return list(seen.values())


@dataclass
class ChapterReport:
    number: int
    title: str
    start_s: float
    duration_s: float
    groups: int
    flagged: list[dict] = field(default_factory=list)
    heard: list[dict] = field(default_factory=list)
    """With listening: each group's transcript and error rate, and where it starts."""
    segments: list[Segment] = field(default_factory=list)
    """When each group is said, from the chapter's start (subtitles)."""

    def to_dict(self) -> dict:
        out = {k: v for k, v in self.__dict__.items() if k != "segments"}
        return out | {"flagged": list(self.flagged), "heard": list(self.heard)}


def _silence(seconds: float, sr: int) -> np.ndarray:
    return np.zeros(int(round(seconds * sr)), dtype=np.float32)


def chapter_audio(chapter: PlannedChapter, work: Path, sr: int, records: dict, report):
    """Yield the chapter's audio piece by piece from the work folder; flagged groups are noted
    in `report` with where they start."""
    import soundfile as sf

    at = 0.0
    for piece in chapter.pieces:
        if piece.name is not None:
            audio, file_sr = sf.read(work / f"{piece.name}.{WORK_FORMAT}", dtype="float32")
            if file_sr != sr:
                raise ValueError(f"{piece.name}: {file_sr} Hz in a {sr} Hz book")
            rec = records.get(f"{piece.name}.{WORK_FORMAT}", {})
            where = {"at_s": round(at, 2), "text": piece.text}
            said = {k: v for h in rec.get("heard", ()) for k, v in h.items() if k in HEARD}
            if said:
                report.heard.append(where | said)
            if rec.get("flags"):
                report.flagged.append(where | {"flags": rec["flags"]} | said)
            report.groups += 1
            report.segments += [
                replace(Segment.of(d), index=len(report.segments) + k).shifted(at)
                for k, d in enumerate(rec.get("segments", ()))
            ]
            yield audio
            at += len(audio) / sr
        gap = piece.after_s if piece is not chapter.pieces[-1] else CHAPTER_S
        yield _silence(gap, sr)
        at += gap
    report.duration_s = round(at, 3)


def book_provenance(records: dict, planned: list[PlannedChapter], book: Book, seed) -> dict | None:
    """The groups' provenance lifted to the book: same model, checkpoint and flags, digests of
    the chapters' text as written and as spoken (normalized, lexicon applied)."""
    from chatterbox_cli.text.segment import spoken, text_hash

    made = next((r.get("provenance") for r in records.values() if r.get("provenance")), None)
    if made is None:
        return None
    written = "\n".join(book.chapters[c.number - 1].text for c in planned)
    said = spoken(p for c in planned for p in c.pieces if p.name)
    return made | {
        "task": "book", "seed": seed, "text_sha256": text_hash(written),
        "spoken_sha256": text_hash(said),
    }  # fmt: skip


def chapter_tags(book: Book, chapter: PlannedChapter, total: int, base: dict) -> dict:
    return base | {
        "title": chapter.title,
        "album": book.title,
        "artist": book.author or "",
        "tracknumber": f"{chapter.number}/{total}",
        "genre": "Audiobook",
    }


@dataclass(frozen=True)
class Subtitles:
    """`book --subtitles`: a file beside the M4B and beside each chapter's file."""

    fmt: str
    """"srt" or "vtt"."""
    language: str
    words: bool = False

    def write(self, audio: Path, segments: list[Segment]) -> None:
        from chatterbox_cli.sinks.subtitles import save_subtitles

        lang = LANGUAGES[self.language]
        save_subtitles(audio.with_suffix(f".{self.fmt}"), segments, lang, self.words)


def assemble(
    book: Book,
    planned: list[PlannedChapter],
    work: Path,
    m4b: Path | None,
    per_chapter: Path | None,
    fmt,
    bitrate: int,
    seed,
    advance=lambda *a: None,
    subtitles: Subtitles | None = None,
    read_along=None,
) -> list[ChapterReport]:
    """Chapters from the work folder into the M4B and/or one file per chapter (each written
    whole or not at all), with `subtitles` beside each, and into a read-along EPUB
    (`jobs/readalong.ReadAlong`); a report per chapter."""
    import soundfile as sf

    from chatterbox_cli.jobs.inputs import safe_name
    from chatterbox_cli.sinks import provenance
    from chatterbox_cli.sinks.files import write_file
    from chatterbox_cli.sinks.m4b import M4bWriter
    from chatterbox_cli.sinks.manifest import read_manifest

    records = read_manifest(work)
    first = next(p.name for c in planned for p in c.pieces if p.name)
    sr = sf.info(str(work / f"{first}.{WORK_FORMAT}")).samplerate
    made = book_provenance(records, planned, book, seed)
    tags = provenance.tags(made) if made else {}
    writer = None
    reports, start = [], 0.0
    try:
        if m4b is not None:
            writer = M4bWriter(
                m4b, sr, book.title, book.author, book.cover, book.cover_type,
                comment=tags.get("comment"), bitrate=bitrate,
            )  # fmt: skip
        for chapter in planned:
            report = ChapterReport(chapter.number, chapter.title, round(start, 3), 0.0, 0)
            if writer is not None:
                writer.chapter(chapter.title)
            keep = [] if per_chapter is not None or read_along is not None else None
            for audio in chapter_audio(chapter, work, sr, records, report):
                if writer is not None:
                    writer.write(audio)
                if keep is not None:
                    keep.append(audio)
            if read_along is not None:
                joined = np.concatenate(keep)
                read_along.chapter(chapter.number, report.start_s, joined, sr, report.segments)
            if per_chapter is not None:
                name = f"{chapter.number:02d} - {safe_name(chapter.title) or 'chapter'}"
                path = per_chapter / f"{name}{fmt.suffix}"
                meta = chapter_tags(book, chapter, len(book.chapters), tags)
                write_file(path, np.concatenate(keep), sr, fmt, overwrite=True, tags=meta)
                if subtitles is not None:
                    subtitles.write(path, report.segments)
            start += report.duration_s
            reports.append(report)
            advance(chapter.title)
        if writer is not None:
            writer.close()
        if read_along is not None:
            read_along.finish()
        if subtitles is not None and m4b is not None:
            whole = [seg.shifted(r.start_s) for r in reports for seg in r.segments]
            subtitles.write(m4b, [replace(seg, index=k) for k, seg in enumerate(whole)])
    except BaseException as exc:
        if writer is not None:
            writer.abort()
        if read_along is not None:
            read_along.close()
        cause = space_error(exc)
        if cause is not None and m4b is not None and not isinstance(exc, DiskFull):
            audio_s = sum(r.get("audio_s") or 0 for r in records.values())
            raise disk_full(m4b, cause, int(audio_s * bitrate / 8)) from None
        raise
    return reports
