"""The whole job for one text: groups -> engine chunks -> join -> loudness -> watermark."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

import numpy as np

from chatterbox_cli.models.voices import VoiceSpec
from chatterbox_cli.post.audio import (
    MIN_MARK_S,
    PEAK_DBFS,
    LoudnessInfo,
    joined,
    master,
    normalize_loudness,
    shape_edges,
    silence,
    watermark,
)
from chatterbox_cli.post.tempo import Stretcher, stretch
from chatterbox_cli.runtime.errors import VoiceError
from chatterbox_cli.runtime.metrics import GroupMetrics, rtf
from chatterbox_cli.synth.batched import Job
from chatterbox_cli.synth.chunk import Synthesized
from chatterbox_cli.synth.engine import Engine, voice_of
from chatterbox_cli.synth.judge import Judge
from chatterbox_cli.synth.request import RenderOptions
from chatterbox_cli.synth.retry import Flagged, retry_flagged
from chatterbox_cli.text.cues import Segment, TimedWord
from chatterbox_cli.text.segment import TextGroup


@dataclass
class Rendered:
    audio: np.ndarray
    sample_rate: int
    groups: list[GroupMetrics]
    ttfa_s: float | None
    synth_s: float
    post_s: float
    loudness: LoudnessInfo
    segments: list[Segment] = field(default_factory=list)

    @property
    def audio_s(self) -> float:
        return len(self.audio) / self.sample_rate


def conditionals(engine: Engine, spec: VoiceSpec):
    """The upstream `Conditionals` for a resolved voice, on the engine's device, with its T3
    prefix cache built (per-voice work, so it counts as voice preparation, not synthesis)."""
    if spec.kind == "builtin":
        if engine.builtin_voice is None:
            raise VoiceError(
                f"{engine.source.describe()} has no built-in voice (conds.pt); "
                "pass --voice REF.wav or a cached voice name"
            )
        conds = engine.builtin_voice
    elif spec.kind == "cached":
        conds = spec.conds.to(engine.device)
    else:
        conds = engine.prepare_reference(spec.path)
    engine.prefix(conds.t3)
    return conds


def group_metrics(chunk: Synthesized, speed: float = 1.0) -> GroupMetrics:
    """A group's metrics; its audio as long as it is at `speed` (stretched, `post/tempo.py`)."""
    audio_s = chunk.duration_s / speed
    return GroupMetrics(
        index=chunk.group.index,
        text=chunk.group.text,
        chars=len(chunk.group.text),
        speech_tokens=len(chunk.speech_tokens),
        stopped=chunk.stopped,
        audio_s=audio_s,
        synth_s=chunk.synth_s,
        text_s=chunk.text_s,
        t3_prefill_s=chunk.t3_prefill_s,
        t3_decode_s=chunk.t3_decode_s,
        flow_s=chunk.flow_s,
        hifigan_s=chunk.hifigan_s,
        rtf=rtf(chunk.synth_s, audio_s),
    )


def render(
    engine: Engine,
    groups: list[TextGroup],
    conds,
    opts: RenderOptions,
    on_chunk: Callable[[Synthesized], None] | None = None,
) -> Rendered:
    """Synthesize every group, then post-process the whole (loudness needs the whole)."""
    t0 = time.perf_counter()
    ttfa = None
    chunks: list[Synthesized] = []
    judge = judge_for(engine, opts)
    try:
        for chunk in engine.synthesize(groups, conds, opts):
            if ttfa is None:
                ttfa = time.perf_counter() - t0
            chunks.append(chunk)
            judge.listen(chunk)  # heard while the next group is synthesized
            if on_chunk:
                on_chunk(chunk)
        metrics = guarded(engine, chunks, conds, opts, judge)
    finally:
        judge.close()
    t1 = time.perf_counter()
    heard = {m.index: m.words for m in metrics}
    marked, loudness, segments = finish(engine, chunks, opts.pause_s, opts.lufs, opts.speed, heard)
    t2 = time.perf_counter()
    return Rendered(
        audio=marked,
        sample_rate=engine.sample_rate,
        groups=metrics,
        ttfa_s=ttfa,
        synth_s=t1 - t0,
        post_s=t2 - t1,
        loudness=loudness,
        segments=segments,
    )


class Finished(NamedTuple):
    audio: np.ndarray
    loudness: LoudnessInfo
    segments: list[Segment]
    """Where each group landed in `audio` (seconds), with its heard words where given."""


def finish(
    engine: Engine,
    chunks: list[Synthesized],
    pause_s: float,
    lufs: float,
    speed: float = 1.0,
    words: dict | None = None,
) -> Finished:
    """The one path from a text's chunks to its finished audio (files, batch items, buffered
    server replies, bench): in group order, each group stretched to `speed`, joined with
    pauses (their length as asked), loudness-normalized with the peak guard, watermarked last.
    `words`: group index -> the recognizer's words in that group (`post.asr.Word`)."""
    ordered = sorted(chunks, key=lambda c: c.group.index)
    groups = [c.group for c in ordered]
    sr = engine.sample_rate
    audio, spans = joined(
        [stretch(c.audio, sr, speed) for c in ordered],
        sr,
        gaps=[gap_before(g, pause_s) for g in groups[1:]],
        lead_s=groups[0].lead_s or 0.0 if groups else 0.0,
        tail_s=groups[-1].tail_s if groups else 0.0,
    )
    marked, loudness = master(audio, sr, engine.watermarker, lufs)
    heard = words or {}
    placed = [
        placed_segment(g, a / sr, b / sr, heard.get(g.index, ()), speed)
        for g, (a, b) in zip(groups, spans, strict=True)
    ]
    return Finished(marked, loudness, placed)


def placed_segment(group: TextGroup, start: float, end: float, words, speed: float) -> Segment:
    """A group at [start, end) of the audio; its heard words (timed from the group's own start
    at speed 1) moved onto the same clock."""
    timed = tuple(
        TimedWord(w.text, min(end, start + w.start / speed), min(end, start + w.end / speed))
        for w in words
    )
    return Segment(group.index, group.text, start, end, timed)


def gap_before(group: TextGroup, pause_s: float) -> float:
    """The silence before a group: its `[pause]`, or `--pause` (nothing before the first)."""
    if group.lead_s is not None:
        return group.lead_s
    return pause_s if group.index > 0 else 0.0


def silence_s(groups: list[TextGroup], pause_s: float) -> float:
    """All the silence a text's groups are joined with."""
    return sum(gap_before(g, pause_s) for g in groups) + (groups[-1].tail_s if groups else 0.0)


def group_voices(groups: list[TextGroup], conds, voice: Callable[[str], Any]):
    """`conds` for every group, or (with `[voice:NAME]` markup) a list with each group's:
    `voice(NAME)` prepares a named one (callers cache it)."""
    if not any(g.voice for g in groups):
        return conds
    return [voice(g.voice) if g.voice else conds for g in groups]


def judge_for(engine: Engine, opts: RenderOptions) -> Judge:
    """The verdict on each group: the guard, and the engine's recognizer if it has one."""
    return Judge(opts.user_cap, getattr(engine, "listener", None), opts.asr_max_wer)


def guarded(
    engine: Engine,
    chunks: list[Synthesized],
    conds,
    opts: RenderOptions,
    judge: Judge | None = None,
):
    """Flag each group (`synth.judge`: the guard, and listening) and retry the flagged ones
    (`synth.retry`), keeping the best attempt in place in `chunks`. Their metrics."""

    judge = judge or Judge(opts.user_cap)
    params = opts.sampling or engine.family.defaults
    flagged = []
    for i, chunk in enumerate(chunks):
        found = judge.flags(chunk)
        if found:
            job = Job(chunk.group, voice_of(conds, i), params, opts.cap(chunk.group))
            flagged.append(Flagged(job, opts.seed, chunk, found))

    def redo(jobs):
        for job in jobs:
            again = replace(opts, max_new_tokens=job.max_new_tokens, seed=job.seed)
            yield list(engine.synthesize([job.group], job.conds, again))[-1]

    settled = {f.job.group.index: f for f in retry_flagged(flagged, redo, opts.retries, judge)}
    metrics = []
    for i, chunk in enumerate(chunks):
        f = settled.get(chunk.group.index)
        chunks[i] = f.best if f else chunk
        m = group_metrics(chunks[i], opts.speed)
        m.flags, m.retries = (f.found, f.tries) if f else ([], 0)
        heard = judge.heard(chunks[i])
        if heard is not None:
            m.transcript, m.wer, m.words = heard.transcript, round(heard.wer, 4), heard.words
        metrics.append(m)
    return metrics


def stream(
    engine: Engine,
    groups: list[TextGroup],
    conds,
    opts: RenderOptions,
    on_chunk: Callable[[Synthesized], None] | None = None,
) -> Iterator[tuple[Synthesized, np.ndarray]]:
    """The one streaming path (`Synthesizer.stream`, `say -o -`, bench's stream modes): each
    engine chunk (one per group, or per `stream_tokens` tokens) with its post-processed
    samples, the silence before it at its start, as it is made, and on a group's last piece
    the group's `Segment` (where it is said in the stream; else None). `on_chunk` sees each
    group's last piece."""
    leveler = StreamLeveler(engine.sample_rate, groups, opts, engine.watermarker)
    for chunk in engine.synthesize(groups, conds, opts, streaming=True):
        if on_chunk and chunk.last:
            on_chunk(chunk)
        pieces = leveler.pieces(chunk)
        samples = np.concatenate(pieces) if len(pieces) > 1 else pieces[0]
        yield chunk, samples, leveler.placed


class StreamLeveler:
    """Loudness and watermark for a stream, piece by piece (`stream`, the server).

    The whole's loudness is unknown until the end, so the gain is fixed from the first piece
    (bounded to +-24 dB) and kept; a piece whose peaks would pass -1 dBFS is scaled down alone.
    Every piece is watermarked, so the concatenated stream carries the watermark. At a speed
    other than 1 a group's pieces go through one `Stretcher` first, stretched as one signal.
    """

    def __init__(self, sample_rate: int, groups: list[TextGroup], opts: RenderOptions, watermarker):
        self.sr, self.groups, self.opts, self.watermarker = sample_rate, groups, opts, watermarker
        self.gain: float | None = None
        self.stretcher = self.stretcher_for(opts.speed)
        self.at = 0
        """Samples handed out so far."""
        self.start = 0
        self.placed: Segment | None = None
        """After a group's last piece: where the group is said in the stream (else None)."""

    def pieces(self, chunk: Synthesized) -> list[np.ndarray]:
        """This chunk's audio, leveled and watermarked, after the silence that precedes it
        (and, for the text's last group, the `[pause]` that ends it)."""
        sr, i, groups, pause_s = self.sr, chunk.group.index, self.groups, self.opts.pause_s
        first = chunk.offset == 0
        lead = gap_before(chunk.group, pause_s) if first else 0.0
        last_group = i == len(groups) - 1
        after = chunk.group.tail_s if last_group else gap_before(groups[i + 1], pause_s)
        after = after if chunk.last else 0.0
        if first:
            self.stretcher = self.stretcher_for(self.opts.speed)
        part = shape_edges(chunk.audio, sr, lead > 0, after > 0)
        part = self.stretcher.push(part, last=chunk.last)
        out = [silence(lead, sr)] if lead > 0 else []
        if first:
            self.start = self.at + (len(out[0]) if out else 0)
        out.append(self.level(part) if len(part) else part)
        self.at += sum(len(o) for o in out)
        end = self.at
        if last_group and after > 0:
            out.append(silence(after, sr))
            self.at += len(out[-1])
        said = (self.start / sr, end / sr)
        self.placed = Segment(i, chunk.group.text, *said) if chunk.last else None
        return out

    def stretcher_for(self, speed: float) -> Stretcher:
        """A group's stretcher: its pieces are stretched as one signal, none too short to
        watermark."""
        return Stretcher(self.sr, speed, int(MIN_MARK_S * self.sr))

    def level(self, part: np.ndarray) -> np.ndarray:
        """One piece at the stream's gain (fixed by the first), peak-guarded, watermarked."""
        if self.gain is None:
            _, info = normalize_loudness(part, self.sr, self.opts.lufs)
            measured = info.measured_lufs is not None
            self.gain = float(np.clip(info.gain_db, -24.0, 24.0)) if measured else 0.0
        leveled = part * np.float32(10 ** (self.gain / 20))
        peak = float(np.max(np.abs(leveled))) if len(leveled) else 0.0
        limit = 10 ** (PEAK_DBFS / 20)
        if peak > limit:
            leveled *= np.float32(limit / peak)
        return watermark(leveled, self.sr, self.watermarker)
