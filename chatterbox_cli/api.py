"""The Python API: `Synthesizer` is `chatterbox say` as a library call, with the same checks,
runaway guard, loudness, watermark and provenance (the `say` command is a shell over it).

    from chatterbox_cli import Synthesizer

    tts = Synthesizer("turbo")                        # hub cache or model_dir=, device="auto"
    audio = tts.say("Hello there.", voice="ref.wav", seed=1)
    audio.save("hello.wav")                           # .samples (float32), .sample_rate
    for chunk in tts.stream("A longer text. Two sentences.", voice="ann"):
        play(chunk.audio)                             # leveled and watermarked, as it is made
    tts.convert("talk.wav", voice="ann").save("talk-ann.wav")   # voice conversion

    vc = VoiceConverter("standard")                   # S3Gen alone (no T3): `chatterbox convert`
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from chatterbox_cli.models.packs import pack_model
from chatterbox_cli.models.voices import VoiceSpec
from chatterbox_cli.post import DEFAULT_LUFS
from chatterbox_cli.runtime.device import Runtime
from chatterbox_cli.runtime.errors import BadInput
from chatterbox_cli.runtime.metrics import GroupMetrics
from chatterbox_cli.sinks.files import FORMATS, AudioFormat, write_file
from chatterbox_cli.sinks.provenance import file_hash, tags
from chatterbox_cli.synth.loader import check_source, load_engine
from chatterbox_cli.synth.pipeline import StreamLeveler, group_voices, render, stream
from chatterbox_cli.synth.request import (
    Plan,
    RenderOptions,
    SpeechRequest,
    check_lufs,
    check_max_piece,
    check_speed,
)
from chatterbox_cli.synth.voices import VoiceStore
from chatterbox_cli.text.markup import Lexicon

__all__ = ["Audio", "AudioChunk", "SpeechRequest", "Synthesizer", "VoiceConverter"]


@dataclass
class Audio:
    """A finished text: mono float32 samples, loudness-normalized and watermarked."""

    samples: np.ndarray
    sample_rate: int
    provenance: dict
    """What made it (model, checkpoint, voice, seed, sampling, text hash); `save` embeds it."""
    groups: list[GroupMetrics] = field(default_factory=list)
    ttfa_s: float | None = None
    synth_s: float = 0.0
    post_s: float = 0.0
    lufs: float | None = None
    """Measured loudness before normalization (None: too short to measure)."""
    peak_limited: bool = False

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate

    @property
    def flags(self) -> list[str]:
        """What the guard still flagged after the retries, as "group N: flag"."""
        return [f"group {g.index}: {flag}" for g in self.groups for flag in g.flags]

    def save(
        self, path: str | Path, format: str | None = None, overwrite: bool = False,
        subtype: str = "PCM_16",
    ) -> Path:  # fmt: skip
        """Write atomically in `format` (default: the suffix; .wav .flac .mp3 .opus .ogg), with
        the provenance inside; an existing file needs `overwrite`."""

        path = Path(path)
        fmt = format or path.suffix.lower().lstrip(".") or "wav"
        if fmt not in FORMATS:
            raise BadInput(f"cannot write .{fmt} files; use .wav, .flac, .mp3, .opus or .ogg")
        audio_fmt = AudioFormat(fmt, subtype).check()
        return write_file(
            path, self.samples, self.sample_rate, audio_fmt, overwrite, tags(self.provenance)
        )


@dataclass(frozen=True)
class AudioChunk:
    """A piece of a stream, ready to play: leveled, watermarked mono float32 samples, the
    pause before its group at its start."""

    samples: np.ndarray
    sample_rate: int
    text: str
    """The sentence group this piece belongs to."""
    index: int
    """That group's place in the text (0-based)."""
    last: bool = True
    """The group's last piece (every piece is, unless `stream_tokens` cuts groups up)."""

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate

    @classmethod
    def of(cls, made, samples: np.ndarray) -> AudioChunk:
        """The public piece of an engine record (`synth.chunk.Synthesized`)."""
        return cls(samples, made.sample_rate, made.group.text, made.group.index, made.last)


class Synthesizer:
    """A loaded model family, checked as the CLI checks `--model`, `--model-dir`, `--device` and
    the runtime flags (bad values raise `ChatterboxError` subclasses with one-line messages)."""

    def __init__(
        self,
        model: str = "turbo",
        model_dir: str | Path | None = None,
        device: str = "auto",
        *,
        pack: str | None = None,
        runtime: Runtime | None = None,
        asr: str | Path | None = None,
    ):
        """`asr`: a faster-whisper model name or CTranslate2 folder that hears every group
        back (a group off its text by more than `asr_max_wer` is retried, `post/asr.py`)."""
        from chatterbox_cli.post.asr import Listener, resolve

        source, device, runtime = check_source(
            pack_model(model, pack), Path(model_dir) if model_dir else None, device, runtime
        )
        heard = resolve(str(asr)) if asr is not None else None
        self._attach(load_engine(source, device, runtime))
        if heard is not None:
            self.engine.listener = Listener(heard, self.engine.device)

    @classmethod
    def of(cls, engine) -> Synthesizer:
        """A `Synthesizer` over an engine already loaded (the CLI's, checked and loaded once)."""
        tts = cls.__new__(cls)
        tts._attach(engine)
        return tts

    def _attach(self, engine) -> None:
        self.engine = engine
        self.voices = VoiceStore.of(engine)

    @property
    def sample_rate(self) -> int:
        return self.engine.sample_rate

    @property
    def device(self) -> str:
        return self.engine.device

    def voice(self, voice: str | Path | None = None) -> tuple[VoiceSpec, Any]:
        """The voice (None: the checkpoint's own; a clip; a `.pt`; a cached name) resolved and
        prepared once: later texts in the same voice reuse it."""
        found = self.voices.get(voice)
        return found.spec, found.conds

    def plan(
        self, text: str | SpeechRequest | Plan, voice: str | Path | None = None,
        streaming: bool = False, **options: Any,
    ) -> Plan:  # fmt: skip
        """A text (with any `SpeechRequest` field as an option), a request or a plan, checked
        once against this model: a `Plan` made before (the CLI's, for its early errors) is
        taken as it is."""
        if isinstance(text, Plan):
            if text.family is not self.engine.family:
                raise BadInput(f"the plan is for the {text.family.name} model, not this one")
            if options or voice is not None:
                raise BadInput("a plan is checked already; give its options to plan()")
            return text
        if "lexicon" in options:
            options["lexicon"] = Lexicon.of(options["lexicon"])
        if voice is not None:
            options["voice"] = str(voice)
        if isinstance(text, SpeechRequest):
            request = text.replace(**options) if options else text
        else:
            request = SpeechRequest.of(text, **options)
        if streaming and not request.streaming:
            request = request.replace(streaming=True)
        return request.plan(self.engine.family)

    def _voices(self, plan: Plan):
        """The plan's voice spec and its conditionals (one per group with `[voice]` markup)."""
        spec, conds = self.voice(plan.request.voice)
        return spec, group_voices(list(plan.groups), conds, lambda name: self.voice(name)[1])

    def say(
        self,
        text: str | SpeechRequest | Plan,
        voice: str | Path | None = None,
        *,
        on_chunk: Callable[[Any], None] | None = None,
        **options: Any,
    ) -> Audio:
        """The whole text, finished. `options` are `SpeechRequest`'s fields: `language`,
        `seed`, the model's knobs (temperature, top_p, top_k, min_p, repetition_penalty,
        cfg_weight, exaggeration), `max_new_tokens`, `cfm_steps`, `retries`, `lufs`,
        `pause_s`, `speed` (0.5-2, pitch kept), `lexicon` (a TSV file that rewrites words
        first), `normalize` (False: numbers, dates and symbols are not put into words).
        The text may hold `[pause:1.5s]` and `[voice:NAME]…[/voice]` markup.
        `on_chunk` sees each group's engine record (tokens, timings) as it is synthesized
        (progress)."""
        from chatterbox_cli.sinks import provenance

        plan = self.plan(text, voice, **options)
        spec, conds = self._voices(plan)
        opts = plan.options
        rendered = render(self.engine, list(plan.groups), conds, opts, on_chunk=on_chunk)
        made = provenance.record(
            self.engine,
            voice=provenance.voice_id(spec, self.engine.model_dir),
            seed=opts.seed,
            sampling=opts.sampling,
            text=plan.request.text,
            cfm_steps=opts.cfm_steps,
            said=plan.groups,
        )
        return Audio(
            samples=rendered.audio,
            sample_rate=rendered.sample_rate,
            provenance=made,
            groups=rendered.groups,
            ttfa_s=rendered.ttfa_s,
            synth_s=rendered.synth_s,
            post_s=rendered.post_s,
            lufs=rendered.loudness.measured_lufs,
            peak_limited=rendered.loudness.peak_limited,
        )

    def convert(self, source: str | Path | bytes, voice: str | Path | None = None, **options):
        """Voice conversion with this model's S3Gen (`VoiceConverter.convert`'s options)."""
        return self._converter().convert(source, voice, **options)

    def _converter(self) -> VoiceConverter:
        from chatterbox_cli.synth.convert import check_model, from_engine

        check_model(self.engine.family.name)
        if getattr(self, "_vc", None) is None:
            self._vc = VoiceConverter(converter=from_engine(self.engine))
        return self._vc

    def stream(
        self,
        text: str | SpeechRequest | Plan,
        voice: str | Path | None = None,
        *,
        on_chunk: Callable[[Any], None] | None = None,
        **options: Any,
    ) -> Iterator[AudioChunk]:
        """`AudioChunk`s as they are made, shortest first group first: one per sentence group,
        or one every `stream_tokens` speech tokens (`say`'s options, plus `stream_tokens`).
        Each chunk's `samples` are leveled and watermarked, with the pause before its group
        at its start; played in order they are the whole text. `on_chunk` sees each group's
        engine record as it is synthesized (metrics). `bench` measures this path."""

        plan = self.plan(text, voice, streaming=True, **options)
        _spec, conds = self._voices(plan)
        run = stream(self.engine, list(plan.groups), conds, plan.options, on_chunk)
        for chunk, samples in run:
            yield AudioChunk.of(chunk, samples)


class VoiceConverter:
    """`chatterbox convert` as a library call: a source recording in a target voice, any
    length (cut at pauses, see `synth/convert.py`), leveled, watermarked, with provenance.
    Loads S3Gen alone; `Synthesizer.convert` uses the S3Gen its model already holds."""

    def __init__(
        self,
        model: str = "standard",
        model_dir: str | Path | None = None,
        device: str = "auto",
        *,
        dtype: str = "auto",
        threads: int | None = None,
        converter: Any = None,
    ):
        from chatterbox_cli.runtime.device import check_device_name, resolve_device
        from chatterbox_cli.synth.convert import check_model, load_converter

        if converter is None:
            check_model(model)
            asked = Runtime(threads=threads, dtype=dtype).check_flags()
            check_device_name(device)
            device = resolve_device(device)
            runtime = asked.check(device)
            runtime.apply()
            path = Path(model_dir) if model_dir else None
            converter = load_converter(model, path, device, runtime.dtype)
        self.converter = converter
        self.voices = VoiceStore(converter.family.name, converter.target, converter.model_dir)

    @property
    def sample_rate(self) -> int:
        return self.converter.sample_rate

    def voice(self, voice: str | Path | None = None) -> tuple[VoiceSpec, Any]:
        """The target voice (None: the checkpoint's own; a clip; a `.pt`; a cached name),
        resolved and embedded once."""
        found = self.voices.get(voice)
        return found.spec, found.conds

    def _source(self, source, max_piece_s: float):
        """(the scanned source, its hash for provenance); a `SourcePlan` is taken as it is."""
        import hashlib

        from chatterbox_cli.synth.convert import SourcePlan, scan_source

        if not isinstance(source, SourcePlan):
            label = "standard input" if isinstance(source, bytes) else None
            source = scan_source(source, label, max_piece_s)
        if isinstance(source.source, bytes):
            return source, hashlib.sha256(source.source).hexdigest()[:16]
        return source, file_hash(Path(source.source))

    def pieces(
        self, source: str | Path | bytes, voice: str | Path | None = None, *,
        seed: int | None = None, cfm_steps: int | None = None, max_piece_s: float | None = None,
    ):  # fmt: skip
        """(provenance, the raw converted pieces as they are done): before loudness and mark."""
        from chatterbox_cli.sinks import provenance
        from chatterbox_cli.synth.convert import MAX_PIECE_S

        family = self.converter.family
        steps = family.check_cfm_steps(cfm_steps)
        limit = check_max_piece(max_piece_s or MAX_PIECE_S)
        spec, ref = self.voice(voice)
        plan, digest = self._source(source, limit)
        made = provenance.convert_record(
            self.converter, voice=provenance.voice_id(spec, self.converter.model_dir),
            seed=seed, source_sha256=digest, cfm_steps=steps,
        )  # fmt: skip
        run = self.converter.convert(plan, ref, seed=seed, cfm_steps=steps)
        return made, run

    def convert(
        self, source: str | Path | bytes, voice: str | Path | None = None, *,
        seed: int | None = None, lufs: float = DEFAULT_LUFS, cfm_steps: int | None = None,
        max_piece_s: float | None = None, on_piece: Callable[[Any], None] | None = None,
        speed: float = 1.0,
    ) -> Audio:  # fmt: skip
        """The whole recording converted, at `speed` (0.5-2, pitch kept), loudness-normalized
        and watermarked."""
        import time

        from chatterbox_cli.post.audio import master
        from chatterbox_cli.post.tempo import Stretcher

        check_lufs(lufs)
        stretcher = Stretcher(self.sample_rate, check_speed(speed))
        made, run = self.pieces(
            source, voice, seed=seed, cfm_steps=cfm_steps, max_piece_s=max_piece_s
        )
        t0 = time.perf_counter()
        parts, ttfa = [], None
        for piece in run:
            parts.append(piece.audio)
            ttfa = ttfa if ttfa is not None else time.perf_counter() - t0
            if on_piece:
                on_piece(piece)
        t1 = time.perf_counter()
        parts = [stretcher.push(p, last=i == len(parts) - 1) for i, p in enumerate(parts)]
        cuts = np.cumsum([len(p) for p in parts])[:-1].tolist()  # Perth a piece at a time
        wm = self.converter.watermarker
        out, loud = master(np.concatenate(parts), self.sample_rate, wm, lufs, cuts)
        return Audio(
            samples=out, sample_rate=self.sample_rate, provenance=made, ttfa_s=ttfa,
            synth_s=t1 - t0, post_s=time.perf_counter() - t1, lufs=loud.measured_lufs,
            peak_limited=loud.peak_limited,
        )  # fmt: skip

    def stream(
        self, source: str | Path | bytes, voice: str | Path | None = None, *,
        seed: int | None = None, lufs: float = DEFAULT_LUFS, cfm_steps: int | None = None,
        max_piece_s: float | None = None, on_piece: Callable[[Any], None] | None = None,
        speed: float = 1.0,
    ) -> Iterator[np.ndarray]:  # fmt: skip
        """Leveled, watermarked audio piece by piece as each is converted (gain fixed by the
        first piece, as `Synthesizer.stream`), the pieces stretched as one signal."""
        from chatterbox_cli.post.tempo import Stretcher

        opts = RenderOptions(lufs=check_lufs(lufs), pause_s=0)
        stretcher = Stretcher(self.sample_rate, check_speed(speed))
        _made, run = self.pieces(
            source, voice, seed=seed, cfm_steps=cfm_steps, max_piece_s=max_piece_s
        )
        leveler = StreamLeveler(self.sample_rate, [], opts, self.converter.watermarker)
        for piece in run:
            if on_piece:
                on_piece(piece)
            yield leveler.level(stretcher.push(piece.audio, last=piece.last))
