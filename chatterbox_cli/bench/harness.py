"""Benchmark harness: every mode measured the same way, upstream `generate()` as the baseline.

A mode is a small function `(BenchContext, BenchItem) -> Sample`. Figures are measured, never
estimated; a stage a mode cannot see is None ("not measured"). Fixed-compute runs (`tokens`)
suppress the stop token so every mode makes the same number of speech tokens for an item.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from chatterbox_cli.bench.context import (  # noqa: F401 (the harness's public names)
    TOKENS_PER_CHAR,
    BenchContext,
    BenchItem,
)
from chatterbox_cli.bench.modes import (  # noqa: F401 (the harness's public names)
    MODES,
    fixed_compute,
    instrument_upstream,
    spread,
)
from chatterbox_cli.bench.report import (  # noqa: F401 (the harness's public names)
    FIGURES,
    HIGHER_IS_BETTER,
    LOWER_IS_BETTER,
    SCHEMA,
    STAGES,
    compare,
    document,
    environment,
    summarize,
)
from chatterbox_cli.runtime.device import seed_everything
from chatterbox_cli.runtime.errors import BadInput
from chatterbox_cli.runtime.metrics import rtf

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


def parse_tokens(value: str | None) -> str | None:
    if value is None or value == "auto":
        return value
    if not value.isdigit() or int(value) < 1:
        raise BadInput(f"--tokens takes a positive number or 'auto', not {value!r}")
    return value


def _reset_peaks(device: str) -> None:
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")  # Linux: reset VmHWM (peak RSS)
    if device == "cuda":
        import torch

        torch.cuda.reset_peak_memory_stats()


def peak_rss_mb() -> float:
    """This process's peak RSS since the last `_reset_peaks` (Linux), else since it began."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_fresh(module: str, args: list[str]) -> dict:
    """`python -m module args` in a fresh process, so each measurement's peak RSS is its own;
    the JSON object on its last stdout line."""
    import subprocess
    import sys

    cmd = [sys.executable, "-m", module, *args]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def _peaks(device: str) -> tuple[float | None, float | None]:
    rss = peak_rss_mb()
    cuda = None
    if device == "cuda":
        import torch

        cuda = torch.cuda.max_memory_allocated() / 2**20
    return rss, cuda


def measure(ctx: BenchContext, mode: str, item: BenchItem, repeat: int) -> Sample:

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
