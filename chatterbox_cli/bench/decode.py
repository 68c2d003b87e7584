"""T3 decode alone (`make bench-decode`): tokens/s at several batch sizes for one family, B=1
tokens/s, the peak RSS of each batch, and what a step reads (weights and KV bytes per position)
next to its measured time.

Every row decodes up to `--tokens` tokens (random weights rarely stop), sampled with its own
seeded generator: the same workload for every build of the loops. JSON on
stdout, a table on stderr. Each batch size runs in a fresh process, so its peak RSS is its own.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from chatterbox_cli.bench.harness import peak_rss_mb, run_fresh

TEXTS = [
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "A short one.",
    "Batched decoding reads the weights once for every row in the batch.",
    "Seven silver swans swam silently seaward in the early morning light.",
]


def _kv_width(config) -> int:
    """Floats per position per layer for K or V."""
    heads = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
    return heads * (config.hidden_size // config.num_attention_heads)


def measure(model: str, model_dir: Path | None, rows: int, tokens: int, shared: bool) -> dict:
    import torch

    from chatterbox_cli.models.sampling import SamplingParams
    from chatterbox_cli.models.t3.request import DecodeStats, Decoding, Row
    from chatterbox_cli.synth.loader import check_source, load_engine

    source, device, runtime = check_source(model, model_dir, "cpu")
    engine = load_engine(source, device, runtime)
    loaded_mb = peak_rss_mb()
    t3, conds = engine.tts.t3, engine.builtin_voice
    params = SamplingParams()
    t3_cond = engine.family.t3_cond(conds, params)
    prefix = engine.prefix(t3_cond) if shared else None
    batch = []
    for i in range(rows):
        ids = engine.text_tokens(TEXTS[i % len(TEXTS)])
        generator = torch.Generator().manual_seed(i)
        batch.append(Row(t3_cond, ids, params, tokens, generator))
    engine.family.decode_batch(t3, batch[:1], Decoding(DecodeStats(), prefix, engine.amp))
    stats = DecodeStats()
    t0 = time.perf_counter()
    out = engine.family.decode_batch(t3, batch, Decoding(stats, prefix, engine.amp))
    wall = time.perf_counter() - t0
    config = t3.tfmr.config
    weights = sum(p.numel() * p.element_size() for p in t3.parameters())
    guided = config.model_type == "llama" and params.cfg_weight > 0
    model_rows = rows * (2 if guided else 1)
    lengths = [engine.text_tokens(TEXTS[i % len(TEXTS)]).shape[-1] for i in range(rows)]
    cond_len = t3.prepare_conditioning(t3_cond).shape[1]
    return {
        "model": model,
        "rows": rows,
        "model_rows": model_rows,
        "tokens": tokens,
        "prefix": cond_len,
        "mean_text": sum(lengths) / rows,
        "prefill_s": stats.prefill_s,
        "decode_s": stats.decode_s,
        "wall_s": wall,
        "step_s": stats.decode_s / max(stats.steps - 1, 1),
        "tok_s": sum(len(r) for r in out) / stats.decode_s,
        "tokens_out": sum(len(r) for r in out),
        "weights_bytes": weights,
        "kv_bytes_per_position": 2 * config.num_hidden_layers * _kv_width(config) * 4,
        "loaded_rss_mb": loaded_mb,
        "peak_rss_mb": peak_rss_mb(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="turbo")
    parser.add_argument("--model-dir", type=Path)
    parser.add_argument("--rows", default="1,4,8,16,32")
    parser.add_argument("--tokens", type=int, default=50)
    parser.add_argument("--no-prefix", action="store_true", help="no shared voice prefix")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one is not None:
        shared = not args.no_prefix
        import torch

        with torch.inference_mode():
            row = measure(args.model, args.model_dir, args.one, args.tokens, shared)
        print(json.dumps(row))
        return 0
    results = []
    for rows in [int(r) for r in args.rows.split(",")]:
        cmd = ["--one", str(rows), "--model", args.model, "--tokens", str(args.tokens)]
        cmd += ["--model-dir", str(args.model_dir)] if args.model_dir else []
        cmd += ["--no-prefix"] if args.no_prefix else []
        r = run_fresh(__spec__.name, cmd)
        results.append(r)
        print(
            f"{r['model']:>13} rows={rows:>3} {r['tok_s']:7.1f} tok/s"
            f"  step {r['step_s'] * 1e3:6.0f} ms"
            f"  prefill {r['prefill_s']:5.2f} s  peak RSS {r['peak_rss_mb']:6.0f} MB",
            file=sys.stderr,
            flush=True,
        )
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
