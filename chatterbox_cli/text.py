"""Text in, sentence groups out.

Chatterbox degrades on long inputs and upstream `generate()` caps T3 at ~40 s, so text is cut
into groups of 2-3 sentences with a length bound. pysbd finds the sentences; the rules here only
decide how sentences are grouped and where an over-long sentence may be cut.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from chatterbox_cli.errors import BadInput

MAX_GROUP_CHARS = 250
"""Upper bound on a group's length; at a slow 6 chars/s that is ~40 s of speech at most."""

SENTENCES_PER_GROUP = 3
FIRST_GROUP_CHARS = 80
"""Streaming starts with one short sentence (or its first clause) to cut time to first audio."""
SHORT_TAIL_CHARS = 40
"""A last group shorter than this is merged into the previous one (when that fits)."""

# Abbreviations after which a group must never end (compared lower-case, without trailing ,;:).
ABBREVIATIONS = frozenset(
    """
    dr. mr. mrs. ms. prof. sr. jr. st. mt. ft. vs. etc. e.g. i.e. u.s. u.k. u.s.a. a.m. p.m.
    jan. feb. mar. apr. jun. jul. aug. sep. sept. oct. nov. dec. no. nos. vol. fig. approx.
    inc. ltd. co. corp. dept. gen. gov. lt. col. capt. sgt. rev. hon. ave. blvd. rd. cf. al.
    """.split()
)

_CLAUSE_BREAK = re.compile(r"(?<=[,;:\u2014\u2013])\s+|\s+(?=[\u2014\u2013]\s)")
_PARAGRAPH_BREAK = re.compile(r"\n[ \t\r\f\v]*\n")


@dataclass(frozen=True)
class TextGroup:
    """One unit of synthesis: a few sentences that are spoken in one T3/S3Gen pass."""

    index: int
    text: str
    paragraph: int


def decode_bytes(data: bytes, source: str) -> str:
    """UTF-8 decode (BOM allowed) with an error that names the byte offset instead of a crash."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadInput(
            f"{source} is not valid UTF-8 (bad byte at offset {exc.start}); "
            "convert it, e.g. `iconv -f latin1 -t utf-8`"
        ) from None


def normalize(text: str) -> str:
    """NFC, no control characters, single spaces inside lines, paragraphs kept as blank lines."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch)[0] != "C")
    paragraphs = [" ".join(p.split()) for p in _PARAGRAPH_BREAK.split(text)]
    return "\n\n".join(p for p in paragraphs if p)


@lru_cache(maxsize=1)
def _segmenter():
    import pysbd

    return pysbd.Segmenter(language="en", clean=False)


def _last_word(text: str) -> str:
    words = text.split()
    return words[-1].rstrip(",;:\"'”’)").lower() if words else ""


def ends_with_abbreviation(text: str) -> bool:
    return _last_word(text) in ABBREVIATIONS


def sentences(paragraph: str) -> list[str]:
    """pysbd sentences, re-joined where pysbd cut inside a token (URL, e-mail, number) or
    right after a known abbreviation."""
    out: list[str] = []
    pos = 0
    for raw in _segmenter().segment(paragraph):
        sent = raw.strip()
        if not sent:
            continue
        start = paragraph.find(sent, pos)
        glued = out and start == pos
        pos = start + len(sent) if start >= 0 else pos
        if glued:
            out[-1] += sent
        elif out and ends_with_abbreviation(out[-1]):
            out[-1] = f"{out[-1]} {sent}"
        else:
            out.append(sent)
    return out


def _split_words(text: str, limit: int) -> list[str]:
    """Cut at spaces, never right after an abbreviation; a single over-long word stays whole."""
    pieces: list[str] = []
    current: list[str] = []
    for word in text.split(" "):
        candidate = " ".join([*current, word])
        if current and len(candidate) > limit and not ends_with_abbreviation(" ".join(current)):
            pieces.append(" ".join(current))
            current = [word]
        else:
            current.append(word)
    if current:
        pieces.append(" ".join(current))
    return pieces


def split_long(sentence: str, limit: int) -> list[str]:
    """Split an over-long sentence at clause punctuation, then at word boundaries."""
    if len(sentence) <= limit:
        return [sentence]
    clauses: list[str] = []
    for clause in _CLAUSE_BREAK.split(sentence):
        if clauses and ends_with_abbreviation(clauses[-1]):
            clauses[-1] = f"{clauses[-1]} {clause}"
        else:
            clauses.append(clause)
    pieces: list[str] = []
    for clause in clauses:
        if pieces and len(pieces[-1]) + 1 + len(clause) <= limit:
            pieces[-1] = f"{pieces[-1]} {clause}"
        elif len(clause) <= limit:
            pieces.append(clause)
        else:
            pieces.extend(_split_words(clause, limit))
    return pieces


def _group_paragraph(paragraph: str, max_chars: int, per_group: int) -> list[str]:
    units = [piece for sent in sentences(paragraph) for piece in split_long(sent, max_chars)]
    groups: list[list[str]] = []
    for unit in units:
        last = groups[-1] if groups else None
        if last and len(last) < per_group and len(" ".join([*last, unit])) <= max_chars:
            last.append(unit)
        else:
            groups.append([unit])
    texts = [" ".join(g) for g in groups]
    if len(texts) > 1 and len(texts[-1]) < SHORT_TAIL_CHARS:
        merged = f"{texts[-2]} {texts[-1]}"
        if len(merged) <= max_chars:
            texts[-2:] = [merged]
    return texts


def _first_unit(paragraph: str) -> tuple[str, str]:
    """The paragraph's first sentence (its first clause if long) and the rest."""
    first, *rest = sentences(paragraph)
    if len(first) > FIRST_GROUP_CHARS:
        first, *more = split_long(first, FIRST_GROUP_CHARS)
        rest = [" ".join(more), *rest] if more else rest
    return first, " ".join(rest)


def split_groups(
    text: str,
    max_chars: int = MAX_GROUP_CHARS,
    per_group: int = SENTENCES_PER_GROUP,
    short_first: bool = False,
) -> list[TextGroup]:
    """Normalized text -> groups; paragraph breaks always end a group.

    `short_first` makes the first group a single short sentence (for streaming).
    """
    groups: list[TextGroup] = []
    for p_index, paragraph in enumerate(normalize(text).split("\n\n")):
        if not paragraph:
            continue
        if short_first and not groups:
            first, paragraph = _first_unit(paragraph)
            groups.append(TextGroup(index=0, text=first, paragraph=p_index))
            if not paragraph:
                continue
        for chunk in _group_paragraph(paragraph, max_chars, per_group):
            groups.append(TextGroup(index=len(groups), text=chunk, paragraph=p_index))
    return groups


def slug(text: str, max_len: int = 40) -> str:
    """A file-name-safe slug of the first words, for default output names."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    words = re.findall(r"[A-Za-z0-9]+", ascii_text.lower())
    out = ""
    for word in words:
        nxt = f"{out}-{word}" if out else word
        if len(nxt) > max_len:
            break
        out = nxt
    return out or "speech"
