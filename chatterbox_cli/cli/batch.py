"""`chatterbox batch`: many texts to many files — validated first, resumable, batched."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from chatterbox_cli.cli.errors import mapped_errors
from chatterbox_cli.cli.jobrun import recording
from chatterbox_cli.cli.model import checked_language, checked_source, family_options, load
from chatterbox_cli.cli.options import (
    DEFAULTS,
    BatchS3GenOpt,
    CfgWeightOpt,
    CfmStepsOpt,
    DeviceOpt,
    DtypeOpt,
    ExaggerationOpt,
    JsonOpt,
    LanguageOpt,
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
    RepetitionPenaltyOpt,
    RetriesOpt,
    SeedOpt,
    SubtypeOpt,
    TemperatureOpt,
    ThreadsOpt,
    TopKOpt,
    TopPOpt,
    VoiceOpt,
)
from chatterbox_cli.cli.output import Output
from chatterbox_cli.runtime.errors import EXIT_FAILURE, BadInput, VoiceError
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
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", help="Sentence groups decoded together (auto).")
    ] = None,
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
    executor: Annotated[
        str, typer.Option("--executor", help="local (this process) or ray (a Ray cluster).")
    ] = "local",
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray-address",
            help="Join this Ray cluster (host:port or auto; default $RAY_ADDRESS, else a "
            "fresh local one).",
        ),
    ] = None,
    workers: Annotated[
        int | None, typer.Option("--workers", help="Ray workers, one model each (one per node).")
    ] = None,
    cpus_per_worker: Annotated[
        float | None,
        typer.Option("--cpus-per-worker", help="CPUs per Ray worker (a node's CPUs)."),
    ] = None,
    gpus_per_worker: Annotated[
        float, typer.Option("--gpus-per-worker", help="GPUs per Ray worker (0).")
    ] = 0.0,
    verbose: Annotated[
        bool, typer.Option("--verbose", help="Ray's own logs and progress bars too.")
    ] = False,
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
    from chatterbox_cli.jobs import batch as job
    from chatterbox_cli.jobs import inputs as batch_inputs
    from chatterbox_cli.models import voices
    from chatterbox_cli.runtime.device import Runtime
    from chatterbox_cli.sinks import manifest as manifests
    from chatterbox_cli.sinks.files import AudioFormat
    from chatterbox_cli.synth.batched import default_batch_size
    from chatterbox_cli.synth.pipeline import RenderOptions

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
    invalid += unused + unspoken
    if invalid:
        for row in invalid:
            out.console.print(f"[red]invalid[/] {row}")
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
    if outdir.exists() and not outdir.is_dir():
        raise BadInput(f"--outdir {outdir} is not a directory")
    outdir.mkdir(parents=True, exist_ok=True)
    manifests.clean_temp_files(outdir)
    recovered = manifests.recover_journals(outdir)
    if recovered:
        manifest = manifests.Manifest(outdir)
        for rec in recovered:
            manifest.append(rec)
        manifest.close()
        out.info(f"recovered {len(recovered)} finished item(s) from worker journals")
    manifests.clear_journals(outdir)
    done = manifests.read_manifest(outdir)
    todo = []
    for item in items:
        path = manifests.output_path(outdir, item.name, audio_fmt.suffix)
        rec = done.get(path.name)
        if not overwrite and path.is_file() and rec and rec.get("status") == "ok":
            continue
        todo.append(item)
    skipped = len(items) - len(todo)
    if skipped:
        out.info(f"resuming: {skipped} of {len(items)} item(s) already done in {outdir}")
    if not todo:
        out.info("nothing to do")
        return
    voice_spec = voices.resolve(voice, model) if voice else None
    requested = device
    source, device, runtime = checked_source(
        model, model_dir, device, threads, quantize, dtype, overlap=overlap, batch_s3gen=batch_s3gen
    )
    voiceless = [item for item in todo if not item.voice] if voice is None else []
    if voiceless and source.has_builtin_voice is False:
        raise VoiceError(
            f"{model_dir} has no built-in voice (conds.pt) and {len(voiceless)} row(s) name no "
            "voice; pass --voice REF.wav or a cached voice name, or give those rows a voice"
        )
    engine = None if ray_opts else load(out, source, device, runtime)
    cfg = job.BatchConfig(
        outdir=outdir,
        fmt=audio_fmt,
        opts=opts,
        voice=voice,
        voice_spec=voice_spec,
        seed=seed,
        batch_size=batch_size or default_batch_size(family),
        fail_fast=fail_fast,
        retries=retries,
    )
    try:
        run = recording(out, outdir, len(todo), json_out, "{source}:{line}")
        with run as (manifest, on_record, tally):
            if ray_opts:
                from chatterbox_cli.jobs import ray_executor

                raw = Runtime(threads, quantize, dtype, False, overlap, batch_s3gen)
                ray_executor.run(todo, cfg, source, requested, raw, manifest, on_record, ray_opts)
                manifests.clear_journals(outdir)
            else:
                job.run_jobs(engine, todo, cfg, manifest, on_record)
    except job.StopBatch as exc:
        out.error(f"stopped at the first failure (--fail-fast): {exc}")
        raise typer.Exit(EXIT_FAILURE) from None
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
