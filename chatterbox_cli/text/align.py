"""When each written sentence is said: the book's own sentences (as written, before markup,
lexicon and normalization) matched word by word against the spoken segments (`text.cues`),
so a read-along book can highlight its own text while the audio plays.

The spoken words come from the normalized text ("5 p.m." is said "five p.m."), so both sides
are put through the same normalizer before they are compared; the match is a longest-common-
subsequence over the words (difflib), so words the lexicon changed or markup dropped only
leave small holes, filled from their neighbours.
"""

from __future__ import annotations

import difflib
import re
import unicodedata

from chatterbox_cli.text.cues import Segment

_WORD = re.compile(r"\w+", re.UNICODE)


def words(text: str, lang: str, normalize: bool = True) -> list[str]:
    """The words compared: the text as spoken (when `normalize`), case-folded, punctuation
    dropped; characters in unspaced scripts."""
    from chatterbox_cli.text.languages import LANGUAGES
    from chatterbox_cli.text.normalize import normalize as said

    text = said(text, lang) if normalize else text
    text = unicodedata.normalize("NFKC", text).casefold()
    if lang in LANGUAGES and not LANGUAGES[lang].spaced:
        return [c for c in text if c.isalnum()]
    return _WORD.findall(text)


def timed_words(segments: list[Segment], lang: str) -> list[tuple[str, float, float]]:
    """Each spoken word with its time: its share of its segment by characters."""
    out = []
    for seg in segments:
        said = words(seg.text, lang, normalize=False)
        total = sum(len(w) for w in said) or 1
        at, span = seg.start, max(0.0, seg.end - seg.start)
        for w in said:
            step = span * len(w) / total
            out.append((w, at, at + step))
            at += step
    return out


def _match(sentences: list[str], spoken, lang: str, normalize: bool):
    """Each sentence's matched word times, the index after the last spoken word matched, and
    how many of how many written words matched."""
    written: list[str] = []
    owner: list[int] = []
    for k, sentence in enumerate(sentences):
        found = words(sentence, lang, normalize)
        written += found
        owner += [k] * len(found)
    match = difflib.SequenceMatcher(None, written, [w for w, _, _ in spoken], autojunk=False)
    spans: list[list[float]] = [[] for _ in sentences]
    matched, after = 0, 0
    for block in match.get_matching_blocks():
        for i in range(block.size):
            _, start, end = spoken[block.b + i]
            spans[owner[block.a + i]] += [start, end]
        matched += block.size
        if block.size:
            after = block.b + block.size
    return spans, after, matched, len(written)


def _fill(spans: list[list[float]], first: float, end_of_speech: float):
    """In order and non-overlapping; a sentence with no matched word gets the moment its
    neighbours meet."""
    out: list[tuple[float, float]] = []
    for k, span in enumerate(spans):
        last = out[-1][1] if out else first
        if span:
            out.append((max(last, min(span)), max(last, max(span))))
        else:
            later = next((min(s) for s in spans[k + 1 :] if s), end_of_speech)
            out.append((last, max(last, later)))
    return out


def sentence_times(
    sentences: list[str], segments: list[Segment], lang: str, normalize: bool = True
) -> list[tuple[float, float]]:
    """(start, end) in seconds for each written sentence, in order and non-overlapping; a
    sentence none of whose words were found gets the moment its neighbours meet."""
    spans, _, _, _ = _match(sentences, timed_words(segments, lang), lang, normalize)
    first = segments[0].start if segments else 0.0
    return _fill(spans, first, segments[-1].end if segments else 0.0)


MIN_MATCHED = 0.5
"""A document whose words were not at least half found in the speech was not read (a chapter
left out with `--chapters`): it gets no times."""


def document_times(
    documents: list[list[str]], segments: list[Segment], lang: str, normalize: bool = True
) -> list[list[tuple[float, float]] | None]:
    """`sentence_times` for each document of a book in reading order, matched against the
    stretch of speech after the previous document's, so time and memory stay linear in the
    book's length; None for a document that was not said."""
    spoken = timed_words(segments, lang)
    pos, out = 0, []
    for sentences in documents:
        need = sum(len(words(s, lang, normalize)) for s in sentences)
        window = spoken[pos : pos + 2 * need + 200]
        spans, after, matched, total = _match(sentences, window, lang, normalize)
        if not total or matched < MIN_MATCHED * total:
            out.append(None)
            continue
        end = window[after - 1][2]
        out.append(_fill(spans, window[0][1], end))
        pos += after
    return out
