"""Voice conversion speed (`make bench-convert`): ours against upstream `ChatterboxVC.generate()`
on the same source (RTF), and long sources (time, RTF and peak RSS by length: linear time and
flat memory are the claims). Each run is a fresh process, so its peak RSS is its own. Sources
are synthetic speech-like signals with pauses (`testing/checkpoints.speech_like`). JSON on
stdout, a table on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from chatterbox_cli.bench.harness import peak_rss_mb, run_fresh
from chatterbox_cli.testing.checkpoints import speech_like

SR = 16000


def measure(model: str, model_dir: Path | None, seconds: float, upstream: bool) -> dict:
    import soundfile as sf
    import torch

    from chatterbox_cli.api import VoiceConverter
    from chatterbox_cli.runtime.device import seed_everything, upstream_quiet

    folder = Path(tempfile.mkdtemp(prefix="cbx-vc-"))
    src = folder / "source.wav"
    sf.write(src, speech_like(seconds, SR, seed=1), SR)
    vc = VoiceConverter(model, model_dir, "cpu")
    loaded = peak_rss_mb()
    row = {"model": model, "source_s": seconds, "loaded_rss_mb": loaded}
    if upstream:
        from chatterbox.vc import ChatterboxVC

        up = ChatterboxVC(vc.converter.s3gen, "cpu", ref_dict=vc.converter.builtin)
        with upstream_quiet(), torch.inference_mode():
            seed_everything(0)
            up.generate(str(src))  # warm-up
            t0 = time.perf_counter()
            wav = up.generate(str(src))
            row["upstream_s"] = time.perf_counter() - t0
        row["upstream_rtf"] = row["upstream_s"] / (wav.shape[-1] / 24000)
        vc.convert(src, seed=0)  # warm-up
    t0 = time.perf_counter()
    audio = vc.convert(src, seed=0)
    row["ours_s"] = time.perf_counter() - t0
    row["ours_rtf"] = row["ours_s"] / audio.duration_s
    row["audio_s"] = audio.duration_s
    row["peak_rss_mb"] = peak_rss_mb()
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="standard")
    parser.add_argument("--model-dir", type=Path)
    parser.add_argument("--seconds", default="10", help="source lengths against upstream")
    parser.add_argument("--minutes", default="", help="long-source lengths (ours only)")
    parser.add_argument("--one", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--upstream", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one is not None:
        print(json.dumps(measure(args.model, args.model_dir, args.one, args.upstream)))
        return 0
    runs = [(float(s), True) for s in args.seconds.split(",") if s]
    runs += [(60 * float(m), False) for m in args.minutes.split(",") if m]
    results = []
    for seconds, upstream in runs:
        cmd = ["--one", str(seconds), "--model", args.model]
        cmd += ["--model-dir", str(args.model_dir)] if args.model_dir else []
        cmd += ["--upstream"] if upstream else []
        r = run_fresh(__spec__.name, cmd)
        results.append(r)
        versus = ""
        if upstream:
            versus = f"  upstream {r['upstream_s']:7.1f} s (RTF {r['upstream_rtf']:.2f})"
        print(
            f"{r['model']:>9} {seconds:6.0f} s source: ours {r['ours_s']:7.1f} s "
            f"(RTF {r['ours_rtf']:.2f}){versus}  peak RSS {r['peak_rss_mb']:6.0f} MB",
            file=sys.stderr,
            flush=True,
        )
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
