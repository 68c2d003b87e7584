"""Benchmark harness: every mode measured the same way, upstream `generate()` as the baseline.

A mode is a small function `(BenchContext, BenchItem) -> Sample`. Figures are measured, never
estimated; a stage a mode cannot see is None ("not measured"). Fixed-compute runs (`tokens`)
suppress the stop token so every mode makes the same number of speech tokens for an item.
"""

from __future__ import annotations

import contextlib
import math
import platform
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from chatterbox_cli.engine import Engine
from chatterbox_cli.errors import BadInput
from chatterbox_cli.metrics import rtf
from chatterbox_cli.pipeline import DEFAULT_STREAM_TOKENS, RenderOptions, render
from chatterbox_cli.runtime import sync as _sync
from chatterbox_cli.text import split_groups

SCHEMA = 1
TOKENS_PER_CHAR = 1.7
"""~15 characters/s of speech at 25 tokens/s: what `--tokens auto` assumes."""

SUITE = {
    "short": "The quick brown fox jumps over the lazy dog.",
    "medium": (
        "Dr. Evans opened the clinic at 8 a.m., as usual. The waiting room was already full. "
        "She sighed, poured a coffee, and called the first patient in."
    ),
    "long": (
        "The lighthouse keeper woke at four, as he had every morning for thirty-one years. "
        "Outside, the fog lay thick over the harbor, hiding the boats and the breakwater. "
        "The ferry from the mainland was due at a quarter past six, though it was usually late. "
        "He climbed the stairs to the lamp room and checked the lens for salt. "
        "Then he wrote in the log: visibility poor, improving, wind from the south-west. "
        "He liked the log, because it only recorded what had actually happened. "
        "By seven the fog had lifted enough to see the long gray line of the coast. "
        "When the ferry finally rounded the point, he raised his cup of tea toward it."
    ),
}
STAGES = ("text", "t3_prefill", "t3_decode", "flow", "hifigan", "loudness", "watermark")
LOWER_IS_BETTER = ("ttfa_s", "total_s", "rtf")
HIGHER_IS_BETTER = ("t3_tok_s", "throughput")
FIGURES = (
    "ttfa_s",
    "total_s",
    "audio_s",
    "rtf",
    "throughput",
    "speech_tokens",
    "t3_tok_s",
    "peak_rss_mb",
)


@dataclass(frozen=True)
class BenchItem:
    name: str
    text: str


@dataclass
class Sample:
    """One measured run of one mode on one item."""

    mode: str
    item: str
    repeat: int
    ttfa_s: float
    total_s: float
    audio_s: float
    rtf: float | None
    throughput: float | None
    """Audio seconds produced per wall-clock second (1 / RTF)."""
    speech_tokens: int
    t3_tok_s: float | None
    stages: dict[str, float | None]
    peak_rss_mb: float | None
    peak_cuda_mb: float | None = None


@dataclass
class BenchContext:
    engine: Engine
    conds: Any
    seed: int = 0
    tokens: str | None = None
    """None (natural stop), "auto", or an integer as a string."""
    opts: RenderOptions = field(default_factory=RenderOptions)
    items: int = 16
    """How many texts the throughput (batch) mode processes per run."""
    batch_size: int | None = None
    stream_tokens: int = DEFAULT_STREAM_TOKENS
    baseline: Engine | None = None
    """The engine upstream mode runs on: an unquantized one when --quantize is set."""

    def budget(self, item: BenchItem) -> int | None:
        """Speech tokens every mode must make for `item`, or None when not fixed."""
        if self.tokens is None:
            return None
        if self.tokens == "auto":
            return max(1, round(TOKENS_PER_CHAR * len(item.text)))
        return int(self.tokens)


def parse_tokens(value: str | None) -> str | None:
    if value is None or value == "auto":
        return value
    if not value.isdigit() or int(value) < 1:
        raise BadInput(f"--tokens takes a positive number or 'auto', not {value!r}")
    return value


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


def _reset_peaks(device: str) -> None:
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")  # Linux: reset VmHWM (peak RSS)
    if device == "cuda":
        import torch

        torch.cuda.reset_peak_memory_stats()


def _peaks(device: str) -> tuple[float | None, float | None]:
    rss = None
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                rss = int(line.split()[1]) / 1024
    if rss is None:
        import resource

        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # cumulative fallback
    cuda = None
    if device == "cuda":
        import torch

        cuda = torch.cuda.max_memory_allocated() / 2**20
    return rss, cuda


def mode_upstream(ctx: BenchContext, item: BenchItem) -> dict:
    """The baseline: upstream `generate()` on the whole text, as a library user calls it."""
    from chatterbox_cli.runtime import upstream_quiet

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
            wav = engine.family.generate(tts, item.text, p)
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
    groups = split_groups(item.text, short_first=short_first)
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
    from chatterbox_cli.pipeline import stream

    groups, opts = _plan(ctx, item, short_first=True)
    opts = replace(opts, stream_tokens=stream_tokens)
    chunks: list = []
    frames = 0
    ttfa = None
    t0 = time.perf_counter()
    for piece in stream(ctx.engine, groups, ctx.conds, opts, on_chunk=chunks.append):
        frames += len(piece)
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
    from chatterbox_cli.audio import join, master
    from chatterbox_cli.batched import Job, synthesize_batches
    from chatterbox_cli.engine import auto_max_tokens

    engine = ctx.engine
    groups, opts = _plan(ctx, item)
    caps = opts.max_new_tokens
    size = ctx.batch_size or (16 if engine.device == "cuda" else 8)
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
    windows = [jobs[start : start + size] for start in range(0, len(jobs), size)]
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
                audio = join(
                    [c.audio for c in per_copy.pop(copy)],
                    engine.sample_rate,
                    pause_s=ctx.opts.pause_s,
                )
                marked, info = master(audio, engine.sample_rate, engine.watermarker, ctx.opts.lufs)
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


def measure(ctx: BenchContext, mode: str, item: BenchItem, repeat: int) -> Sample:
    from chatterbox_cli.runtime import seed_everything

    seed_everything(ctx.seed)
    _reset_peaks(ctx.engine.device)
    budget = ctx.budget(item)
    guard = fixed_compute(ctx.engine.tts.t3) if budget else contextlib.nullcontext()
    with guard:
        r = MODES[mode](ctx, item)
    rss, cuda = _peaks(ctx.engine.device)
    decode = r["stages"].get("t3_decode")
    return Sample(
        mode=mode,
        item=item.name,
        repeat=repeat,
        ttfa_s=r["ttfa_s"],
        total_s=r["total_s"],
        audio_s=r["audio_s"],
        rtf=rtf(r["total_s"], r["audio_s"]),
        throughput=r["audio_s"] / r["total_s"] if r["total_s"] > 0 else None,
        speech_tokens=r["speech_tokens"],
        t3_tok_s=r["speech_tokens"] / decode if decode else None,
        stages=r["stages"],
        peak_rss_mb=rss,
        peak_cuda_mb=cuda,
    )


def run(
    ctx: BenchContext,
    items: list[BenchItem],
    modes: list[str],
    warmup: int,
    repeats: int,
    samples: list[Sample],
    on_sample: Callable[[Sample | None, str], None] | None = None,
) -> list[Sample]:
    """Warm-up runs (shortest item, not recorded), then `repeats` of every mode x item.

    Appends to `samples` as it goes, so an interrupted run keeps what it measured.
    """
    shortest = min(items, key=lambda i: len(i.text))
    for mode in modes:
        for _ in range(warmup):
            measure(ctx, mode, shortest, -1)
            if on_sample:
                on_sample(None, f"warm-up {mode}")
    for repeat in range(repeats):
        for item in items:
            for mode in modes:
                sample = measure(ctx, mode, item, repeat)
                samples.append(sample)
                if on_sample:
                    on_sample(sample, f"{mode}/{item.name} #{repeat + 1}")
    return samples


def _stat(values: list[float]) -> dict | None:
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


def summarize(samples: list[Sample]) -> dict:
    """summary[mode][item] = {figure: {median,min,max,n}, "stages": {...}, "vs_upstream": x}.

    vs_upstream is a speed-up: upstream's median RTF over the mode's (higher is faster). For the
    batch mode that is its throughput over upstream's one-by-one throughput on the same text and
    token count (sequential items each take what one takes, so N items scale both sides alike).
    ttfa_vs_upstream is the mode's time to first audio over upstream's whole generation (what a
    listener waits for without streaming); total_vs_simple its total time over `simple`'s.
    """
    summary: dict[str, dict[str, dict]] = {}
    for s in samples:
        summary.setdefault(s.mode, {}).setdefault(s.item, {})
    for mode, per_item in summary.items():
        for item in per_item:
            runs = [s for s in samples if s.mode == mode and s.item == item]
            entry = {f: _stat([getattr(s, f) for s in runs]) for f in FIGURES}
            entry["stages"] = {k: _stat([s.stages.get(k) for s in runs]) for k in STAGES}
            per_item[item] = entry

    def ratio(mine, baseline):
        return mine["median"] / baseline["median"] if mine and baseline else None

    base, simple = summary.get("upstream", {}), summary.get("simple", {})
    for per_item in summary.values():
        for item, entry in per_item.items():
            up = base.get(item, {})
            speedup = ratio(up.get("rtf"), entry.get("rtf"))
            entry["vs_upstream"] = speedup
            entry["ttfa_vs_upstream"] = ratio(entry.get("ttfa_s"), up.get("total_s"))
            entry["total_vs_simple"] = ratio(
                entry.get("total_s"), simple.get(item, {}).get("total_s")
            )
    return summary


@dataclass
class Comparison:
    mode: str
    item: str
    figure: str
    old: float
    new: float
    ratio: float
    regressed: bool


def compare(new: dict, old: dict, tolerance: float) -> list[Comparison]:
    """Median ratios new/old; a regression is worse than `tolerance` in the bad direction."""
    out: list[Comparison] = []
    for mode, per_item in new.items():
        for item, entry in per_item.items():
            before = old.get(mode, {}).get(item)
            if not before:
                continue
            for figure in (*LOWER_IS_BETTER, *HIGHER_IS_BETTER):
                a, b = (before.get(figure) or {}), (entry.get(figure) or {})
                if not a.get("median") or b.get("median") is None:
                    continue
                ratio = b["median"] / a["median"]
                worse = (
                    ratio > 1 + tolerance
                    if figure in LOWER_IS_BETTER
                    else ratio < 1 / (1 + tolerance)
                )
                out.append(Comparison(mode, item, figure, a["median"], b["median"], ratio, worse))
    return out


def environment(ctx: BenchContext, voice: str) -> dict:
    from importlib.metadata import version

    import torch

    from chatterbox_cli.random_checkpoint import is_random_checkpoint

    device = ctx.engine.device
    if device == "cuda":
        name = torch.cuda.get_device_name()
    else:
        name = platform.processor() or platform.machine()
        with contextlib.suppress(OSError):
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    model_dir = ctx.engine.source.model_dir
    return {
        "chatterbox_tts": version("chatterbox-tts"),
        "chatterbox_cli": version("chatterbox-cli"),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": device,
        "device_name": name,
        "dtype": ctx.engine.dtype,
        "quantize": ctx.engine.quantize,
        "cfm_steps": ctx.opts.cfm_steps,
        "prefix_cache": ctx.engine.prefix_cache,
        "threads": torch.get_num_threads(),
        "family": ctx.engine.family.name,
        "model": ctx.engine.source.describe(),
        "random_weights": bool(model_dir and is_random_checkpoint(model_dir)),
        "voice": voice,
        "seed": ctx.seed,
        "tokens": ctx.tokens,
    }


def document(env: dict, config: dict, samples: list[Sample], interrupted: bool) -> dict:
    return {
        "schema": SCHEMA,
        "env": env,
        "config": config,
        "interrupted": interrupted,
        "runs": [asdict(s) for s in samples],
        "summary": summarize(samples),
    }
