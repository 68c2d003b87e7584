"""When each part of a text is said, and readable subtitle cues from it.

A `Segment` is one sentence group where it landed in the finished audio (`post.audio.joined`
gives the samples; pauses, `[pause]` markup, `--speed` and crossfades are in them). Cues follow
Netflix's Timed Text Style Guide (the common broadcast rules): at most 2 lines of at most 42
characters, cut at sentence, then clause, then word boundaries, each shown at least 1 s where
the text allows (a short cue borrows time from the silence after it, never from the next cue).
Inside a segment a cue's times come from the recognizer's word timings when the text was heard
back (`--asr`), else from its share of the segment's characters.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from chatterbox_cli.text.languages import ENGLISH, Language
from chatterbox_cli.text.segment import sentences, split_long

LINE_CHARS = 42
LINES = 2
MIN_CUE_S = 1.0
SHORT_CHARS = 16
"""A sentence shorter than this (about a second of speech) shares a cue with its neighbour."""


@dataclass(frozen=True)
class TimedWord:
    text: str
    start: float
    end: float


@dataclass(frozen=True)
class Segment:
    """A sentence group's text and its place in the audio (seconds from the start)."""

    index: int
    text: str
    start: float
    end: float
    words: tuple[TimedWord, ...] = field(default=())
    """The recognizer's words (`--asr`), on the same clock; empty when not heard back."""

    def to_dict(self) -> dict:
        out = {"index": self.index, "text": self.text, "start": round(self.start, 3),
               "end": round(self.end, 3)}  # fmt: skip
        if self.words:
            out["words"] = [
                {"text": w.text, "start": round(w.start, 3), "end": round(w.end, 3)}
                for w in self.words
            ]
        return out

    @classmethod
    def of(cls, d: dict) -> Segment:
        """A segment back from `to_dict` (a manifest record's)."""
        words = tuple(TimedWord(w["text"], w["start"], w["end"]) for w in d.get("words", ()))
        return cls(d["index"], d["text"], d["start"], d["end"], words)

    def shifted(self, by: float) -> Segment:
        """The same segment `by` seconds later (a chapter's segments in the whole book)."""
        words = tuple(TimedWord(w.text, w.start + by, w.end + by) for w in self.words)
        return replace(self, start=self.start + by, end=self.end + by, words=words)


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    text: str
    """Its lines, joined by newlines."""


def cues(segments: list[Segment], lang: Language = ENGLISH) -> list[Cue]:
    """Readable cues for `segments` (in order, non-overlapping, inside each segment's span)."""
    out: list[Cue] = []
    for k, seg in enumerate(segments):
        pieces = _pieces(seg.text, lang)
        times = _times(seg, pieces, lang)
        limit = segments[k + 1].start if k + 1 < len(segments) else None
        made = [Cue(a, b, _lines(p, lang)) for p, (a, b) in zip(pieces, times, strict=True)]
        out += _lengthened(made, limit)
    return out


def word_cues(segments: list[Segment]) -> list[Cue]:
    """One cue per word the recognizer heard, as it timed them."""
    out: list[Cue] = []
    for seg in segments:
        for w in seg.words:
            start = max(w.start, out[-1].end if out else 0.0)
            if w.text and w.end > start:
                out.append(Cue(start, w.end, w.text))
    return out


def heard_cues(words: list[TimedWord], lang: Language = ENGLISH) -> list[Cue]:
    """Cues from what a recognizer heard, where there is no script (a voice conversion): its
    words packed into pieces that fit (closed at a sentence's end or a pause of a second),
    each timed from its first word's start to its last word's end."""
    sep = " " if lang.spaced else ""
    out: list[Cue] = []
    run: list[TimedWord] = []

    def close() -> None:
        if run:
            out.append(Cue(run[0].start, run[-1].end, _lines(sep.join(w.text for w in run), lang)))
            run.clear()

    for w in words:
        text = sep.join([*(x.text for x in run), w.text])
        if run and (not _fits(text, lang) or w.start - run[-1].end >= 1.0):
            close()
        run.append(w)
        if _ends(w.text):
            close()
    close()
    return out


def _pieces(text: str, lang: Language) -> list[str]:
    """The text cut into pieces that fit LINES lines of LINE_CHARS: sentences, then clauses
    (`text.segment`'s own cutting), then words; short neighbours joined again."""
    sep = " " if lang.spaced else ""
    out: list[str] = []
    for sentence in sentences(" ".join(text.split()), lang) or [text.strip()]:
        for clause in split_long(sentence, LINE_CHARS * LINES - 2, lang):
            for piece in [clause] if _fits(clause, lang) else _packed(clause, lang):
                merged = f"{out[-1]}{sep}{piece}" if out else ""
                short = out and min(len(out[-1]), len(piece)) < SHORT_CHARS
                if out and _fits(merged, lang) and (not _ends(out[-1]) or short):
                    out[-1] = merged
                else:
                    out.append(piece)
    return [p for p in out if p.strip()]


def _fits(piece: str, lang: Language) -> bool:
    return len(piece) <= LINE_CHARS or _break(piece, lang) is not None


def _packed(piece: str, lang: Language) -> list[str]:
    """Words packed into lines of LINE_CHARS, LINES lines a piece (a word longer than a line
    is a line of its own)."""
    if not lang.spaced:
        size = LINE_CHARS * LINES
        return [piece[i : i + size] for i in range(0, len(piece), size)]
    lines: list[str] = []
    for word in piece.split():
        if lines and len(lines[-1]) + 1 + len(word) <= LINE_CHARS:
            lines[-1] += f" {word}"
        else:
            lines.append(word)
    return [" ".join(lines[i : i + LINES]) for i in range(0, len(lines), LINES)]


def _ends(text: str) -> bool:
    return text.rstrip()[-1:] in ".!?。！？…"


def _break(piece: str, lang: Language) -> int | None:
    """Where a piece too long for a line splits into two that fit: the space nearest the
    middle, a clause break preferred; None where no space gives two lines that fit."""
    if not lang.spaced:
        return (len(piece) + 1) // 2 if len(piece) <= LINE_CHARS * LINES else None
    fits = [
        i
        for i, c in enumerate(piece)
        if c == " " and i <= LINE_CHARS and len(piece) - i - 1 <= LINE_CHARS
    ]
    mid = len(piece) / 2
    return min(fits, key=lambda i: abs(i - mid) - (8 if piece[i - 1] in ",;:" else 0), default=None)


def _lines(piece: str, lang: Language) -> str:
    """One line, or two cut at `_break` (a word longer than a line stays whole)."""
    cut = _break(piece, lang) if len(piece) > LINE_CHARS else None
    if cut is None:
        return piece
    skip = 1 if lang.spaced else 0
    return f"{piece[:cut]}\n{piece[cut + skip :]}"


def _times(seg: Segment, pieces: list[str], lang: Language) -> list[tuple[float, float]]:
    """Each piece's (start, end) inside the segment: from the heard words where they line up
    with the pieces, else by share of characters."""
    weights = [max(1, len("".join(p.split()))) for p in pieces]
    total = sum(weights)
    span = max(0.0, seg.end - seg.start)
    bounds, at = [], seg.start
    for w in weights:
        bounds.append(at)
        at += span * w / total
    bounds.append(seg.end)
    if seg.words and len(pieces) > 1:
        bounds = _heard_bounds(seg, pieces, bounds)
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def _heard_bounds(seg: Segment, pieces: list[str], bounds: list[float]) -> list[float]:
    """Move each inner boundary into the widest silence between heard words within a second
    of it (the recognizer's words need not match the text, so only their times are used)."""
    pairs = zip(seg.words, seg.words[1:], strict=False)
    gaps = [((a.end + b.start) / 2, b.start - a.end) for a, b in pairs if b.start > a.end]
    moved = [bounds[0]]
    for k, b in enumerate(bounds[1:-1], start=1):
        lo, hi = moved[-1], bounds[k + 1]
        near = [(width, -abs(mid - b), mid) for mid, width in gaps if lo < mid < hi]
        near = [n for n in near if -n[1] < 1.0]
        moved.append(max(near)[2] if near else b)
    moved.append(bounds[-1])
    return moved


def _lengthened(made: list[Cue], limit: float | None) -> list[Cue]:
    """The segment's last cue held on screen to MIN_CUE_S where the silence after it allows."""
    if not made:
        return made
    last = made[-1]
    if last.end - last.start < MIN_CUE_S:
        end = last.start + MIN_CUE_S
        end = min(end, limit) if limit is not None else last.end
        made[-1] = replace(last, end=max(last.end, end))
    return made
