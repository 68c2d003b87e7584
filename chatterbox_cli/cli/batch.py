"""`chatterbox batch`: many texts to many files — validated first, resumable, batched."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from chatterbox_cli.cli.errors import mapped_errors
from chatterbox_cli.cli.jobrun import ItemRun, run_items
from chatterbox_cli.cli.model import checked_language, family_options
from chatterbox_cli.cli.options import (
    DEFAULTS,
    BatchS3GenOpt,
    BatchSizeOpt,
    CfgWeightOpt,
    CfmStepsOpt,
    CpusPerWorkerOpt,
    DeviceOpt,
    DtypeOpt,
    ExaggerationOpt,
    ExecutorOpt,
    GpusPerWorkerOpt,
    JsonOpt,
    LanguageOpt,
    LexiconOpt,
    LufsOpt,
    MaxNewTokensOpt,
    MinPOpt,
    ModelDirOpt,
    ModelOpt,
    OverlapOpt,
    OverwriteOpt,
    PackOpt,
    PauseOpt,
    QuantizeOpt,
    QuietOpt,
    RayAddressOpt,
    RepetitionPenaltyOpt,
    RetriesOpt,
    SeedOpt,
    SubtypeOpt,
    TemperatureOpt,
    ThreadsOpt,
    TopKOpt,
    TopPOpt,
    VerboseOpt,
    VoiceOpt,
    WorkersOpt,
)
from chatterbox_cli.cli.output import Output
from chatterbox_cli.runtime.errors import BadInput
from chatterbox_cli.synth.pipeline import DEFAULT_PAUSE_S


@mapped_errors
def batch(
    inputs: Annotated[
        list[str], typer.Argument(help=".csv/.tsv/.jsonl/.txt files, or '-' for stdin.")
    ],
    outdir: Annotated[Path, typer.Option("--outdir", "-d", help="Directory for the outputs.")],
    input_format: Annotated[
        str | None, typer.Option("--input-format", help="csv|tsv|jsonl|txt (default: suffix).")
    ] = None,
    unit: Annotated[
        str, typer.Option("--unit", help="For .txt: one output per 'line' or per 'file'.")
    ] = "line",
    skip_invalid: Annotated[
        bool, typer.Option("--skip-invalid", help="Go on with the valid rows.")
    ] = False,
    fail_fast: Annotated[
        bool, typer.Option("--fail-fast", help="Stop at the first failure.")
    ] = False,
    batch_size: BatchSizeOpt = None,
    voice: VoiceOpt = None,
    model: ModelOpt = "turbo",
    pack: PackOpt = None,
    model_dir: ModelDirOpt = None,
    device: DeviceOpt = "auto",
    threads: ThreadsOpt = None,
    quantize: QuantizeOpt = "none",
    dtype: DtypeOpt = "auto",
    overlap: OverlapOpt = False,
    retries: RetriesOpt = 2,
    batch_s3gen: BatchS3GenOpt = None,
    executor: ExecutorOpt = "local",
    ray_address: RayAddressOpt = None,
    workers: WorkersOpt = None,
    cpus_per_worker: CpusPerWorkerOpt = None,
    gpus_per_worker: GpusPerWorkerOpt = 0.0,
    verbose: VerboseOpt = False,
    cfm_steps: CfmStepsOpt = None,
    seed: SeedOpt = None,
    temperature: TemperatureOpt = None,
    top_p: TopPOpt = None,
    top_k: TopKOpt = None,
    min_p: MinPOpt = None,
    repetition_penalty: RepetitionPenaltyOpt = None,
    cfg_weight: CfgWeightOpt = None,
    exaggeration: ExaggerationOpt = None,
    language: LanguageOpt = None,
    lexicon: LexiconOpt = None,
    max_new_tokens: MaxNewTokensOpt = None,
    lufs: LufsOpt = DEFAULTS["lufs"],
    pause: PauseOpt = DEFAULT_PAUSE_S,
    fmt: Annotated[str, typer.Option("--format", help="wav|flac|mp3|opus|ogg.")] = "wav",
    subtype: SubtypeOpt = "PCM_16",
    overwrite: OverwriteOpt = False,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Synthesize one file per row/line into OUTDIR, with a manifest; re-run to resume."""
    from chatterbox_cli.models.packs import pack_model

    model = pack_model(model, pack)
    from chatterbox_cli.jobs import inputs as batch_inputs
    from chatterbox_cli.sinks.files import AudioFormat
    from chatterbox_cli.synth.pipeline import RenderOptions
    from chatterbox_cli.text.markup import Lexicon

    out = Output(quiet=quiet, json=json_out)
    family, sampling, steps = family_options(
        model,
        cfm_steps,
        temperature=temperature,
        top_p=top_p,
        top_k=top_k,
        min_p=min_p,
        repetition_penalty=repetition_penalty,
        cfg_weight=cfg_weight,
        exaggeration=exaggeration,
    )
    opts = RenderOptions(
        sampling=sampling,
        max_new_tokens=max_new_tokens,
        lufs=lufs,
        pause_s=pause,
        cfm_steps=steps,
    ).check()
    audio_fmt = AudioFormat(fmt, subtype).check()
    ray_opts = executor_options(
        executor, ray_address, workers, cpus_per_worker, gpus_per_worker, verbose
    )
    if not 0 <= retries <= 10:
        raise BadInput("--retries must be between 0 and 10")
    if batch_size is not None and batch_size < 1:
        raise BadInput("--batch-size must be >= 1")
    stdin = getattr(sys.stdin, "buffer", None)
    items, invalid = batch_inputs.read_inputs(inputs, input_format, unit, stdin)
    items, unused = batch_inputs.sampling_columns(items, family)
    items, unspoken = batch_inputs.languages(items, family, language)
    items, unmarked = batch_inputs.markup(items, model)
    invalid += unused + unspoken + unmarked
    if invalid:
        for row in invalid:
            out.console.print(f"[red]invalid[/] {escape(str(row))}")
        if not skip_invalid:
            raise BadInput(
                f"{len(invalid)} invalid row(s) (listed above); fix them or pass --skip-invalid"
            )
        out.warn(f"skipping {len(invalid)} invalid row(s)")
    if not items:
        raise BadInput("no rows to synthesize")
    for code in dict.fromkeys(item.language for item in items):
        checked_language(family, code, out)
    for warning in batch_inputs.assign_names(items):
        out.warn(warning)
    spec = ItemRun(
        outdir=outdir,
        fmt=audio_fmt,
        opts=opts,
        family=family,
        model=model,
        model_dir=model_dir,
        device=device,
        runtime=(threads, quantize, dtype, overlap, batch_s3gen),
        voice=voice,
        seed=seed,
        batch_size=batch_size,
        fail_fast=fail_fast,
        retries=retries,
        ray_opts=ray_opts,
        overwrite=overwrite,
        lexicon=Lexicon.load(lexicon) if lexicon else None,
    )
    tally, skipped = run_items(out, items, spec, json_out)
    if tally is None:
        return
    out.info(f"{tally.ok} written, {tally.failed} failed, {skipped} skipped -> {outdir}")
    tally.exit_if_failed()


def executor_options(executor, address, workers, cpus, gpus, verbose):
    """RayOptions for `--executor ray` (checked, Ray importable), None for local; Ray's flags
    without it are an error rather than silently ignored."""
    import os

    from chatterbox_cli.jobs.ray_executor import RayOptions

    if executor == "ray":
        address = address or os.environ.get("RAY_ADDRESS") or None
        return RayOptions(address, workers, cpus, gpus, verbose=verbose).check()
    if executor != "local":
        raise BadInput("--executor must be local or ray")
    given = [
        flag
        for flag, value in (
            ("--ray-address", address),
            ("--workers", workers),
            ("--cpus-per-worker", cpus),
            ("--gpus-per-worker", gpus or None),
        )
        if value is not None
    ]
    if given:
        raise BadInput(f"{', '.join(given)} need --executor ray")
    return None
