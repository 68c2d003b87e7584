"""Batched synthesis: T3 for many groups in one decode, then S3Gen for them all at once (or
per group, where that is as fast: CPU).

Rows may differ in voice, sampling, cap and seed; a seeded row gets its own T3 generator and a
seeded S3Gen, so its audio does not depend on what else is in its batch (tests/test_batch.py).
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from chatterbox_cli.models.s3gen import batch as s3gen_batch
from chatterbox_cli.models.sampling import SamplingParams
from chatterbox_cli.models.t3.request import DecodeStats, Decoding, Row
from chatterbox_cli.runtime.device import prefetch, seeded, sync
from chatterbox_cli.synth.chunk import Synthesized
from chatterbox_cli.synth.engine import Engine
from chatterbox_cli.text.segment import TextGroup

BATCH_ROWS = 16
"""Model rows per T3 batch by default: measured on CPU (Turbo, 32 items x 50 tokens, one run
each) 24, 42, 66 and 64 tokens/s at 4, 8, 16 and 32 rows; 16 is the knee (and half the memory
of 32). A guided (CFG) family spends two rows per group."""
SORT_WINDOW = 4
"""Groups are sorted by length within windows of this many batches: less padding in T3, and
items still finish in about input order (a Ctrl-C loses little; the manifest grows steadily)."""


def default_batch_size(family) -> int:
    """Groups per batch: `BATCH_ROWS` model rows."""
    return max(1, BATCH_ROWS // family.rows_per_group)


def plan_batches(jobs: list, size: int, length) -> list[list]:
    """`jobs` in batches of `size`, sorted by `length(job)` within windows of `SORT_WINDOW`
    batches, so that rows of a batch need little padding."""
    window = size * SORT_WINDOW
    batches = []
    for start in range(0, len(jobs), window):
        ordered = sorted(jobs[start : start + window], key=length)
        batches.extend(ordered[i : i + size] for i in range(0, len(ordered), size))
    return batches


@dataclass
class Job:
    """One group to synthesize in a batch, with its own voice, sampling and seed."""

    group: TextGroup
    conds: Any
    params: SamplingParams
    max_new_tokens: int
    seed: int | None = None
    cancelled: Any = None
    """A callable polled each decode step; True ends this row's decode (server cancel)."""


def synthesize_batch(
    engine: Engine, jobs: list[Job], cfm_steps: int | None = None
) -> list[Synthesized]:
    """T3 for all jobs in one batched decode, then S3Gen per job.

    A job with a seed gets its own T3 generator and a seeded S3Gen, so its audio does not
    depend on what else is in the batch. T3 time is shared equally among the jobs.
    """
    return render_jobs(engine, jobs, decode_jobs(engine, jobs), cfm_steps)


def synthesize_batches(
    engine: Engine, batches: Iterable[list[Job]], cfm_steps: int | None = None, on_chunk=None
):
    """`synthesize_batch` over consecutive batches, with T3 for the next batch running (in a
    thread, with `overlap`) while S3Gen renders this one. Yields each batch's chunks, or the
    exception that batch raised (the others go on); `on_chunk` sees each chunk as soon as it
    is rendered (listening back starts on it while the next row renders)."""

    import threading

    stop = threading.Event()

    def decoded():
        for jobs in batches:
            try:
                yield jobs, decode_jobs(engine, jobs, stop)
            except Exception as exc:
                yield jobs, exc

    pairs = prefetch(decoded(), depth=1, stop=stop) if engine.overlap else decoded()
    for jobs, result in pairs:
        if isinstance(result, Exception):
            yield result
            continue
        try:
            yield render_jobs(engine, jobs, result, cfm_steps, on_chunk)
        except Exception as exc:
            yield exc


def decode_jobs(engine: Engine, jobs: list[Job], stop=None):
    """The T3 half of `synthesize_batch`: (tokens per job, stats share, text seconds).

    With `overlap`, unseeded rows get a generator too, so T3 in its thread never draws
    from the global RNG that seeded S3Gen calls use."""
    import torch

    t0 = time.perf_counter()
    rows = []
    for job in jobs:
        generator = None
        if job.seed is not None or engine.overlap:
            seed = job.seed if job.seed is not None else random.getrandbits(62)
            generator = torch.Generator(device=engine.device).manual_seed(seed)
        ids = engine.text_tokens(job.group.text, job.group.language)
        t3_cond = engine.family.t3_cond(job.conds, job.params)
        rows.append(Row(t3_cond, ids, job.params, job.max_new_tokens, generator, job.cancelled))
    text_s = (time.perf_counter() - t0) / len(jobs)
    stats = DecodeStats()
    shared = all(job.conds is jobs[0].conds for job in jobs)
    prefix = engine.prefix(jobs[0].conds.t3) if shared else None
    run = Decoding(stats, prefix, engine.amp, cancel=stop)
    tokens = engine.family.decode_batch(engine.tts.t3, rows, run)
    share = DecodeStats(stats.prefill_s / len(jobs), stats.decode_s / len(jobs))
    return tokens, share, text_s


def render_jobs(
    engine: Engine, jobs: list[Job], decoded, cfm_steps: int | None = None, on_chunk=None
):
    """The S3Gen half of `synthesize_batch`: all rows in one flow and one HiFiGAN call where the
    engine batches S3Gen (CUDA by default), else row by row (as fast on CPU, measured), each
    row's chunk shown to `on_chunk` as soon as it exists."""
    tokens, share, text_s = decoded
    cfm_steps = cfm_steps or engine.family.cfm_steps
    if engine.batch_s3gen and len(jobs) > 1:
        chunks = render_rows(engine, jobs, tokens, share, text_s, cfm_steps)
        for chunk in chunks if on_chunk else ():
            on_chunk(chunk)
        return chunks
    chunks = []
    for job, row_tokens in zip(jobs, tokens, strict=True):
        share.stopped = len(row_tokens) < job.max_new_tokens
        start = time.perf_counter() - text_s - share.prefill_s - share.decode_s
        with seeded(job.seed, engine.device):
            chunk = engine.to_audio(
                job.group, row_tokens, job.conds, cfm_steps, share, text_s, start
            )
        chunks.append(chunk)
        if on_chunk:
            on_chunk(chunk)
    return chunks


def render_rows(engine: Engine, jobs: list[Job], tokens, share, text_s: float, cfm_steps: int):
    """Batched S3Gen (`models/s3gen`); a seeded row gets what `to_audio` gives it alone after
    `seed_everything(seed)`. Flow and HiFiGAN time are shared equally among the rows."""
    import torch
    from chatterbox.models.s3gen.const import S3GEN_SIL

    s3gen = engine.tts.s3gen
    t0 = time.perf_counter()
    kept = [engine.family.speech_tokens(t) for t in tokens]
    tail = [S3GEN_SIL] * engine.family.tail_tokens
    rows = [
        s3gen_batch.Row(torch.tensor([*k, *tail], device=engine.device), job.conds.gen, job.seed)
        for job, k in zip(jobs, kept, strict=True)
    ]
    mels, gens = s3gen_batch.flow_rows(s3gen, rows, cfm_steps, engine.amp)
    sync(engine.device)
    t1 = time.perf_counter()
    wavs = s3gen_batch.vocode_rows(s3gen, [m.to(dtype=s3gen.dtype) for m in mels], gens)
    keep = engine.family.kept_samples
    audio = [
        w.squeeze(0).float().cpu().numpy()[: keep(len(k))] for w, k in zip(wavs, kept, strict=True)
    ]
    t2 = time.perf_counter()
    n = len(jobs)
    flow_s, hifigan_s = (t1 - t0) / n, (t2 - t1) / n
    t3_s = text_s + share.prefill_s + share.decode_s
    return [
        Synthesized(
            group=job.group,
            audio=a,
            sample_rate=engine.sample_rate,
            speech_tokens=k,
            stopped=len(row_tokens) < job.max_new_tokens,
            text_s=text_s,
            t3_prefill_s=share.prefill_s,
            t3_decode_s=share.decode_s,
            flow_s=flow_s,
            hifigan_s=hifigan_s,
            synth_s=t3_s + flow_s + hifigan_s,
        )
        for job, row_tokens, k, a in zip(jobs, tokens, kept, audio, strict=True)
    ]
