"""One request to speak, the same object from every front-end to the decode loop.

`SpeechRequest` is what a caller asks (None: the model's default). `plan()` checks it once
against a model family, naming each knob as that caller spells it (`--top-k` on the command
line, `top_k` in Python, a batch column or a server field), and gives a `Plan`: the text's
groups, the language and the checked `RenderOptions` the engine, the retry loop, loudness and
the streams take whole. The CLI calls it before loading (its early errors), `Synthesizer`,
batch and book rows, the server and the WebSocket all call the same one.

This module stays light (no numpy, no torch): `chatterbox --help` reads its defaults.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chatterbox_cli.models.sampling import KNOBS, SamplingParams
from chatterbox_cli.post import DEFAULT_LUFS
from chatterbox_cli.post.asr import DEFAULT_MAX_WER, check_max_wer
from chatterbox_cli.runtime.errors import BadInput, Spell, as_field

if TYPE_CHECKING:
    from chatterbox_cli.models.base import Family
    from chatterbox_cli.text.languages import Language
    from chatterbox_cli.text.markup import Lexicon
    from chatterbox_cli.text.segment import TextGroup

DEFAULT_PAUSE_S = 0.2
DEFAULT_STREAM_TOKENS = 25
"""bench's `stream-tokens` default: 1 s pieces; seams measured at 47 dB SNR (10 tokens: 44)."""
RETRIES = 2
"""A group the guard flags is synthesized again up to this many times."""
MAX_RETRIES = 10
MAX_NEW_TOKENS = 1000
"""Upstream's own hidden limit (40 s of speech a group); every front-end caps here."""
TOKENS_PER_SECOND = 25
MAX_TOKENS_CEILING = 900
"""36 s of speech: the cap sized from a text never passes it (under upstream's 1000)."""


def auto_max_tokens(text: str) -> int:
    """A cap no real group should reach: ~6 letters of speech a second (slow speech, in
    `spoken_length`, so a Han character counts as a syllable) plus one second of slack."""
    from chatterbox_cli.text.languages import spoken_length

    letters = spoken_length(text)
    return min(MAX_TOKENS_CEILING, TOKENS_PER_SECOND + math.ceil(letters * TOKENS_PER_SECOND / 6))


@dataclass(frozen=True)
class RenderOptions:
    """A request's checked settings, as the engine, the guard, loudness and streams read
    them (made by `SpeechRequest.options`, never checked again)."""

    sampling: SamplingParams | None = None
    """None: the family's defaults."""
    max_new_tokens: int | Sequence[int] | None = None
    """One cap for every group, one per group, or None (sized from each group's text)."""
    seed: int | None = None
    lufs: float = DEFAULT_LUFS
    pause_s: float = DEFAULT_PAUSE_S
    cfm_steps: int | None = None
    """None: the family's own (turbo 2, standard 10)."""
    stream_tokens: int | None = None
    """Streaming sinks only: audio every N speech tokens instead of every group."""
    retries: int = 0
    """Files only: a group the guard flags is synthesized again, up to this many times."""
    asr_max_wer: float = DEFAULT_MAX_WER
    """With a recognizer: a group heard with more errors than this is flagged and retried."""
    speed: float = 1.0
    """Each group's audio time-stretched by this (`post/tempo.py`; pauses keep their length)."""

    def cap(self, group: TextGroup) -> int:
        """The group's token cap: the one asked for (per group or for all), else from its text."""
        cap = self.max_new_tokens
        if cap is not None and not isinstance(cap, int):
            cap = cap[group.index]
        return cap or auto_max_tokens(group.text)

    @property
    def user_cap(self) -> bool:
        """A cap the caller chose: reaching it is what was asked, not a runaway."""
        return self.max_new_tokens is not None


def check_lufs(lufs: float, spell: Spell = as_field) -> float:
    if not -70 <= lufs <= -5:
        raise BadInput(f"{spell('lufs')} must be between -70 and -5 (LUFS)")
    return lufs


def check_retries(retries: int, spell: Spell = as_field) -> int:
    if not 0 <= retries <= MAX_RETRIES:
        raise BadInput(f"{spell('retries')} must be between 0 and {MAX_RETRIES}")
    return retries


def check_max_new_tokens(cap: int | None, spell: Spell = as_field) -> int | None:
    if cap is not None and not 1 <= cap <= MAX_NEW_TOKENS:
        raise BadInput(
            f"{spell('max_new_tokens')} must be between 1 and {MAX_NEW_TOKENS} "
            f"(25 tokens = 1 s; upstream stops at {MAX_NEW_TOKENS})"
        )
    return cap


SPEEDS = (0.5, 2.0)
"""`speed` in the CLI and the Python API: the range where a time-stretch still sounds like
natural speech."""
OPENAI_SPEEDS = (0.25, 4.0)
"""`speed` on the server: OpenAI's speech API's range, so its clients' values are taken."""


def check_speed(
    speed: float, spell: Spell = as_field, bounds: tuple[float, float] = SPEEDS
) -> float:
    low, high = bounds
    if not low <= speed <= high:
        raise BadInput(f"{spell('speed')} must be between {low:g} and {high:g} (1: as spoken)")
    return float(speed)


def check_max_piece(seconds: float, spell: Spell = as_field) -> float:
    """A conversion's longest piece (`synth/convert.py` cuts at pauses up to it)."""
    if not 5 <= seconds <= 60:
        raise BadInput(f"{spell('max_piece_s')} must be between 5 and 60 seconds")
    return seconds


@dataclass(frozen=True)
class SpeechRequest:
    """Everything one text's synthesis is asked, as the caller gave it."""

    text: str = ""
    voice: str | None = None
    """A cached voice name, a voice `.pt`, a reference clip; None: the model's built-in."""
    language: str | None = None
    seed: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    min_p: float | None = None
    repetition_penalty: float | None = None
    cfg_weight: float | None = None
    exaggeration: float | None = None
    steps: int | None = None
    block_size: int | None = None
    max_new_tokens: int | None = None
    cfm_steps: int | None = None
    retries: int = RETRIES
    lufs: float = DEFAULT_LUFS
    pause_s: float = DEFAULT_PAUSE_S
    speed: float = 1.0
    asr_max_wer: float = DEFAULT_MAX_WER
    stream_tokens: int | None = None
    lexicon: Lexicon | None = None
    streaming: bool = False
    """Audio is sent as it is made: the first group is kept short (sooner first audio)."""
    normalize: bool = True
    """Numbers, money, dates, units and symbols said in words in the text's language."""
    markup: bool = True
    """The text may hold `[pause]`/`[voice]` markup; False: brackets are text (a book's
    groups, markup, lexicon and normalization applied before)."""

    @classmethod
    def of(cls, text: str = "", spell: Spell = as_field, **given: Any) -> SpeechRequest:
        """A request from keyword options; a name it does not know is refused (a typo)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(given) - names)
        if unknown:
            shown = sorted(names - {"text", "markup", "streaming"})
            raise BadInput(
                f"unknown option {spell(unknown[0])!r}; the options: "
                f"{', '.join(spell(n) for n in shown)}"
            )
        return cls(text, **given)

    def replace(self, **changes: Any) -> SpeechRequest:
        return dataclasses.replace(self, **changes)

    @property
    def knobs(self) -> dict[str, Any]:
        """The sampling knobs as given (None: the model's default)."""
        return {k: getattr(self, k) for k in KNOBS}

    def options(
        self, family: Family, spell: Spell = as_field, speeds: tuple[float, float] = SPEEDS
    ) -> RenderOptions:
        """Every check that needs no text, once: the knobs against the family (a knob it does
        not use is refused), ranges, the shared limits (`speeds`: the front-end's range)."""
        if self.stream_tokens is not None:
            if not self.streaming:
                raise BadInput(f"{spell('stream_tokens')} is for streaming; stream the audio")
            if not 4 <= self.stream_tokens <= 500:
                raise BadInput(
                    f"{spell('stream_tokens')} must be between 4 and 500 (25 tokens = 1 s)"
                )
        if not 0 <= self.pause_s <= 5:
            raise BadInput(f"{spell('pause_s')} must be between 0 and 5 seconds")
        sampling = family.sampling(spell=spell, **self.knobs)
        stream_tokens = self.stream_tokens
        if self.streaming and stream_tokens is None:
            stream_tokens = family.stream_unit(sampling)
        return RenderOptions(
            sampling=sampling,
            max_new_tokens=check_max_new_tokens(self.max_new_tokens, spell),
            seed=self.seed,
            lufs=check_lufs(self.lufs, spell),
            pause_s=self.pause_s,
            cfm_steps=family.check_cfm_steps(self.cfm_steps, spell),
            stream_tokens=stream_tokens,
            retries=check_retries(self.retries, spell),
            speed=check_speed(self.speed, spell, speeds),
            asr_max_wer=check_max_wer(self.asr_max_wer, spell),
        )

    def plan(
        self, family: Family, spell: Spell = as_field, speeds: tuple[float, float] = SPEEDS
    ) -> Plan:
        """The checked request: its options, language and groups (markup parsed, the lexicon
        applied, the rest normalized, every group bounded)."""
        from chatterbox_cli.text.markup import split_marked
        from chatterbox_cli.text.segment import split_groups

        opts = self.options(family, spell, speeds)
        lang = family.language(self.language, spell)
        if self.markup:
            groups = split_marked(
                self.text, self.lexicon, self.streaming, lang, normalize=self.normalize
            )
        else:
            groups = split_groups(self.text, short_first=self.streaming, lang=lang)
        if not groups:
            raise BadInput("the text is empty after normalization; give some words to speak")
        return Plan(self, family, lang, tuple(groups), opts)


@dataclass(frozen=True)
class Plan:
    """A checked request, ready for an engine of `family`."""

    request: SpeechRequest
    family: Family
    language: Language
    groups: tuple[TextGroup, ...]
    options: RenderOptions

    @property
    def voices(self) -> list[str]:
        """The `[voice:NAME]` names its markup uses, each once."""
        return sorted({g.voice for g in self.groups if g.voice})
