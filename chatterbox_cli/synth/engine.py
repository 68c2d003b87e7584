"""The engine: a loaded model family and the synthesis generator (groups -> tokens -> audio).

It never asks which family it runs: text tokens, T3 decoding, the tokens S3Gen may see and the
S3Gen settings all come from `families`. Heavy imports (torch, chatterbox) happen inside
functions so `chatterbox --help` stays instant.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chatterbox_cli.models import SPEECH_VOCAB, Family
from chatterbox_cli.models.loading import release_speech_tokenizer
from chatterbox_cli.models.source import ModelSource
from chatterbox_cli.models.t3.request import DecodeStats, Decoding, Row
from chatterbox_cli.runtime.device import (
    prefetch,
    seed_everything,
    sync,
    upstream_quiet,
)
from chatterbox_cli.synth.chunk import Synthesized
from chatterbox_cli.synth.request import RenderOptions
from chatterbox_cli.synth.seeds import group_seed
from chatterbox_cli.text.segment import TextGroup

SAMPLE_RATE = 24000


@dataclass(frozen=True)
class GroupStart:
    """T3 begins group `index` (the engine's T3 half tells its S3Gen half, maybe from a thread)."""

    index: int
    group: TextGroup
    cap: int
    stats: Any
    text_s: float
    """Text tokenization and conditioning time."""
    t0: float


@dataclass(frozen=True)
class Token:
    id: int


@dataclass(frozen=True)
class GroupEnd:
    """The group's last token came (stop or cap)."""


@dataclass
class Engine:
    """A loaded upstream TTS object of one family plus our decode loops."""

    tts: Any
    device: str
    source: ModelSource
    load_s: float
    builtin_voice: Any = None
    sample_rate: int = SAMPLE_RATE
    dtype: str = "float32"
    """Autocast dtype for T3 and the flow; HiFiGAN always runs in float32 (it fails in bf16)."""
    quantize: str = "none"
    fast_decode: bool = False
    """Static KV cache for single-stream decoding (plus CUDA graphs on CUDA); opt-in."""
    overlap: bool = False
    """Run T3 (next group / batch) in a worker thread while S3Gen renders the current one
    (`--overlap`). Off by default: on 2 CPU cores it was a wash or worse (both halves share
    the cores; with int8 streaming it made totals 1.4x slower); meant to be measured on CUDA.
    """
    model_dir: Path | None = None
    """Where the weights were read from (a hub snapshot or --model-dir)."""
    batch_s3gen: bool = False
    """Batch jobs run S3Gen over all groups of a batch at once (`models/s3gen/batch.py`)."""
    _fast: Any = field(default=None, repr=False)
    prefix_cache: bool = True
    """Reuse T3's KV cache over a voice's conditioning across groups (False: upstream's exact
    arithmetic, recomputed per group as `generate()` does)."""
    prefixes: Any = field(default=None, repr=False)
    """This engine's `PrefixCache` (made on first use)."""
    _checkpoint: str | None = field(default=None, repr=False)
    listener: Any = field(default=None, repr=False)
    """A `post.asr.Listener` that hears every group back (`asr`), or None."""

    def amp(self):
        """A fresh autocast context (one per forward call, so it never leaks past a yield)."""
        import torch

        if self.dtype == "float32":
            return contextlib.nullcontext()
        return torch.autocast(self.device, dtype=getattr(torch, self.dtype))

    def checkpoint_id(self) -> str:
        """Provenance: `repo@revision` or a hash of the checkpoint files (cached)."""
        from chatterbox_cli.sinks.provenance import checkpoint_id

        if self._checkpoint is None:
            self._checkpoint = checkpoint_id(self.model_dir, self.family.hub_repo)
        return self._checkpoint

    @property
    def family(self) -> Family:
        return self.source.family

    def fast_step(self):
        from chatterbox_cli.models.t3.decode import FastStep

        if not self.fast_decode or not self.family.fast_decode:
            return None
        if self._fast is None:
            self._fast = FastStep(self.tts.t3, compile=self.device == "cuda")
        return self._fast

    def prefix(self, t3_cond):
        """The voice's T3 prefix cache, built on first use (`models/t3/prefix.py`)."""
        from chatterbox_cli.models.t3.prefix import PrefixCache

        if not self.prefix_cache or not self.family.prefix_cache:
            return None
        if self.prefixes is None:
            self.prefixes = PrefixCache()
        return self.prefixes.get(self.tts.t3, t3_cond, self.amp)

    @property
    def watermarker(self):
        return self.tts.watermarker

    def prepare_reference(self, path: Path):
        """Upstream `prepare_conditionals` on a reference clip (its first `USED_CLIP_S`: upstream
        would decode all of an hour-long file); returns its `Conditionals`."""
        import torch

        from chatterbox_cli.models.voices import USED_CLIP_S
        from chatterbox_cli.runtime.recordings import bounded_clip

        with bounded_clip(path, USED_CLIP_S) as clip, upstream_quiet(), torch.inference_mode():
            conds = self.family.prepare_reference(self.tts, clip)
        self.tts.conds = self.builtin_voice
        release_speech_tokenizer(self.tts.s3gen)
        return conds

    def text_tokens(self, text: str, language: str = "en"):
        """Exactly upstream's text path for this family."""
        return self.family.text_tokens(self.tts, text, language)

    def synthesize(
        self,
        groups: Iterable[TextGroup],
        conds,
        opts: RenderOptions | None = None,
        *,
        streaming: bool = False,
        overlap: bool | None = None,
    ) -> Iterator[Synthesized]:
        """Yield one `Synthesized` per group, as soon as it is ready; when `streaming` with
        `opts.stream_tokens` N, several per group (audio every N speech tokens, see
        `models/s3gen/stream.py`).

        `opts` are a request's checked options, taken whole (None: the family's defaults).
        `conds`: one voice for every group, or a list with one per group (`[voice]` markup).
        With `overlap`, T3 runs ahead in a thread (its own RNG) while S3Gen renders in this
        one; without, the RNG calls follow upstream `generate()` exactly.
        """
        import torch

        from chatterbox_cli.models.s3gen.stream import TokenStreamer

        opts = opts or RenderOptions()
        seed = opts.seed
        cfm_steps = opts.cfm_steps or self.family.cfm_steps
        stream_tokens = opts.stream_tokens if streaming else None
        overlap = self.overlap if overlap is None else overlap
        if seed is not None:
            seed_everything(seed)
        generator = stop = first_out = None
        if overlap:
            import threading

            t3_seed = seed if seed is not None else random.getrandbits(62)
            generator = torch.Generator(device=self.device).manual_seed(t3_seed)
            stop, first_out = threading.Event(), threading.Event()
        events = self._t3_events(list(groups), conds, opts, generator, stop, first_out,
                                 stream_tokens)  # fmt: skip
        if overlap:
            events = prefetch(events, stop=stop)
        streamer = None
        for event in events:
            if isinstance(event, GroupStart):
                i, group, cap, stats, text_s, t0 = (
                    event.index,
                    event.group,
                    event.cap,
                    event.stats,
                    event.text_s,
                    event.t0,
                )
                tokens: list[int] = []
                if stream_tokens:
                    noise_seed = group_seed(seed, i)
                    streamer = TokenStreamer.for_group(
                        self.tts.s3gen,
                        voice_of(conds, i).gen,
                        cap,
                        stream_tokens,
                        cfm_steps,
                        noise_seed,
                        self.amp,
                    )
                    offset = 0
            elif isinstance(event, Token):
                if streamer is None:
                    tokens.append(event.id)
                elif event.id < SPEECH_VOCAB:
                    audio = streamer.push(event.id)
                    if audio is not None and len(audio):
                        if first_out is not None:
                            first_out.set()
                        yield self._piece(group, streamer, stats, text_s, t0, audio, offset)
                        offset += len(audio)
            else:
                if streamer is None:
                    chunk = self.to_audio(
                        group, tokens, voice_of(conds, i), cfm_steps, stats, text_s, t0
                    )
                else:
                    chunk = self._finish_stream(group, streamer, stats, text_s, t0, offset)
                if first_out is not None:
                    first_out.set()
                yield chunk

    def _t3_events(self, groups, conds, opts, generator, stop=None, first_out=None,
                   stream_tokens=None):  # fmt: skip
        """T3 for every group: a `GroupStart`, a `Token` per sampled token, a `GroupEnd`.

        With `first_out` (overlap), T3 waits for the first audio before going past what it
        needs (the first group, or the first piece's tokens): on a shared CPU, running ahead
        sooner only slows the first audio down."""
        import torch

        def hold() -> bool:
            while first_out is not None and not first_out.wait(0.05):
                if stop is not None and stop.is_set():
                    return False
            return True

        hold_at = stream_tokens + 3 if stream_tokens else None
        t3 = self.tts.t3
        params = opts.sampling or self.family.defaults
        for i, group in enumerate(groups):
            if i == 1 and not hold():
                return
            t0 = time.perf_counter()
            stats = DecodeStats()
            cap = opts.cap(group)
            with torch.inference_mode():
                ids = self.text_tokens(group.text, group.language)
                t3_cond = self.family.t3_cond(voice_of(conds, i), params)
                prefix = self.prefix(t3_cond)
            yield GroupStart(i, group, cap, stats, time.perf_counter() - t0, t0)
            row = Row(t3_cond, ids, params, cap, generator)
            run = Decoding(stats, prefix, self.amp, self.fast_step(), stop)
            tokens = self.family.decode(t3, row, run)
            kept = 0
            for token in tokens:
                if i == 0 and kept == hold_at and not hold():
                    return
                kept += int(token[0]) < SPEECH_VOCAB
                yield Token(int(token[0]))
            yield GroupEnd()

    def _piece(self, group, streamer, stats, text_s, t0, audio, offset, last=False):
        return Synthesized(
            group=group,
            audio=audio,
            sample_rate=self.sample_rate,
            speech_tokens=list(streamer.tokens),
            stopped=stats.stopped,
            text_s=text_s,
            t3_prefill_s=stats.prefill_s,
            t3_decode_s=stats.decode_s,
            flow_s=streamer.flow_s,
            hifigan_s=streamer.vocode_s,
            synth_s=time.perf_counter() - t0,
            last=last,
            offset=offset,
        )

    def _finish_stream(self, group, streamer, stats, text_s, t0, offset):
        from chatterbox.models.s3gen.const import S3GEN_SIL

        tail = self.family.tail_tokens
        audio = streamer.finish([S3GEN_SIL] * tail)
        del streamer.tokens[len(streamer.tokens) - tail :]
        keep = self.family.kept_samples(len(streamer.tokens))
        if keep is not None:  # earlier pieces never reach the last token: it waits for lookahead
            audio = audio[: max(0, keep - offset)]
        return self._piece(group, streamer, stats, text_s, t0, audio, offset, last=True)

    def to_audio(self, group, tokens, conds, cfm_steps, stats, text_s, t0) -> Synthesized:
        """Upstream's tail of `generate()`: the tokens S3Gen may see, the family's silence
        tokens, S3Gen."""
        import torch
        from chatterbox.models.s3gen.const import S3GEN_SIL

        kept = self.family.speech_tokens(tokens)
        with torch.inference_mode():
            tail = [S3GEN_SIL] * self.family.tail_tokens
            speech = torch.tensor([*kept, *tail], device=self.device)
            t1 = time.perf_counter()
            mels = self._flow(speech, conds.gen, cfm_steps)
            t2 = time.perf_counter()
            audio = self._vocode(mels).squeeze(0).float().cpu().numpy()
        audio = audio[: self.family.kept_samples(len(kept))]
        end = time.perf_counter()
        return Synthesized(
            group=group,
            audio=audio,
            sample_rate=self.sample_rate,
            speech_tokens=kept,
            stopped=stats.stopped,
            text_s=text_s,
            t3_prefill_s=stats.prefill_s,
            t3_decode_s=stats.decode_s,
            flow_s=t2 - t1,
            hifigan_s=end - t2,
            synth_s=end - t0,
        )

    def _flow(self, speech_tokens, ref_dict: dict, cfm_steps: int):
        """`S3Token2Wav.inference` is flow then HiFiGAN; called apart to time each stage."""
        s3gen = self.tts.s3gen
        with upstream_quiet(), self.amp():
            mels = s3gen.flow_inference(
                speech_tokens, ref_dict=ref_dict, n_cfm_timesteps=cfm_steps, finalize=True
            )
        sync(self.device)
        return mels.to(dtype=s3gen.dtype)

    def _vocode(self, mels):
        s3gen = self.tts.s3gen
        wav, _ = s3gen.hift_inference(mels, None)
        wav[:, : len(s3gen.trim_fade)] *= s3gen.trim_fade  # upstream's fade-in, as in inference()
        return wav


def voice_of(conds, index: int):
    """Group `index`'s voice: `conds` itself, or its entry when there is one per group."""
    return conds[index] if isinstance(conds, list | tuple) else conds
