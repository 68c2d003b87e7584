"""Text in, sentence groups out, in any of the languages in `languages.py`.

Chatterbox degrades on long inputs and upstream `generate()` caps T3 at ~40 s, so text is cut
into groups of 2-3 sentences with a length bound (in `spoken_length`, so it means the same
speaking time in every script). pysbd finds the sentences; the rules here only decide how
sentences are grouped and where an over-long sentence may be cut.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from chatterbox_cli.runtime.errors import BadInput
from chatterbox_cli.text.languages import ENGLISH, Language, spoken_length

MAX_GROUP_CHARS = 250
"""Upper bound on a group's length; at a slow 6 chars/s that is ~40 s of speech at most."""

SENTENCES_PER_GROUP = 3
FIRST_GROUP_CHARS = 80
"""Streaming starts with one short sentence (or its first clause) to cut time to first audio."""
SHORT_TAIL_CHARS = 40
"""A last group shorter than this is merged into the previous one (when that fits)."""

# Abbreviations after which a group must never end (compared lower-case, without trailing ,;:),
# on top of pysbd's own title and number abbreviations (see `_continues`).
ABBREVIATIONS = frozenset(
    """
    dr. mr. mrs. ms. prof. sr. jr. st. mt. ft. vs. etc. e.g. i.e. u.s. u.k. u.s.a. a.m. p.m.
    jan. feb. mar. apr. jun. jul. aug. sep. sept. oct. nov. dec. no. nos. vol. fig. approx.
    inc. ltd. co. corp. dept. gen. gov. lt. col. capt. sgt. rev. hon. ave. blvd. rd. cf. al.
    """.split()
)
UNITS = frozenset(
    "kg g mg lb lbs oz km cm mm m mi yd ft in hr hrs h min mins sec secs s ml l gal qt pt".split()
)
"""Abbreviations that end a sentence only rarely when they follow a number ("5 kg. of")."""
CALENDAR = frozenset(
    "mon tue tues wed thu thur thurs fri sat sun "
    "jan feb mar apr jun jul aug sep sept oct nov dec".split()
)
"""Weekdays and months: capitalized with a period they are abbreviations ("on Fri. Oct. 3")."""
WINDOW_CHARS = 2000
"""pysbd is quadratic in paragraph length; it sees at most this much at a time."""

_CLAUSE_BREAK = re.compile(r"(?<=[,;:\u2014\u2013])\s+|\s+(?=[\u2014\u2013]\s)")
_UNSPACED_CLAUSE_BREAK = re.compile(r"(?<=[，、；：,;:])\s*")
_PARAGRAPH_BREAK = re.compile(r"\n[ \t\r\f\v]*\n")


@dataclass(frozen=True)
class TextGroup:
    """One unit of synthesis: a few sentences that are spoken in one T3/S3Gen pass."""

    index: int
    text: str
    paragraph: int
    language: str = "en"
    voice: str | None = None
    """A `[voice:NAME]` stretch's voice; None: the text's own voice."""
    lead_s: float | None = None
    """Silence before this group from `[pause]` markup; None: the run's `--pause` between
    groups (and nothing before the first)."""
    tail_s: float = 0.0
    """Silence after this group from a `[pause]` that ends the text (last group only)."""


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def spoken(groups) -> str:
    """What is said, group by group (normalized, lexicon applied): hashed next to the text."""
    return "\n".join(g.text for g in groups)


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


@lru_cache(maxsize=8)
def _segmenter(language: str = "en"):
    import pysbd

    return pysbd.Segmenter(language=language, clean=False)


@lru_cache(maxsize=1)
def _pysbd_abbreviations() -> tuple[frozenset[str], frozenset[str]]:
    """pysbd's English titles ("dr", "gen", ...) and number abbreviations ("no", "pp", ...)."""
    from pysbd.lang.english import English

    abbr = English.Abbreviation
    return frozenset(abbr.PREPOSITIVE_ABBREVIATIONS), frozenset(abbr.NUMBER_ABBREVIATIONS)


TAIL_CHARS = 128
"""What the abbreviation checks read of a sentence's end: longer words are no abbreviations,
and reading only the tail keeps a sentence glued from thousands of pieces linear."""


def _last_word(text: str) -> str:
    words = text[-TAIL_CHARS:].split()
    return words[-1].rstrip(",;:\"'”’)").lower() if words else ""


def ends_with_abbreviation(text: str, lang: Language = ENGLISH) -> bool:
    word = _last_word(text)
    if lang is not ENGLISH:
        return word in lang.abbreviations
    return word in ABBREVIATIONS or (word.endswith(".") and word[:-1] in _pysbd_abbreviations()[0])


def _continues(previous: str, sentence: str, lang: Language) -> bool:
    """pysbd cut between `previous` and `sentence`, but they are one sentence."""
    if sentence[:1].islower() or ends_with_abbreviation(previous, lang):
        return True
    if lang is not ENGLISH:
        return False
    words = previous[-TAIL_CHARS:].split()
    word = words[-1] if words else ""
    if not word.endswith(".") or word.endswith(".."):
        return False
    stem = word[:-1].lower()
    before = words[-2] if len(words) > 1 else ""
    if stem in UNITS and before.replace(",", "").replace(".", "").isdigit():
        return True
    if stem in CALENDAR and word[:1].isupper():
        return True
    return stem in _pysbd_abbreviations()[1] and sentence[:1].isdigit()


def _segments(paragraph: str, lang: Language) -> list[str]:
    """pysbd over windows of at most WINDOW_CHARS, so time grows linearly with length: each
    window's last sentence may be cut by the window, so the next window starts there."""
    out: list[str] = []
    pos = 0
    while pos < len(paragraph):
        end = pos + WINDOW_CHARS
        if end >= len(paragraph):
            out.extend(_segmenter(lang.segmenter).segment(paragraph[pos:]))
            break
        found = _segmenter(lang.segmenter).segment(paragraph[pos:end])
        if len(found) > 1:
            out.extend(found[:-1])
            pos += paragraph[pos:end].rfind(found[-1].strip())
        else:  # one sentence longer than a window: cut it at a space (split_long cuts anyway)
            cut = paragraph.rfind(" ", pos, end)
            cut = cut if cut > pos else end
            out.append(paragraph[pos:cut])
            pos = cut
    return out


def sentences(paragraph: str, lang: Language = ENGLISH) -> list[str]:
    """pysbd sentences, re-joined where pysbd cut inside a token (URL, e-mail, number), right
    after an abbreviation, or before a lower-case word. (Unspaced scripts have no tokens to
    cut inside: there a sentence always starts right where the last one ends.)"""
    out: list[list[str]] = []
    pos = 0
    for raw in _segments(paragraph, lang):
        sent = raw.strip()
        if not sent:
            continue
        start = paragraph.find(sent, pos, pos + len(raw) + WINDOW_CHARS)
        glued = out and start == pos and lang.spaced
        pos = start + len(sent) if start >= 0 else pos
        if glued:
            out[-1].append(sent)
        elif out and _continues("".join(out[-1][-2:]), sent, lang):
            out[-1] += [" ", sent]
        else:
            out.append([sent])
    return ["".join(parts) for parts in out]


def _split_words(text: str, limit: int, lang: Language) -> list[str]:
    """Cut at spaces (between characters in unspaced scripts), never right after an
    abbreviation unless a run of them is itself too long; a word longer than a group (a URL,
    base64, junk) is cut into groups' lengths, so no group is ever unbounded."""
    sep = _sep(lang)
    pieces: list[str] = []
    current: list[str] = []
    words = text.split(" ") if sep else list(text)
    if sep and any(len(w) > limit for w in words):
        words = [w[i : i + limit] for w in words for i in range(0, max(len(w), 1), limit)]
    for word in words:
        candidate = sep.join([*current, word])
        if (
            current
            and spoken_length(candidate) > limit
            and (
                not ends_with_abbreviation(sep.join(current), lang)
                or spoken_length(sep.join(current)) > limit  # a run of abbreviations ends too
            )
        ):
            pieces.append(sep.join(current))
            current = [word]
        else:
            current.append(word)
    if current:
        pieces.append(sep.join(current))
    return pieces


def _sep(lang: Language) -> str:
    """What joins sentences and words: a space, or nothing in Chinese and Japanese."""
    return " " if lang.spaced else ""


def split_long(sentence: str, limit: int, lang: Language = ENGLISH) -> list[str]:
    """Split an over-long sentence at clause punctuation, then at word boundaries."""
    if spoken_length(sentence) <= limit:
        return [sentence]
    sep = _sep(lang)
    breaks = _CLAUSE_BREAK if lang.spaced else _UNSPACED_CLAUSE_BREAK
    merged: list[list[str]] = []
    for clause in (c for c in breaks.split(sentence) if c):
        first = clause[:TAIL_CHARS].split()[0].lower() if clause.split() else ""
        if merged and (ends_with_abbreviation(merged[-1][-1], lang) or first in ABBREVIATIONS):
            merged[-1].append(clause)
        else:
            merged.append([clause])
    clauses = [sep.join(parts) for parts in merged]
    pieces: list[str] = []
    for clause in clauses:
        if pieces and spoken_length(f"{pieces[-1]}{sep}{clause}") <= limit:
            pieces[-1] = f"{pieces[-1]}{sep}{clause}"
        elif spoken_length(clause) <= limit:
            pieces.append(clause)
        else:
            pieces.extend(_split_words(clause, limit, lang))
    return pieces


def _group_paragraph(paragraph: str, max_chars: int, per_group: int, lang: Language) -> list[str]:
    sep = _sep(lang)
    units = [p for sent in sentences(paragraph, lang) for p in split_long(sent, max_chars, lang)]
    groups: list[list[str]] = []
    for unit in units:
        last = groups[-1] if groups else None
        if last and len(last) < per_group and spoken_length(sep.join([*last, unit])) <= max_chars:
            last.append(unit)
        else:
            groups.append([unit])
    texts = [sep.join(g) for g in groups]
    if len(texts) > 1 and spoken_length(texts[-1]) < SHORT_TAIL_CHARS:
        merged = f"{texts[-2]}{sep}{texts[-1]}"
        if spoken_length(merged) <= max_chars:
            texts[-2:] = [merged]
    return texts


def _first_unit(paragraph: str, lang: Language) -> tuple[str, str]:
    """The paragraph's first sentence (its first clause if long) and the rest."""
    sep = _sep(lang)
    first, *rest = sentences(paragraph, lang)
    if spoken_length(first) > FIRST_GROUP_CHARS:
        first, *more = split_long(first, FIRST_GROUP_CHARS, lang)
        rest = [sep.join(more), *rest] if more else rest
    return first, sep.join(rest)


def split_groups(
    text: str,
    max_chars: int = MAX_GROUP_CHARS,
    per_group: int = SENTENCES_PER_GROUP,
    short_first: bool = False,
    lang: Language = ENGLISH,
) -> list[TextGroup]:
    """Normalized text -> groups in language `lang`; paragraph breaks always end a group.

    `short_first` makes the first group a single short sentence (for streaming).
    """
    groups: list[TextGroup] = []
    code = lang.code
    for p_index, paragraph in enumerate(normalize(text).split("\n\n")):
        if not paragraph:
            continue
        if short_first and not groups:
            first, paragraph = _first_unit(paragraph, lang)
            groups.append(TextGroup(0, first, p_index, code))
            if not paragraph:
                continue
        for chunk in _group_paragraph(paragraph, max_chars, per_group, lang):
            groups.append(TextGroup(len(groups), chunk, p_index, code))
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
