"""Listening back (`asr`): audio transcribed by faster-whisper (CTranslate2: int8 on CPU,
float16 on CUDA) and scored against the text it should say (`post/wer.py`).

The model is a faster-whisper name (`tiny`, `base.en`, `small`, `large-v3-turbo`, ...) found in
the Hugging Face cache or downloaded, or a local CTranslate2 folder; it is resolved before
anything heavy loads, with the one-line errors our TTS weights give. Decoding is greedy
(temperature 0, one beam): a check must give the same verdict every time, and a sampled
fallback would cost up to six decodes a window.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from chatterbox_cli.runtime.errors import BadInput, ModelUnavailable, Spell, as_field

DEFAULT_MAX_WER = 0.3
"""A group above this word (or character) error rate is flagged `asr-mismatch`.

Not measured here (no Whisper weights can be fetched on this machine): Whisper's published
WER on clean read speech is 4-8% for tiny/base (LibriSpeech test-clean; Radford et al. 2022,
table 2), and TTS evaluations with Whisper land at 2-5% for good output. A sentence group is
~10-40 words, so two or three recognition slips on a short group stay under 30%, while a
skipped or repeated clause (a third of a group) or babble goes over it."""
MISMATCH = "asr-mismatch"
"""The flag of audio that does not say its text."""
SAMPLE_RATE = 16000
WINDOW_S = 300.0
"""A long recording is transcribed this much at a time (`hear_all`)."""
MAX_TOKENS = 220
"""Tokens a 30 s window may decode (CTranslate2 stops Whisper at 224 in any case)."""


@dataclass(frozen=True)
class Word:
    text: str
    start: float
    end: float
    probability: float


@dataclass(frozen=True)
class Heard:
    """One piece of audio as the recognizer heard it, against its text."""

    transcript: str
    wer: float
    """Word error rate, or character error rate for zh, ja, ko, th (`unit`)."""
    unit: str = "word"
    words: tuple[Word, ...] = field(default=())
    """Word timings from the recognizer (seconds from the piece's start)."""
    language: str | None = None
    """The language it was heard in (detected when none was given)."""

    def to_dict(self) -> dict:
        return {"transcript": self.transcript, "wer": round(self.wer, 4), "unit": self.unit,
                "words": [asdict(w) for w in self.words]}  # fmt: skip


def check_max_wer(value: float, spell: Spell = as_field) -> float:
    if not 0 <= value <= 10:
        raise BadInput(f"{spell('asr_max_wer')} must be between 0 and 10 (0.3: 30% of words)")
    return value


def resolve(model: str, spell: Spell = as_field) -> Path:
    """The model's CTranslate2 folder: a local one, the Hugging Face cache's, or a download.
    No torch is imported: offline with nothing cached, this fails in a second."""
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "model.bin").is_file():
            raise BadInput(
                f"{spell('asr')} {path} is not a CTranslate2 model folder (no model.bin); "
                "convert one with ct2-transformers-converter, or name a model (base.en)"
            )
        return path
    try:
        from faster_whisper.utils import available_models, download_model
    except ImportError:
        raise BadInput(
            f"{spell('asr')} needs faster-whisper: pip install 'chatterbox-cli[asr]'"
        ) from None
    if model not in available_models() and model.count("/") != 1:
        raise BadInput(
            f"unknown speech-recognition model {model!r} for {spell('asr')}; one of "
            f"{', '.join(available_models())}, a hub repo (owner/name) or a CTranslate2 folder"
        )
    try:
        return Path(download_model(model, local_files_only=True))
    except Exception:  # not cached (whole): try the hub below, unless offline
        pass
    from huggingface_hub import constants

    from chatterbox_cli.models.source import hub_errors

    where = (
        f"speech-recognition model {model!r} is not in the Hugging Face cache and the hub can't "
        "be reached"
    )
    fix = "go online once to download it, point HF_HOME at a cache that has it, or pass a folder"
    if constants.HF_HUB_OFFLINE:
        raise ModelUnavailable(f"{where} (HF_HUB_OFFLINE is set); {fix}")
    try:
        return Path(download_model(model))
    except (*hub_errors(), OSError, ValueError) as exc:
        raise ModelUnavailable(f"{where} ({type(exc).__name__}); {fix}") from exc


class Listener:
    """A loaded recognizer; `hear` is safe to call from one worker thread while the engine
    synthesizes (CTranslate2 releases the GIL)."""

    def __init__(self, path: Path, device: str = "cpu", threads: int | None = None):
        from faster_whisper import WhisperModel

        cuda = device.startswith("cuda")
        self.path = path
        self.model = WhisperModel(
            str(path),
            device="cuda" if cuda else "cpu",
            compute_type="float16" if cuda else "int8",
            cpu_threads=threads or min(4, os.cpu_count() or 1),
        )

    def hear(
        self,
        samples,
        sample_rate: int,
        text: str,
        language: str | None = "en",
        bounded: bool = True,
    ) -> Heard:
        """`samples` transcribed in `language` (None: the one Whisper detects) and scored
        against `text`. `bounded`: decoding stops at three tokens a reference word (a group's
        babble costs no more than that); else at CTranslate2's own cap of a window, so the
        transcript does not depend on the text (a whole file's)."""
        import numpy as np
        import soxr

        from chatterbox_cli.post import wer

        audio = np.asarray(samples, dtype=np.float32)
        if sample_rate != SAMPLE_RATE:
            audio = soxr.resample(audio, sample_rate, SAMPLE_RATE).astype(np.float32)
        lang = language if language in self.model.supported_languages else None
        reference = wer.tokens(text, language or "")
        segments, info = self.model.transcribe(
            audio, language=lang, beam_size=1, temperature=0.0, word_timestamps=True,
            condition_on_previous_text=False, vad_filter=False,
            max_new_tokens=min(MAX_TOKENS, 20 + 3 * len(reference)) if bounded else MAX_TOKENS,
        )  # fmt: skip
        said, words = [], []
        for segment in segments:
            said.append(segment.text.strip())
            words += [Word(w.word.strip(), round(w.start, 3), round(w.end, 3),
                           round(w.probability, 3)) for w in segment.words or ()]  # fmt: skip
        transcript = " ".join(s for s in said if s)
        language = language or info.language
        score = wer.score(text, transcript, language)
        return Heard(transcript, score.rate, score.unit, tuple(words), language)

    def hear_all(self, pieces, sample_rate: int, text: str, language: str | None = "en") -> Heard:
        """A whole recording, given in pieces, transcribed `WINDOW_S` at a time (an hour is
        never held at once) and scored against `text`; word timings from the recording's
        start. Without a `language`, the first window's detected one is kept."""
        import itertools

        import numpy as np

        from chatterbox_cli.post import wer

        said, words, held, size, at = [], [], [], 0, 0.0
        for piece in itertools.chain(pieces, [None]):
            if piece is not None:
                held.append(piece)
                size += len(piece)
            if held and (piece is None or size >= WINDOW_S * sample_rate):
                heard = self.hear(np.concatenate(held), sample_rate, text, language, False)
                said.append(heard.transcript)
                words += [replace(w, start=w.start + at, end=w.end + at) for w in heard.words]
                language = heard.language
                at += size / sample_rate
                held, size = [], 0
        transcript = " ".join(s for s in said if s)
        score = wer.score(text, transcript, language or "")
        return Heard(transcript, score.rate, score.unit, tuple(words), language)

    def echo(self, source, source_rate: int, output, output_rate: int) -> tuple[Heard, Heard]:
        """What `source` says (its language detected), and `output` heard against it: a voice
        conversion keeps the words, so its output should say what its source says."""
        said = self.hear_all(source, source_rate, "", None)
        return said, self.hear_all(output, output_rate, said.transcript, said.language)
