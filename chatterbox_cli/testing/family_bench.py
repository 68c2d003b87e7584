"""Does parallel decoding pay off here? (`make bench-families`): Flash against Standard, Turbo
and Nano on the same text and token budget, each family in a process of its own (its peak RSS),
one after the other, on this machine.

Per family: T3 alone on one group (tokens/s; Flash's denoising steps per block), the whole
group (RTF: time over audio), time to first audio of a stream (each family's default pieces:
Flash a block, the others a group; then pieces of 13 tokens for all), and T3 over a batch of
rows (tokens/s over all rows). On
random-weight checkpoints no group stops early, so every family decodes the same number of
tokens. JSON on stdout, a table on stderr."""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

TEXT = "The quick brown fox jumps over the lazy dog, and then it runs far away."
UNIT = 13
"""Pieces of this many tokens for every family too (Flash's default unit: a block of 16 less
S3Gen's lookahead), so first audio is compared at one piece size."""


def measure(family: str, model_dir: Path, tokens: int, rows: int, steps: int | None) -> dict:
    from chatterbox_cli.api import Synthesizer
    from chatterbox_cli.models.source import ModelSource
    from chatterbox_cli.models.t3.request import DecodeStats, Decoding, Row
    from chatterbox_cli.synth.loader import load_engine
    from chatterbox_cli.synth.request import RenderOptions
    from chatterbox_cli.text.segment import TextGroup

    engine = load_engine(ModelSource(family, model_dir), "cpu")
    spec, t3, voice = engine.family, engine.tts.t3, engine.builtin_voice
    params = spec.defaults if steps is None else spec.sampling(steps=steps)
    cond = spec.t3_cond(voice, params)
    ids = engine.text_tokens(TEXT)
    list(spec.decode(t3, Row(cond, ids, params, 4), Decoding()))  # warm-up: weights paged in

    stats = DecodeStats()
    t0 = time.perf_counter()
    sampled = list(spec.decode(t3, Row(cond, ids, params, tokens), Decoding(stats)))
    t3_s = time.perf_counter() - t0

    opts = RenderOptions(params, tokens, seed=1)
    knobs = {} if steps is None else {"steps": steps}
    (chunk,) = engine.synthesize([TextGroup(0, TEXT, 0)], voice, opts)
    audio_s = len(chunk.audio) / engine.sample_rate

    tts = Synthesizer.of(engine)
    ttfa = {}
    for unit in (None, UNIT):
        t0 = time.perf_counter()
        stream = tts.stream(TEXT, max_new_tokens=tokens, seed=1, stream_tokens=unit, **knobs)
        next(stream)
        ttfa[unit] = round(time.perf_counter() - t0, 2)
        stream.close()

    batch = [Row(cond, engine.text_tokens(f"{TEXT} Row {i}."), params, tokens) for i in range(rows)]
    t0 = time.perf_counter()
    spec.decode_batch(t3, batch, Decoding())
    batch_s = time.perf_counter() - t0
    return {
        "model": family if steps is None else f"{family} --steps {steps}",
        "tokens": len(sampled),
        "t3_s": round(t3_s, 2),
        "t3_tokens_per_s": round(len(sampled) / t3_s, 1),
        "t3_forwards": stats.steps,
        "steps_per_block": round(stats.steps / stats.blocks, 2) if stats.blocks else None,
        "synth_s": round(chunk.synth_s, 2),
        "rtf": round(chunk.synth_s / audio_s, 2),
        "ttfa_s": ttfa[None],
        f"ttfa_{UNIT}_tokens_s": ttfa[UNIT],
        "batch_rows": rows,
        "batch_t3_tokens_per_s": round(rows * tokens / batch_s, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--models", default="flash,standard,turbo,nano")
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--rows", type=int, default=8)
    ap.add_argument("--steps", type=int, help="Flash's steps per block (default: its 10)")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        from chatterbox_cli.testing.checkpoints import build

        folder = build(Path(".cache") / f"random-{args.one}", args.one)
        print(json.dumps(measure(args.one, folder, args.tokens, args.rows, args.steps)))
        return
    results = []
    for model in args.models.split(","):
        cmd = [sys.executable, "-m", __spec__.name, "--one", model,
               "--tokens", str(args.tokens), "--rows", str(args.rows)]  # fmt: skip
        if args.steps is not None and model == "flash":
            cmd += ["--steps", str(args.steps)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        results.append(json.loads(out.strip().splitlines()[-1]))
        r = results[-1]
        print(f"{r['model']:>9}: T3 {r['t3_tokens_per_s']} tok/s "
              f"({r['steps_per_block']} steps/block), "
              f"RTF {r['rtf']}, TTFA {r['ttfa_s']} s ({r[f'ttfa_{UNIT}_tokens_s']} s), "
              f"batch of {r['batch_rows']} {r['batch_t3_tokens_per_s']} tok/s, "
              f"peak RSS {r['peak_rss_mb']} MB",
              file=sys.stderr)  # fmt: skip
    json.dump(results, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
