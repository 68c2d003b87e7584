"""`chatterbox bench`: RTF / time-to-first-audio per mode, upstream `generate()` as baseline."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from chatterbox_cli.cli.errors import mapped_errors
from chatterbox_cli.cli.groups import grouped
from chatterbox_cli.cli.loading import load, note_language
from chatterbox_cli.cli.options import (
    BatchS3GenOpt,
    CfmStepsOpt,
    FastDecodeOpt,
    LanguageOpt,
    ModelFlags,
    QuietOpt,
    VoiceOpt,
    flag,
)
from chatterbox_cli.cli.output import Output
from chatterbox_cli.runtime import limits
from chatterbox_cli.runtime.errors import EXIT_FAILURE, EXIT_INTERRUPTED, BadInput
from chatterbox_cli.synth.request import DEFAULT_STREAM_TOKENS


def bench_items(texts: list[str] | None, file: Path | None, language: str = "en"):
    from chatterbox_cli.bench.harness import SUITE, BenchItem
    from chatterbox_cli.text.segment import decode_bytes, normalize

    items = [BenchItem(f"text{i + 1}", t, language) for i, t in enumerate(texts or [])]
    if file is not None:
        if not file.is_file():
            raise BadInput(f"text file {file} does not exist")
        text = decode_bytes(limits.read_file(file), str(file))
        items.append(BenchItem(file.stem, text, language))
    if not items and language != "en":
        raise BadInput(f"the built-in bench texts are English; give --text or --file in {language}")
    items = items or [BenchItem(name, text) for name, text in SUITE.items()]
    for item in items:
        if not normalize(item.text):
            raise BadInput(f"bench text {item.name!r} is empty")
    return items


def load_baseline(path: Path | None) -> dict | None:
    if path is None:
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        return doc["summary"]
    except FileNotFoundError:
        raise BadInput(f"--compare: {path} does not exist") from None
    except (ValueError, KeyError, TypeError):
        raise BadInput(f"--compare: {path} is not a `chatterbox bench --json` file") from None


@mapped_errors
@grouped
def bench(
    mode: Annotated[
        list[str] | None,
        typer.Option(
            "--mode",
            help="Mode to run (repeatable): upstream, simple, stream, stream-tokens, batch. "
            "Default: all.",
        ),
    ] = None,
    text: Annotated[
        list[str] | None, typer.Option("--text", help="Benchmark this text (repeatable).")
    ] = None,
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="Benchmark a text file.")
    ] = None,
    items: Annotated[
        int, typer.Option("--items", help="Texts processed by throughput modes (batch).")
    ] = 16,
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", help="Batch mode: groups decoded together.")
    ] = None,
    stream_tokens: Annotated[
        int, typer.Option("--stream-tokens", help="stream-tokens mode: audio every N tokens.")
    ] = DEFAULT_STREAM_TOKENS,
    cfm_steps: CfmStepsOpt = None,
    voice: VoiceOpt = None,
    language: LanguageOpt = None,
    model: ModelFlags = ModelFlags(),
    batch_s3gen: BatchS3GenOpt = None,
    fast_decode: FastDecodeOpt = False,
    seed: Annotated[int, typer.Option("--seed", help="Seed for every run.")] = 0,
    warmup: Annotated[int, typer.Option("--warmup", help="Unrecorded warm-up runs.")] = 1,
    repeats: Annotated[int, typer.Option("--repeats", help="Measured runs per mode/text.")] = 3,
    tokens: Annotated[
        str | None,
        typer.Option(
            "--tokens",
            help="Fixed compute: N speech tokens per text, or 'auto' (1.7/char). "
            "Default: natural stop (auto on random-weight checkpoints).",
        ),
    ] = None,
    json_path: Annotated[
        str | None,
        typer.Option("--json", help="Write every raw run and the summary ('-': stdout)."),
    ] = None,
    markdown: Annotated[
        bool, typer.Option("--markdown", help="Print a Markdown table on stdout.")
    ] = False,
    compare_path: Annotated[
        Path | None, typer.Option("--compare", help="Baseline bench JSON to compare medians with.")
    ] = None,
    tolerance: Annotated[
        float, typer.Option("--tolerance", help="Allowed regression vs --compare (0.10 = 10%).")
    ] = 0.10,
    quiet: QuietOpt = False,
) -> None:
    """Measure RTF, time to first audio, throughput and per-stage time for each mode."""
    from chatterbox_cli.bench import harness
    from chatterbox_cli.models import get, voices
    from chatterbox_cli.models.source import is_random_checkpoint
    from chatterbox_cli.synth.request import SpeechRequest
    from chatterbox_cli.synth.voices import VoiceStore

    out = Output(quiet=quiet)
    modes = mode or list(harness.MODES)
    unknown = [m for m in modes if m not in harness.MODES]
    if unknown:
        raise BadInput(f"unknown mode {unknown[0]!r}; available: {', '.join(harness.MODES)}")
    if repeats < 1 or warmup < 0 or items < 1 or tolerance < 0 or (batch_size or 1) < 1:
        raise BadInput(
            "--repeats, --items and --batch-size must be >= 1, --warmup and --tolerance >= 0"
        )
    tokens = harness.parse_tokens(tokens)
    name = model.name
    family = get(name)
    request = SpeechRequest(
        voice=voice, cfm_steps=cfm_steps, stream_tokens=stream_tokens, streaming=True
    )
    opts = request.options(family, flag)
    lang = family.language(language, flag)
    note_language(lang, out)
    bench_texts = bench_items(text, file, lang.code)
    baseline = load_baseline(compare_path)
    if json_path not in (None, "-"):
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
    spec = voices.resolve(voice, name)
    source, device, runtime = model.checked(fast_decode, batch_s3gen)
    model_dir = model.model_dir
    if tokens is None and model_dir and is_random_checkpoint(model_dir):
        tokens = "auto"
        out.info("random-weight checkpoint: fixed compute with --tokens auto")

    engine = load(out, source, device, runtime)
    conds = VoiceStore.of(engine).get(voice, spec).conds
    reference = None
    if runtime.quantize != "none" and "upstream" in modes:
        out.info("upstream mode runs on a second, unquantized copy of the model")
        reference = load(out, source, device, replace(runtime, quantize="none"))
    ctx = harness.BenchContext(
        engine=engine,
        conds=conds,
        seed=seed,
        tokens=tokens,
        items=items,
        batch_size=batch_size,
        stream_tokens=stream_tokens,
        opts=opts,
        baseline=reference,
    )
    env = harness.environment(ctx, spec.label)
    env["load_s"] = engine.load_s
    config = {
        "modes": modes,
        "texts": {i.name: i.text for i in bench_texts},
        "items": items,
        "warmup": warmup,
        "repeats": repeats,
        "tokens": tokens,
        "stream_tokens": stream_tokens,
        "cfm_steps": opts.cfm_steps,
        "budgets": {i.name: ctx.budget(i) for i in bench_texts},
    }
    out.bench_header(env)

    samples: list = []
    interrupted = False
    total = len(modes) * (warmup + repeats * len(bench_texts))
    try:
        with out.progress(total, "Benchmarking") as advance:
            harness.run(
                ctx,
                bench_texts,
                modes,
                warmup,
                repeats,
                samples,
                lambda _sample, what: advance(what),
            )
    except KeyboardInterrupt:
        interrupted = True
        out.warn(f"interrupted: showing the {len(samples)} run(s) measured so far")

    doc = harness.document(env, config, samples, interrupted)
    out.bench_tables(doc["summary"], modes)
    if markdown:
        sys.stdout.write(out.bench_markdown(doc["summary"], modes))
    if json_path == "-":
        out.data(doc)
    elif json_path:
        Path(json_path).write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
        out.info(f"wrote {json_path}")
    if interrupted:
        raise typer.Exit(EXIT_INTERRUPTED)
    if baseline is not None:
        rows = harness.compare(doc["summary"], baseline, tolerance)
        out.bench_comparison(rows, tolerance)
        if not rows:
            raise BadInput(f"--compare: {compare_path} shares no mode/text with this run")
        regressed = [r for r in rows if r.regressed]
        if regressed:
            out.error(
                f"{len(regressed)} median(s) regressed by more than {tolerance:.0%} vs "
                f"{compare_path}: " + ", ".join(f"{r.mode}/{r.item} {r.figure}" for r in regressed)
            )
            raise typer.Exit(EXIT_FAILURE)
