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
from pathlib import Path
from typing import Any

from chatterbox_cli.models.packs import pack_model
from chatterbox_cli.models.voices import VoiceSpec
from chatterbox_cli.runtime.device import Runtime
from chatterbox_cli.runtime.errors import BadInput
from chatterbox_cli.synth.loader import check_source, load_engine
from chatterbox_cli.synth.pipeline import group_voices, render, stream
from chatterbox_cli.synth.request import Plan, SpeechRequest
from chatterbox_cli.synth.voices import VoiceStore
from chatterbox_cli.text.markup import Lexicon

__all__ = ["Audio", "AudioChunk", "SpeechRequest", "Synthesizer", "VoiceConverter"]

from chatterbox_cli.api.audio import Audio, AudioChunk
from chatterbox_cli.api.convert import VoiceConverter


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
            segments=rendered.segments,
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
        at its start; played in order they are the whole text; a group's last chunk has its
        `segment` (when the group is said in the stream). `on_chunk` sees each group's
        engine record as it is synthesized (metrics). `bench` measures this path."""

        plan = self.plan(text, voice, streaming=True, **options)
        _spec, conds = self._voices(plan)
        run = stream(self.engine, list(plan.groups), conds, plan.options, on_chunk)
        for chunk, samples, said in run:
            yield AudioChunk.of(chunk, samples, said)
