"""Bench results: summaries (medians, speed-ups), comparisons against a saved run, the
environment header and the JSON document. Pure data: nothing here runs a model."""

from __future__ import annotations

import contextlib
import platform
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from chatterbox_cli.models.source import is_random_checkpoint

SCHEMA = 1
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


def summarize(samples: list) -> dict:
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


def environment(ctx: Any, voice: str) -> dict:
    from importlib.metadata import version

    import torch

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


def document(env: dict, config: dict, samples: list, interrupted: bool) -> dict:
    return {
        "schema": SCHEMA,
        "env": env,
        "config": config,
        "interrupted": interrupted,
        "runs": [asdict(s) for s in samples],
        "summary": summarize(samples),
    }
