"""Batch jobs: validated items (`jobs/inputs.py`) -> batches of groups -> files + manifest/resume.

The manifest (`OUTDIR/manifest.jsonl`) is appended and flushed after each item's file has been
renamed into place, so a crash at any point loses at most the item in flight: on resume an item
is skipped only when its file exists and its latest record says `ok`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chatterbox_cli.jobs.inputs import BatchItem, row_request
from chatterbox_cli.runtime.metrics import rtf
from chatterbox_cli.sinks import provenance
from chatterbox_cli.sinks.files import write_file
from chatterbox_cli.sinks.manifest import Manifest, output_path
from chatterbox_cli.sinks.subtitles import save_subtitles
from chatterbox_cli.synth.batched import Job, plan_batches, synthesize_batches
from chatterbox_cli.synth.judge import Judge
from chatterbox_cli.synth.pipeline import finish as finish_audio
from chatterbox_cli.synth.request import Plan, SpeechRequest
from chatterbox_cli.synth.retry import Flagged, retry_flagged
from chatterbox_cli.synth.seeds import group_seed
from chatterbox_cli.synth.voices import VoiceStore
from chatterbox_cli.text.languages import spoken_length


def item_groups(item: BatchItem, base: SpeechRequest, family) -> list:
    """The item's groups, as its request plans them (a book's are plain text: its markup and
    lexicon were applied before)."""
    return list(row_request(item, base).plan(family).groups)


@dataclass
class BatchConfig:
    outdir: Path
    fmt: Any
    request: SpeechRequest
    """The run's options: every row's request starts from it (`jobs.inputs.row_request`)."""
    voice_spec: Any = None
    """The run's voice as the CLI already resolved (and checked) it, so it is not read twice."""
    batch_size: int = 8
    fail_fast: bool = False
    asr: str | None = None
    """A recognizer (name or folder, checked by the CLI) that hears every group back."""
    subtitles: str | None = None
    """"srt" or "vtt": a subtitle file beside each output (`text.cues`)."""
    subtitle_words: bool = False
    """One cue per heard word (with `asr`)."""

    @property
    def retries(self) -> int:
        """Times a group the guard flags is synthesized again with a derived seed."""
        return self.request.retries


@dataclass(eq=False)
class _Pending:
    item: BatchItem
    path: Path
    conds: Any
    voice_label: str
    voice_id: str
    plan: Plan
    chunks: list = field(default_factory=list)
    remaining: int = 0
    failed: bool = False
    retried: int = 0
    """Groups synthesized again because the guard flagged them (`post/guard.py`)."""
    flags: list = field(default_factory=list)
    """What was still flagged in the kept attempts ("group 2: runaway")."""


def record(item: BatchItem, path: Path, status: str, **fields) -> dict:
    return {
        "id": item.id,
        "name": item.name,
        "output": str(path),
        "source": item.source,
        "line": item.line,
        "text": item.text,
        "language": item.language,
        "status": status,
        **fields,
        **({"extra": item.extra} if item.extra else {}),
    }


def run_jobs(engine, items: list[BatchItem], cfg: BatchConfig, manifest: Manifest, on_record):
    """Synthesize `items` in batches of sentence groups; one manifest record per item."""

    store = VoiceStore.of(engine)
    base = cfg.request.options(engine.family)
    if cfg.asr and getattr(engine, "listener", None) is None:
        from chatterbox_cli.post.asr import Listener, resolve

        engine.listener = Listener(resolve(cfg.asr), engine.device)  # once per engine (worker)

    def voice_for(value: str | None):
        known = value == cfg.request.voice and cfg.voice_spec is not None
        voice = store.get(value, cfg.voice_spec if known else None)
        return voice.conds, voice.spec.label, voice.id

    def fail(item: BatchItem, path: Path, exc: Exception) -> None:
        rec = record(item, path, "failed", error=" ".join(str(exc).split()) or type(exc).__name__)
        manifest.append(rec)
        on_record(rec)
        if cfg.fail_fast:
            raise StopBatch(rec["error"])

    def finish(p: _Pending) -> None:
        t0 = time.perf_counter()
        opts = p.plan.options
        heard = {c.group.index: judge.heard(c).words for c in p.chunks} if judge.listener else {}
        done = finish_audio(engine, p.chunks, opts.pause_s, opts.lufs, opts.speed, heard)
        marked = done.audio
        made = provenance.record(
            engine,
            voice=p.voice_id,
            seed=opts.seed,
            sampling=opts.sampling,
            text=p.item.text,
            cfm_steps=opts.cfm_steps,
            said=p.plan.groups,
        )
        tags = provenance.tags(made)
        write_file(p.path, marked, engine.sample_rate, cfg.fmt, overwrite=True, tags=tags)
        timed = {}
        if cfg.subtitles:
            sub = p.path.with_suffix(f".{cfg.subtitles}")
            save_subtitles(sub, done.segments, p.plan.language, cfg.subtitle_words)
            timed = {"subtitles": str(sub)}
        audio_s = len(marked) / engine.sample_rate
        synth_s = sum(c.synth_s for c in p.chunks) + time.perf_counter() - t0
        rec = record(
            p.item,
            p.path,
            "ok",
            voice=p.voice_label,
            seed=p.plan.options.seed,
            audio_s=round(audio_s, 3),
            synth_s=round(synth_s, 3),
            rtf=round(rtf(synth_s, audio_s) or 0, 4),
            speech_tokens=sum(len(c.speech_tokens) for c in p.chunks),
            retries=p.retried,
            flags=p.flags,
            provenance=made,
            **heard_of(p.chunks),
            segments=[seg.to_dict() for seg in done.segments],
            **timed,
        )
        manifest.append(rec)
        on_record(rec)

    planned: list[tuple[_Pending, Job]] = []
    for item in items:
        path = output_path(cfg.outdir, item.name, cfg.fmt.suffix)
        try:
            conds, label, voice_id = voice_for(item.voice or cfg.request.voice)
        except Exception as exc:  # a bad voice fails this row, not the job
            fail(item, path, exc)
            continue
        try:
            plan = row_request(item, cfg.request).plan(engine.family)
            marked = {name: voice_for(name)[0] for name in plan.voices}
        except Exception as exc:  # a bad column or [voice:NAME] fails this row, not the job
            fail(item, path, exc)
            continue
        pending = _Pending(item, path, conds, label, voice_id, plan, [], len(plan.groups))
        for group in plan.groups:
            opts = plan.options
            job = Job(group, marked.get(group.voice, conds), opts.sampling, opts.cap(group))
            job.seed = group_seed(opts.seed, group.index)
            planned.append((pending, job))

    user_cap = base.user_cap

    def run(pairs):
        batches = plan_batches(
            pairs, cfg.batch_size, lambda pair: spoken_length(pair[1].group.text)
        )
        jobs = ([job for _, job in batch] for batch in batches)
        made = synthesize_batches(engine, jobs, base.cfm_steps, judge.listen)
        return zip(batches, made, strict=True)

    def settle(pending: _Pending, chunk, found: list[str], retried: int) -> None:
        pending.chunks.append(chunk)
        pending.retried += retried
        pending.flags.extend(f"group {chunk.group.index}: {flag}" for flag in found)
        pending.remaining -= 1
        if pending.remaining == 0 and not pending.failed:
            finish(pending)

    def redo(jobs: list[Job]) -> list:
        """The jobs again, in batches as planned; each one's chunk or its batch's exception."""
        out: list = [None] * len(jobs)
        for batch, chunks in run(list(enumerate(jobs))):
            results = [chunks] * len(batch) if isinstance(chunks, Exception) else chunks
            for (i, _job), result in zip(batch, results, strict=True):
                out[i] = result
        return out

    def heard_of(chunks) -> dict:
        """Each group's transcript, error rate and word timings, when listened to."""
        if judge.listener is None:
            return {}
        heard = {c.group.index: judge.heard(c) for c in chunks}
        return {"heard": [{"index": i, **heard[i].to_dict()} for i in sorted(heard)]}

    flagged = []
    judge = Judge(user_cap, getattr(engine, "listener", None), base.asr_max_wer)

    def judged(done) -> None:
        """A batch's verdicts, taken once the next batch is decoding (it was heard meanwhile)."""
        for (pending, job), chunk in done:
            found = judge.flags(chunk)
            if found and cfg.retries and not pending.failed:
                flagged.append(Flagged(job, pending.plan.options.seed, chunk, found, owner=pending))
            else:
                settle(pending, chunk, found, 0)

    try:
        previous: list = []
        for batch, chunks in run(planned):
            if isinstance(chunks, Exception):
                for pending in dict.fromkeys(p for p, _ in batch):
                    if not pending.failed:
                        pending.failed = True
                        fail(pending.item, pending.path, chunks)
                continue
            judged(previous)
            previous = list(zip(batch, chunks, strict=True))
        judged(previous)
        for f in retry_flagged(flagged, redo, cfg.retries, judge):
            settle(f.owner, f.best, f.found, f.tries)
    finally:
        judge.close()


class StopBatch(Exception):
    """--fail-fast: the first failure ends the job."""
