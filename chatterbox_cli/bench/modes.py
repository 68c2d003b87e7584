"""Bench modes: each a small function `(BenchContext, BenchItem) -> dict` of measured figures,
with upstream `generate()` (timed from outside, output unchanged) as the baseline."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from types import SimpleNamespace
from typing import TYPE_CHECKING

from chatterbox_cli.bench.context import BenchContext, BenchItem
from chatterbox_cli.bench.report import STAGES
from chatterbox_cli.runtime.device import sync as _sync
from chatterbox_cli.runtime.device import upstream_quiet
from chatterbox_cli.runtime.errors import BadInput
from chatterbox_cli.synth.batched import Job, default_batch_size, plan_batches, synthesize_batches
from chatterbox_cli.synth.pipeline import finish, render, stream
from chatterbox_cli.synth.request import auto_max_tokens
from chatterbox_cli.text.languages import LANGUAGES, spoken_length
from chatterbox_cli.text.segment import split_groups

if TYPE_CHECKING:
    from chatterbox_cli.synth.engine import Engine


def spread(total: int, weights: list[int]) -> list[int]:
    """Split `total` tokens over groups in proportion to `weights` (largest remainder, >= 1)."""
    n = len(weights)
    if total < n:
        raise BadInput(f"--tokens {total} is fewer than the text's {n} sentence groups")
    extra = total - n
    whole = sum(weights) or 1
    shares = [extra * w / whole for w in weights]
    out = [1 + math.floor(s) for s in shares]
    by_remainder = sorted(range(n), key=lambda i: shares[i] - math.floor(shares[i]), reverse=True)
    for i in by_remainder[: total - sum(out)]:
        out[i] += 1
    return out


@contextlib.contextmanager
def fixed_compute(t3) -> Iterator[None]:
    """Push stop/start logits (ids >= 6561) far down so decoding runs to the cap in every mode
    alike. Finite, not -inf: CFG's `cond - uncond` would turn -inf into NaN."""
    import torch

    def mask(_module, _inputs, logits):
        return logits.index_fill(-1, banned.to(logits.device), -1e30)

    banned = torch.arange(6561, t3.hp.speech_tokens_dict_size)
    handle = t3.speech_head.register_forward_hook(mask)
    try:
        yield
    finally:
        handle.remove()


def _timed(fn: Callable, stages: dict, key: str, device: str) -> Callable:
    """`fn`, adding the wall time of each call into stages[key]."""

    def timed(*args, **kwargs):
        t0 = time.perf_counter()
        result = fn(*args, **kwargs)
        _sync(device)
        stages[key] = (stages[key] or 0.0) + time.perf_counter() - t0
        return result

    return timed


@contextlib.contextmanager
def instrument_upstream(engine: Engine, stages: dict, cap: int | None, counted: list):
    """Time upstream `generate()`'s stages from outside, without changing what it computes."""
    tts, device, family = engine.tts, engine.device, engine.family
    t3, s3gen = tts.t3, tts.s3gen
    upstream_t3 = getattr(t3, family.upstream_t3)
    marks: dict[str, float] = {}

    def first_forward(_module, _inputs, _output):
        if "prefill" not in marks:
            _sync(device)
            marks["prefill"] = time.perf_counter()

    def timed_t3(*args, **kwargs):
        if cap is not None:
            kwargs.update(family.upstream_cap(cap))
        marks.clear()
        handle = t3.tfmr.register_forward_hook(first_forward)
        t0 = time.perf_counter()
        try:
            tokens = upstream_t3(*args, **kwargs)
        finally:
            handle.remove()
        _sync(device)
        end = time.perf_counter()
        stages["t3_prefill"] = marks["prefill"] - t0
        stages["t3_decode"] = end - marks["prefill"]
        counted.append(len(family.speech_tokens(tokens[0].tolist())))
        return tokens

    tokenizer, watermarker = tts.tokenizer, tts.watermarker
    tokenize = family.upstream_tokenize
    if tokenize:
        setattr(tokenizer, tokenize, _timed(getattr(tokenizer, tokenize), stages, "text", device))
    else:
        tts.tokenizer = _timed(tokenizer, stages, "text", device)
    setattr(t3, family.upstream_t3, timed_t3)
    s3gen.flow_inference = _timed(s3gen.flow_inference, stages, "flow", device)
    s3gen.hift_inference = _timed(s3gen.hift_inference, stages, "hifigan", device)
    tts.watermarker = SimpleNamespace(
        apply_watermark=_timed(watermarker.apply_watermark, stages, "watermark", device)
    )
    try:
        yield
    finally:
        delattr(t3, family.upstream_t3)
        del s3gen.flow_inference, s3gen.hift_inference
        if tokenize:
            delattr(tokenizer, tokenize)
        tts.tokenizer, tts.watermarker = tokenizer, watermarker


def mode_upstream(ctx: BenchContext, item: BenchItem) -> dict:
    """The baseline: upstream `generate()` on the whole text, as a library user calls it."""

    engine = ctx.baseline or ctx.engine
    tts = engine.tts
    stages: dict[str, float | None] = dict.fromkeys(STAGES)
    counted: list[int] = []
    p = ctx.opts.sampling or engine.family.defaults
    # a copy: Standard's generate() swaps its exaggeration into `conds.t3` in place
    saved_conds, tts.conds = tts.conds, replace(ctx.conds)
    try:
        with instrument_upstream(engine, stages, ctx.budget(item), counted), upstream_quiet():
            t0 = time.perf_counter()
            wav = engine.family.generate(tts, item.text, p, item.language)
            _sync(engine.device)
            total = time.perf_counter() - t0
    finally:
        tts.conds = saved_conds
    audio_s = wav.shape[-1] / engine.sample_rate
    return dict(
        total_s=total, ttfa_s=total, audio_s=audio_s, speech_tokens=sum(counted), stages=stages
    )


def _plan(ctx: BenchContext, item: BenchItem, short_first: bool = False):
    """The item's groups and render options, with the token budget spread over the groups."""
    groups = split_groups(item.text, short_first=short_first, lang=LANGUAGES[item.language])
    budget = ctx.budget(item)
    caps = spread(budget, [len(g.text) for g in groups]) if budget else None
    return groups, replace(ctx.opts, max_new_tokens=caps, seed=None)


def _synth_stages(parts) -> dict[str, float]:
    """Stage sums over AudioChunks or GroupMetrics (they share these field names)."""
    return {
        "text": sum(p.text_s for p in parts),
        "t3_prefill": sum(p.t3_prefill_s for p in parts),
        "t3_decode": sum(p.t3_decode_s for p in parts),
        "flow": sum(p.flow_s for p in parts),
        "hifigan": sum(p.hifigan_s for p in parts),
    }


def mode_simple(ctx: BenchContext, item: BenchItem) -> dict:
    """Our pipeline on the whole text (groups, loudness, watermark), no streaming."""
    groups, opts = _plan(ctx, item)
    t0 = time.perf_counter()
    rendered = render(ctx.engine, groups, ctx.conds, opts)
    total = time.perf_counter() - t0
    g = rendered.groups
    stages = {
        **_synth_stages(g),
        "loudness": rendered.loudness.loudness_s,
        "watermark": rendered.loudness.watermark_s,
    }
    return dict(
        total_s=total,
        ttfa_s=total,  # the file exists only at the end
        audio_s=rendered.audio_s,
        speech_tokens=sum(x.speech_tokens for x in g),
        stages=stages,
    )


def mode_stream(ctx: BenchContext, item: BenchItem, stream_tokens: int | None = None) -> dict:
    """`say -o -`: short first group, each group post-processed and emitted when ready."""

    groups, opts = _plan(ctx, item, short_first=True)
    opts = replace(opts, stream_tokens=stream_tokens)
    chunks: list = []
    frames = 0
    ttfa = None
    t0 = time.perf_counter()
    for _chunk, samples, _said in stream(
        ctx.engine, groups, ctx.conds, opts, on_chunk=chunks.append
    ):
        frames += len(samples)
        if ttfa is None:
            ttfa = time.perf_counter() - t0
    total = time.perf_counter() - t0
    stages = {**_synth_stages(chunks), "loudness": None, "watermark": None}
    return dict(
        total_s=total,
        ttfa_s=ttfa,
        audio_s=frames / ctx.engine.sample_rate,
        speech_tokens=sum(len(c.speech_tokens) for c in chunks),
        stages=stages,
    )


def mode_stream_tokens(ctx: BenchContext, item: BenchItem) -> dict:
    """`say -o - --stream-tokens N`: audio every N speech tokens."""
    return mode_stream(ctx, item, ctx.stream_tokens)


def mode_batch(ctx: BenchContext, item: BenchItem) -> dict:
    """Throughput: `ctx.items` copies of the text (seeds differ), decoded in batches."""

    engine = ctx.engine
    groups, opts = _plan(ctx, item)
    caps = opts.max_new_tokens
    size = ctx.batch_size or default_batch_size(engine.family)
    jobs = [
        (
            copy,
            Job(
                g,
                ctx.conds,
                ctx.opts.sampling or engine.family.defaults,
                caps[i] if caps else auto_max_tokens(g.text),
                seed=ctx.seed * 1000 + copy * 100 + i,
            ),
        )
        for copy in range(ctx.items)
        for i, g in enumerate(groups)
    ]
    stages = dict.fromkeys(STAGES, 0.0)
    audio_s = 0.0
    tokens = 0
    per_copy: dict[int, list] = {}
    t0 = time.perf_counter()
    windows = plan_batches(jobs, size, lambda job: spoken_length(job[1].group.text))
    results = synthesize_batches(
        engine, ([j for _, j in window] for window in windows), cfm_steps=ctx.opts.cfm_steps
    )
    for window, chunks in zip(windows, results, strict=True):
        if isinstance(chunks, Exception):
            raise chunks
        for (copy, _), chunk in zip(window, chunks, strict=True):
            per_copy.setdefault(copy, []).append(chunk)
            for key, value in (
                ("text", chunk.text_s),
                ("t3_prefill", chunk.t3_prefill_s),
                ("t3_decode", chunk.t3_decode_s),
                ("flow", chunk.flow_s),
                ("hifigan", chunk.hifigan_s),
            ):
                stages[key] += value
            tokens += len(chunk.speech_tokens)
            if len(per_copy[copy]) == len(groups):
                marked, info, _ = finish(
                    engine, per_copy.pop(copy), ctx.opts.pause_s, ctx.opts.lufs
                )
                stages["loudness"] += info.loudness_s
                stages["watermark"] += info.watermark_s
                audio_s += len(marked) / engine.sample_rate
    total = time.perf_counter() - t0
    return dict(total_s=total, ttfa_s=total, audio_s=audio_s, speech_tokens=tokens, stages=stages)


MODES: dict[str, Callable[[BenchContext, BenchItem], dict]] = {
    "upstream": mode_upstream,
    "simple": mode_simple,
    "stream": mode_stream,
    "stream-tokens": mode_stream_tokens,
    "batch": mode_batch,
}
