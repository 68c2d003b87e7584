"""What a model family must provide. The engine, pipeline, batch, voices and bench only talk to
this interface; adding a family means one new module here and one line in `__init__.py`, which
registers it in `FAMILIES`.

Data flow through a family: text -> `text_tokens` -> `decode`/`decode_batch` (T3, our loop
over upstream modules) -> `speech_tokens` (what S3Gen may see) + `tail_tokens` -> S3Gen with
`cfm_steps`. `generate` is upstream's own one-call path, the baseline bench measures against.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from chatterbox_cli.models.sampling import SamplingParams
from chatterbox_cli.runtime.errors import BadInput, Spell, as_field

if TYPE_CHECKING:
    from chatterbox_cli.models.t3.request import Decoding, Row

SPEECH_VOCAB = 6561
"""Speech tokens S3Gen understands; start (6561), stop (6562) and any others lie above."""
SAMPLES_PER_TOKEN = 960
"""S3Gen's audio per speech token: 24 kHz at 25 tokens a second."""


class Family:
    name: ClassVar[str]
    listed: ClassVar[bool] = True
    """Whether `--model` names it (the language packs are reached with `--pack`)."""
    hub_repo: ClassVar[str]
    size: ClassVar[str] = "?"
    """T3's size as Resemble states it (S3Gen and the voice encoder come on top)."""
    summary: ClassVar[str] = ""
    """What the model is for, in a few words (`chatterbox models`)."""
    title: ClassVar[str] = ""
    """The model as Resemble names it (messages); default: the name, capitalized."""
    weights: ClassVar[tuple[str, ...]]
    """Files a checkpoint directory must hold besides its tokenizer."""
    t3_file: ClassVar[str]
    """T3's weights file, one of `weights` (provenance names it: one folder may hold several)."""
    fallback: ClassVar[str | None] = None
    """A family that speaks from this one's folder when `t3_file` is missing (an older T3 the
    same repo holds); messages name it."""
    drops_last_token: ClassVar[bool] = False
    """Keep no audio of T3's last speech token (Multilingual V3: it decodes to noise)."""
    tokenizer_files: ClassVar[tuple[str, ...]]
    """Any one of these is the tokenizer."""
    hub_patterns: ClassVar[list[str]] = ["*.safetensors", "*.json", "*.txt", "*.pt", "*.model"]
    """What to download from `hub_repo` (as the family's `from_pretrained`)."""
    companion: ClassVar[tuple[str, list[str]] | None] = None
    """(repo, files) the family also takes from another hub repo (a language pack: the voice
    encoder and built-in voice); joined with `hub_repo`'s in one folder, which wins."""
    defaults: ClassVar[SamplingParams]
    knobs: ClassVar[frozenset[str]]
    """Sampling knobs this family's `generate()` uses; the others are refused."""
    cfm_steps: ClassVar[int]
    max_cfm_steps: ClassVar[int]
    vc_s3gen: ClassVar[str | None] = None
    """The S3Gen file `chatterbox convert` renders with (None: this family does not convert)."""
    meanflow: ClassVar[bool] = False
    """Its S3Gen is the meanflow (2-step) one."""
    tail_tokens: ClassVar[int] = 0
    """Silence tokens appended before S3Gen (upstream Turbo appends three)."""
    prompt_tokens: ClassVar[int]
    """Length of the T3 speech prompt in this family's conditionals (tells voice files apart)."""
    voice_family: ClassVar[str | None] = None
    """Families with the same value read each other's voice files (same voice encoder, S3Gen
    and prompt length: Nano reads Turbo's); None: this family's own name."""
    rows_per_group: ClassVar[int] = 1
    """T3 model rows one group takes in a batch (two with classifier-free guidance)."""
    prefix_cache: ClassVar[bool] = False
    int8: ClassVar[bool] = False
    fast_decode: ClassVar[bool] = False
    upstream_t3: ClassVar[str]
    """Name of the upstream T3 method `generate()` calls (bench times and caps it)."""
    upstream_tokenize: ClassVar[str | None] = None
    """The tokenizer method `generate()` calls, or None when it calls the tokenizer itself."""
    languages: ClassVar[tuple[str, ...]] = ("en",)

    def sampling(
        self,
        base: SamplingParams | None = None,
        spell: Spell = as_field,
        **given: Any,
    ) -> SamplingParams:
        """`base` (this family's defaults) with the knobs given (None = not given), checked:
        the one check for every front-end, each knob named by `spell`.
        Knobs this family does not use are refused."""
        for knob, value in given.items():
            if value is not None and knob not in self.knobs:
                raise BadInput(
                    f"{spell(knob)} is not used by the {self.name} model "
                    f"(models that use it: {', '.join(users(knob))}); drop it"
                )
        chosen = {k: v for k, v in given.items() if v is not None}
        return replace(base or self.defaults, **chosen).check(spell)

    def stream_unit(self, params: SamplingParams) -> int | None:
        """Speech tokens per streamed piece when the caller names none (None: a piece per
        group)."""
        return None

    def reads_voices_of(self, other: str) -> bool:
        """Whether a voice file made for family `other` conditions this one as it is."""
        made_for = FAMILIES.get(other)
        return made_for is not None and voice_key(made_for) == voice_key(self)

    def language(self, code: str | None, spell: Spell = as_field):
        """The `languages.Language` for `code` (None: English), if this family speaks it."""
        from chatterbox_cli.text.languages import language

        if code and code.strip().lower() != "en" and self.languages == ("en",):
            raise BadInput(
                f"the {self.name} model speaks English only; for {spell('language')} {code} "
                f"use {spell('model')} multilingual"
            )
        return language(code, self.languages)

    def check_runtime(self, runtime, spell: Spell = as_field) -> None:
        if runtime.quantize == "int8" and not self.int8:
            raise BadInput(
                f"{spell('quantize')} int8 is not available for the {self.name} model yet"
            )
        if runtime.fast_decode and not self.fast_decode:
            raise BadInput(f"{spell('fast_decode')} is not available for the {self.name} model")

    def check_cfm_steps(self, steps: int | None, spell: Spell = as_field) -> int:
        if steps is None:
            return self.cfm_steps
        if not 1 <= steps <= self.max_cfm_steps:
            raise BadInput(
                f"{spell('cfm_steps')} must be between 1 and {self.max_cfm_steps} for the "
                f"{self.name} model (upstream uses {self.cfm_steps})"
            )
        return steps

    @property
    def label(self) -> str:
        return self.title or self.name.capitalize()

    def kept_samples(self, n_tokens: int) -> int | None:
        """How much of S3Gen's audio for `n_tokens` speech tokens to keep (None: all of it);
        every render path (whole, streamed, batched) cuts here."""
        if not self.drops_last_token:
            return None
        return max(1, n_tokens - 1) * SAMPLES_PER_TOKEN

    def lacks(self, directory: Path, where: str, then: str, spell: Spell = as_field) -> str | None:
        """The one-line refusal for a checkpoint folder that lacks files (None: it is whole);
        `where` names the folder, `then` says how to get them. When only our T3 is missing and
        the fallback's T3 is there, the line names the fallback."""
        missing = self.missing_files(directory)
        if not missing:
            return None
        text = f"{where} lacks {', '.join(missing)}"
        if missing != [self.t3_file]:
            return f"{text}; {then}"
        text += f" ({self.label}'s T3)"
        other = FAMILIES.get(self.fallback or "")
        if other is not None and not other.missing_files(directory):
            return (
                f"{text}; {then}, or use {spell('model')} {other.name} ({other.label}, "
                "which is there)"
            )
        return f"{text}; {then}"

    def missing_files(self, directory: Path) -> list[str]:
        missing = [f for f in self.weights if not (directory / f).is_file()]
        if not any((directory / f).is_file() for f in self.tokenizer_files):
            missing.append(self.tokenizer_files[0])
        return missing

    def load(self, ckpt_dir: Path, device: str, quantize: str = "none"):
        """The upstream TTS object from a `from_local`-layout directory, one copy of weights."""
        raise NotImplementedError

    def text_tokens(self, tts, text: str, language: str = "en"):
        """Exactly upstream's text path: (1, L) token ids on the model's device."""
        raise NotImplementedError

    def t3_cond(self, conds, params: SamplingParams):
        """The T3 conditioning for these params (Standard folds exaggeration in here)."""
        return conds.t3

    def prepare_reference(self, tts, path: Path):
        """Upstream `prepare_conditionals` on a clip; returns its `Conditionals`."""
        raise NotImplementedError

    def decode(self, t3, row: Row, run: Decoding) -> Iterator:
        """Yield `row`'s sampled speech tokens (shape (1,)) until stop or its cap."""
        raise NotImplementedError

    def decode_batch(self, t3, rows: list[Row], run: Decoding) -> list[list[int]]:
        """Every row's sampled tokens, decoded together (rows may differ in everything)."""
        raise NotImplementedError

    def speech_tokens(self, tokens: list[int]) -> list[int]:
        """What upstream hands S3Gen from T3's samples: ids S3Gen knows (< 6561)."""
        return [t for t in tokens if t < SPEECH_VOCAB]

    def generate(self, tts, text: str, params: SamplingParams, language: str = "en"):
        """Upstream `generate()` with these params (the bench baseline)."""
        raise NotImplementedError

    def upstream_cap(self, cap: int) -> dict:
        """kwargs that make upstream's T3 method draw at most `cap` samples."""
        raise NotImplementedError


FAMILIES: dict[str, Family] = {}
"""Every family by name, in `register` order; filled once, when `chatterbox_cli.models` loads."""


def register(*families: Family) -> None:
    for family in families:
        FAMILIES[family.name] = family


def listed() -> tuple[str, ...]:
    """What `--model` names."""
    return tuple(name for name, f in FAMILIES.items() if f.listed)


def users(knob: str) -> list[str]:
    """The `--model` names whose sampling uses `knob` (the packs sample as V3 does)."""
    return [name for name in listed() if knob in FAMILIES[name].knobs]


def voice_key(family: Family) -> str:
    return family.voice_family or family.name
