"""What listening back costs (`make bench-asr`): transcription time per second of audio for
Whisper tiny- and base-sized models (random weights in the real sizes: the same arithmetic as
the real ones), int8 on this CPU, on speech-like audio of a sentence group's length. A random
model decodes up to the cap our check sets (three tokens a reference word, at 2.5 words a
second); real speech needs about half that, so these figures are an upper bound. JSON on
stdout, a table on stderr."""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

SIZES = {"tiny": (4, 384, 6), "base": (6, 512, 8)}
"""Whisper's own: (layers, width, heads)."""


def measure(size: str, seconds: float, runs: int, threads: int) -> dict:
    from chatterbox_cli.post.asr import Listener
    from chatterbox_cli.testing import whisper
    from chatterbox_cli.testing.checkpoints import speech_like

    layers, width, heads = SIZES[size]
    folder = whisper.build(Path(".cache") / f"random-whisper-{size}", layers=layers,
                           width=width, heads=heads)  # fmt: skip
    listener = Listener(folder, "cpu", threads)
    audio = speech_like(seconds, 24000, seed=1) * 0.3
    text = " ".join(["word"] * int(seconds * 2.5))
    listener.hear(audio, 24000, text)  # warm-up
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        listener.hear(audio, 24000, text)
        times.append(time.perf_counter() - t0)
    median = statistics.median(times)
    return {"size": size, "audio_s": seconds, "threads": threads, "median_s": round(median, 3),
            "s_per_audio_s": round(median / seconds, 4), "runs": runs}  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", default="tiny,base")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    rows = []
    for size in args.sizes.split(","):
        rows.append(measure(size, args.seconds, args.runs, args.threads))
        r = rows[-1]
        print(f"{size}: {r['median_s']} s for {r['audio_s']} s of audio "
              f"({r['s_per_audio_s']} s per audio second, {r['threads']} threads)",
              file=sys.stderr)  # fmt: skip
    json.dump(rows, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
