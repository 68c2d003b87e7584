"""Markup inside the text, and a pronunciation lexicon.

- `[pause:1.5s]` / `[pause:500ms]`: silence of that length.
- `[voice:NAME]…[/voice]`: a cached voice (or a clip) for a stretch, e.g. a character's lines.
- `\\[` is a literal `[`; any other bracket (Turbo's `[laugh]`, `[chuckle]`…) passes through.

Then numbers, money, dates and symbols are said in words (`text.normalize`), except what the
lexicon produced: the user's lexicon wins.

A lexicon (`--lexicon FILE`, TSV: word or phrase, a tab, how to say it) rewrites whole words
before synthesis. An all-lowercase entry matches any case; one with capitals matches exactly
that case ("US" -> "United States" leaves "us" alone). Longer entries win over shorter ones.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

from chatterbox_cli.runtime import limits
from chatterbox_cli.runtime.errors import BadInput
from chatterbox_cli.text.languages import ENGLISH, Language
from chatterbox_cli.text.segment import TextGroup, split_groups

TAG = re.compile(r"(?<!\\)\[(pause|voice|/voice)(?::([^\][]*))?\]", re.IGNORECASE)
PAUSE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s)?\s*", re.IGNORECASE)
MAX_PAUSE_S = 60.0


@dataclass(frozen=True)
class Span:
    text: str
    voice: str | None = None
    """None: the run's voice (`--voice`)."""


@dataclass(frozen=True)
class Pause:
    seconds: float


def parse(text: str) -> list[Span | Pause]:
    """Text -> spans of one voice and pauses, in order (empty spans dropped)."""
    out: list[Span | Pause] = []
    voice: str | None = None
    cursor = 0
    for m in TAG.finditer(text):
        _span(out, text[cursor : m.start()], voice)
        cursor = m.end()
        kind, arg = m[1].lower(), m[2]
        if kind == "pause":
            out.append(Pause(_seconds(m[0], arg)))
        elif kind == "voice":
            if not arg or not arg.strip():
                raise BadInput(f"{m[0]} names no voice: write [voice:NAME]…[/voice]")
            voice = arg.strip()
        else:
            voice = None
    _span(out, text[cursor:], voice)
    return out


def _span(out: list, text: str, voice: str | None) -> None:
    text = text.replace("\\[", "[")
    if text.strip():
        out.append(Span(text, voice))


def _seconds(tag: str, arg: str | None) -> float:
    m = PAUSE.fullmatch(arg or "")
    if not m:
        raise BadInput(f"{tag}: write a length like [pause:1.5s] or [pause:500ms]")
    seconds = float(m[1]) / (1000 if (m[2] or "s").lower() == "ms" else 1)
    if not 0 <= seconds <= MAX_PAUSE_S:
        raise BadInput(f"{tag}: a pause is at most {MAX_PAUSE_S:.0f} s")
    return seconds


def voices(parts: list[Span | Pause]) -> set[str]:
    return {p.voice for p in parts if isinstance(p, Span) and p.voice}


class Lexicon:
    def __init__(self, entries: dict[str, str]):
        self.entries = entries
        self.exact = {k: v for k, v in entries.items() if k != k.lower()}
        self.folded = {k.lower(): v for k, v in entries.items() if k == k.lower()}
        keys = sorted(entries, key=len, reverse=True)
        alternatives = "|".join(
            (r"\s+".join(map(re.escape, k.split())) if k != k.lower() else _folded(k)) for k in keys
        )
        self.pattern = re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)") if keys else None

    @classmethod
    def load(cls, path: Path) -> Lexicon:
        try:
            lines = limits.read_file(path, f"lexicon {path}").decode("utf-8-sig").splitlines()
        except UnicodeDecodeError as exc:
            raise BadInput(f"lexicon {path}: cannot read it ({exc})") from None
        entries: dict[str, str] = {}
        cap = limits.LEXICON_ENTRIES.value
        for number, line in enumerate(lines, 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if len(entries) >= cap:
                raise BadInput(
                    f"lexicon {path}: over {cap:g} entries; {limits.LEXICON_ENTRIES.hint()}"
                )
            word, sep, say = line.partition("\t")
            if not sep or not word.strip() or not say.strip():
                raise BadInput(f"lexicon {path}:{number}: write 'word or phrase<TAB>how to say it'")
            entries[" ".join(word.split())] = say.strip()
        return cls(entries)

    @classmethod
    def of(cls, value: str | Path | Lexicon | None) -> Lexicon | None:
        """A lexicon given as one, or as its file's path."""
        return value if value is None or isinstance(value, Lexicon) else cls.load(Path(value))

    def apply(self, text: str, between: Callable[[str], str] | None = None) -> str:
        """The entries said their way; `between` (normalization) reads only the text around
        them, so what the lexicon produced is never read again."""
        if self.pattern is None:
            return between(text) if between else text
        if between is None:
            return self.pattern.sub(self._say, text)
        out, cursor = [], 0
        for m in self.pattern.finditer(text):
            out += [between(text[cursor : m.start()]), self._say(m)]
            cursor = m.end()
        return "".join([*out, between(text[cursor:])])

    def _say(self, m: re.Match) -> str:
        said = " ".join(m[0].split())
        return self.exact.get(said) or self.folded[said.lower()]


def _folded(key: str) -> str:
    """A case-insensitive alternative for one lowercase key (inline flag, whitespace-free)."""
    return r"(?i:" + r"\s+".join(map(re.escape, key.split())) + ")"


def prepare(
    text: str, lexicon: Lexicon | None = None, normalize: str | None = None
) -> list[Span | Pause]:
    """Markup parsed, then the lexicon applied to what is spoken (never to voice names), then
    what it left normalized in the language `normalize` names (None: as written)."""
    parts = parse(text)
    if lexicon is None and normalize is None:
        return parts
    return [
        Span(speak(p.text, lexicon, normalize), p.voice) if isinstance(p, Span) else p
        for p in parts
    ]


def speak(text: str, lexicon: Lexicon | None = None, normalize: str | None = None) -> str:
    """One stretch of text as it will be said: the lexicon first, normalization around it."""
    between = None
    if normalize is not None:
        from chatterbox_cli.text.normalize import normalize as normalized

        between = partial(normalized, lang=normalize)
    if lexicon is None:
        return between(text) if between else text
    return lexicon.apply(text, between)


def split_marked(
    text: str,
    lexicon: Lexicon | None = None,
    short_first: bool = False,
    lang: Language = ENGLISH,
    normalize: bool = True,
) -> list[TextGroup]:
    """`split_groups` for text with markup (`say`, `batch`, the server): each voice stretch is
    grouped on its own, a group carries its voice, and a `[pause]` sets the silence before the
    group after it (pauses in a row add up; one that ends the text is the last group's tail)."""
    groups: list[TextGroup] = []
    pending: float | None = None
    paragraph = 0
    for part in prepare(text, lexicon, lang.code if normalize else None):
        if isinstance(part, Pause):
            pending = (pending or 0.0) + part.seconds
            continue
        split = split_groups(part.text, short_first=short_first and not groups, lang=lang)
        for k, group in enumerate(split):
            groups.append(
                replace(
                    group,
                    index=len(groups),
                    paragraph=paragraph + group.paragraph,
                    voice=part.voice,
                    lead_s=pending if k == 0 else None,
                )
            )
        if split:
            pending = None
            paragraph = groups[-1].paragraph + 1
    if groups and pending:
        groups[-1] = replace(groups[-1], tail_s=pending)
    return groups
