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

from chatterbox_cli.jobs.inputs import BatchItem, knob_columns
from chatterbox_cli.models import voices
from chatterbox_cli.post import guard
from chatterbox_cli.runtime.errors import BadInput
from chatterbox_cli.runtime.metrics import rtf
from chatterbox_cli.sinks import provenance
from chatterbox_cli.sinks.files import write_file
from chatterbox_cli.sinks.manifest import Manifest, output_path
from chatterbox_cli.synth.batched import Job, plan_batches, synthesize_batches
from chatterbox_cli.synth.chunk import auto_max_tokens
from chatterbox_cli.synth.pipeline import conditionals
from chatterbox_cli.synth.pipeline import finish as finish_audio
from chatterbox_cli.synth.retry import Flagged, retry_flagged
from chatterbox_cli.synth.seeds import group_seed
from chatterbox_cli.text.languages import LANGUAGES, spoken_length
from chatterbox_cli.text.markup import Lexicon, split_marked
from chatterbox_cli.text.segment import split_groups


def item_groups(item: BatchItem, lexicon: Lexicon | None = None) -> list:
    """The item's groups: its markup parsed and the lexicon applied (a book's are already)."""
    lang = LANGUAGES[item.language or "en"]
    if item.plain:
        return split_groups(item.text, lang=lang)
    return split_marked(item.text, lexicon, lang=lang)


@dataclass
class BatchConfig:
    outdir: Path
    fmt: Any
    opts: Any
    voice: str | None = None
    voice_spec: Any = None
    """`voice` as the CLI already resolved (and checked) it, so it is not read twice."""
    seed: int | None = None
    batch_size: int = 8
    fail_fast: bool = False
    retries: int = 2
    """Times a group the guard flags is synthesized again with a derived seed."""
    lexicon: Lexicon | None = None


@dataclass(eq=False)
class _Pending:
    item: BatchItem
    path: Path
    conds: Any
    voice_label: str
    voice_id: str
    sampling: Any
    seed: int | None
    lufs: float
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

    voice_cache: dict[str | None, tuple[Any, str, str]] = {}

    def voice_for(value: str | None):
        if value not in voice_cache:
            known = value == cfg.voice and cfg.voice_spec is not None
            spec = cfg.voice_spec if known else voices.resolve(value, engine.source.kind)
            voice_id = provenance.voice_id(spec, engine.model_dir)
            voice_cache[value] = (conditionals(engine, spec), spec.label, voice_id)
        return voice_cache[value]

    def fail(item: BatchItem, path: Path, exc: Exception) -> None:
        rec = record(item, path, "failed", error=" ".join(str(exc).split()) or type(exc).__name__)
        manifest.append(rec)
        on_record(rec)
        if cfg.fail_fast:
            raise StopBatch(rec["error"])

    def finish(p: _Pending) -> None:
        t0 = time.perf_counter()
        marked, _ = finish_audio(engine, p.chunks, cfg.opts.pause_s, p.lufs)
        made = provenance.record(
            engine,
            voice=p.voice_id,
            seed=p.seed,
            sampling=p.sampling,
            text=p.item.text,
            cfm_steps=cfg.opts.cfm_steps,
        )
        tags = provenance.tags(made)
        write_file(p.path, marked, engine.sample_rate, cfg.fmt, overwrite=True, tags=tags)
        audio_s = len(marked) / engine.sample_rate
        synth_s = sum(c.synth_s for c in p.chunks) + time.perf_counter() - t0
        rec = record(
            p.item,
            p.path,
            "ok",
            voice=p.voice_label,
            seed=p.seed,
            audio_s=round(audio_s, 3),
            synth_s=round(synth_s, 3),
            rtf=round(rtf(synth_s, audio_s) or 0, 4),
            speech_tokens=sum(len(c.speech_tokens) for c in p.chunks),
            retries=p.retried,
            flags=p.flags,
            provenance=made,
        )
        manifest.append(rec)
        on_record(rec)

    planned: list[tuple[_Pending, Job]] = []
    for item in items:
        path = output_path(cfg.outdir, item.name, cfg.fmt.suffix)
        try:
            conds, label, voice_id = voice_for(item.voice or cfg.voice)
        except Exception as exc:  # a bad voice fails this row, not the job
            fail(item, path, exc)
            continue
        try:
            sampling = engine.family.sampling(cfg.opts.sampling, str, **knob_columns(item))
        except BadInput as exc:
            fail(item, path, exc)
            continue
        groups = item_groups(item, cfg.lexicon)
        try:
            marked = {g.voice: voice_for(g.voice)[0] for g in groups if g.voice}
        except Exception as exc:  # a bad [voice:NAME] fails this row, as a bad voice column
            fail(item, path, exc)
            continue
        seed = item.seed if item.seed is not None else cfg.seed
        pending = _Pending(
            item,
            path,
            conds,
            label,
            voice_id,
            sampling,
            seed,
            item.overrides.get("lufs", cfg.opts.lufs),
            [],
            len(groups),
        )
        for group in groups:
            cap = cfg.opts.max_new_tokens or auto_max_tokens(group.text)
            job = Job(group, marked.get(group.voice, conds), sampling, cap)
            job.seed = group_seed(seed, group.index)
            planned.append((pending, job))

    user_cap = cfg.opts.max_new_tokens is not None

    def run(pairs):
        batches = plan_batches(
            pairs, cfg.batch_size, lambda pair: spoken_length(pair[1].group.text)
        )
        jobs = ([job for _, job in batch] for batch in batches)
        return zip(batches, synthesize_batches(engine, jobs, cfg.opts.cfm_steps), strict=True)

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

    flagged = []
    for batch, chunks in run(planned):
        if isinstance(chunks, Exception):
            for pending in dict.fromkeys(p for p, _ in batch):
                if not pending.failed:
                    pending.failed = True
                    fail(pending.item, pending.path, chunks)
            continue
        for (pending, job), chunk in zip(batch, chunks, strict=True):
            found = guard.flags(chunk, user_cap)
            if found and cfg.retries and not pending.failed:
                flagged.append(Flagged(job, pending.seed, chunk, found, owner=pending))
            else:
                settle(pending, chunk, found, 0)
    for f in retry_flagged(flagged, redo, cfg.retries, user_cap):
        settle(f.owner, f.best, f.found, f.tries)


class StopBatch(Exception):
    """--fail-fast: the first failure ends the job."""
