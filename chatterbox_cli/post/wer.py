"""How far a transcript is from the text it should say: word error rate (WER), or character
error rate (CER) where words are not spaced (zh, ja, ko, th).

Both sides go through one normalizer, so only what was said counts: the text front-end puts
numbers, dates and symbols into words on both sides ("21st" and "twenty-first" agree), then
case, punctuation and apostrophes are dropped ("It's" and "its" agree) and hyphens split.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

CHARACTER_LANGUAGES = frozenset(("zh", "ja", "ko", "th"))
"""Scored by characters: their words are not spaced (and Korean spacing varies)."""
_APOSTROPHES = re.compile(r"['’ʼ]")


def tokens(text: str, lang: str = "en") -> list[str]:
    """The units scored: words, or characters in `CHARACTER_LANGUAGES`."""
    from chatterbox_cli.text.normalize import normalize

    said = normalize(_APOSTROPHES.sub("", text), lang).casefold()
    kept = "".join(
        " " if unicodedata.category(c)[0] in "PSZC" else c
        for c in unicodedata.normalize("NFKC", said)
    )
    if lang in CHARACTER_LANGUAGES:
        return [c for c in kept if not c.isspace()]
    return kept.split()


def distance(ref: list[str], hyp: list[str]) -> int:
    """Levenshtein distance over tokens (substitutions, deletions, insertions): RapidFuzz's
    bit-parallel one, so a whole book's transcript against its text stays seconds."""
    from rapidfuzz.distance import Levenshtein

    return Levenshtein.distance(ref, hyp)


@dataclass(frozen=True)
class Score:
    errors: int
    length: int
    unit: str
    """"word" or "char"."""

    @property
    def rate(self) -> float:
        """Errors per reference unit; a transcript of nothing for nothing is 0, anything for
        nothing is 1."""
        if not self.length:
            return 0.0 if not self.errors else 1.0
        return self.errors / self.length


def score(reference: str, transcript: str, lang: str = "en") -> Score:
    ref, hyp = tokens(reference, lang), tokens(transcript, lang)
    unit = "char" if lang in CHARACTER_LANGUAGES else "word"
    return Score(distance(ref, hyp), len(ref), unit)
