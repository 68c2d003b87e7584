"""What every job command shares around its executor: resume from a directory's manifest (and
Ray workers' journals), load once, run locally or on Ray; the loop around it keeps a manifest
open for appending, shows progress on stderr, reports each record as it lands, turns Ctrl-C
into a resumable exit, and closes the manifest and sweeps temp files whatever happens."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from chatterbox_cli.cli.loading import load
from chatterbox_cli.cli.output import Output
from chatterbox_cli.runtime.errors import EXIT_FAILURE, EXIT_INTERRUPTED, BadInput, VoiceError


@dataclass
class Tally:
    done: int = 0
    failed: int = 0
    flagged: int = 0
    """Written, but with a group the guard (or listening) still flagged after its retries."""

    @property
    def ok(self) -> int:
        return self.done - self.failed

    def exit_if_failed(self, fail_on_flag: bool = False) -> None:
        if self.failed or (fail_on_flag and self.flagged):
            raise typer.Exit(EXIT_FAILURE)


@contextlib.contextmanager
def recording(
    out: Output,
    outdir: Path,
    total: int,
    json_out: bool,
    where: str,
    noun: str = "items",
    verb: str = "Synthesizing",
    status: Callable[[dict], str] | None = None,
) -> Iterator[tuple[object, Callable[[dict], None], Tally]]:
    """Yield (manifest, on_record, tally); `where` (a format of the record's fields) names a
    failed record in its warning."""
    from chatterbox_cli.sinks import manifest as manifests

    tally = Tally()
    manifest = manifests.Manifest(outdir)
    try:
        with out.batch_progress(total, verb, status) as update:

            def on_record(rec: dict) -> None:
                tally.done += 1
                tally.failed += rec["status"] != "ok"
                tally.flagged += bool(rec.get("flags"))
                if json_out:
                    out.data(rec)
                if rec["status"] != "ok":
                    out.warn(f"{where.format(**rec)} failed: {rec['error']}")
                update(rec)

            yield manifest, on_record, tally
    except KeyboardInterrupt:
        out.error(f"interrupted; finished {noun} are kept — run the same command again to resume")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    finally:
        manifest.close()
        manifests.clean_temp_files(outdir)


@dataclass
class ItemRun:
    """The checked flags of a batch-like command: where, how and with what `run_items` runs."""

    outdir: Path
    fmt: Any
    request: Any
    """The run's `SpeechRequest` (every row's starts from it)."""
    family: Any
    model: Any
    """`options.ModelFlags`: which model, where, how."""
    job: Any
    """`options.JobFlags`: batches, and locally or on Ray."""
    fail_fast: bool
    ray_opts: Any
    overwrite: bool = False
    where: str = "{source}:{line}"
    noun: str = "item(s)"
    rows: str = "row(s)"
    """What the input's entries are called in an error (a batch's rows, a book's groups)."""
    status: Callable[[dict], str] | None = None
    subtitles: str | None = None
    """"srt" or "vtt": a subtitle file beside each output."""
    subtitle_words: bool = False


def resume(out: Output, items: list, spec: ItemRun) -> list:
    """The items still to do: not those whose file is there and whose latest record is ok
    (after folding in what Ray workers journaled before a crash)."""
    from chatterbox_cli.sinks import manifest as manifests

    outdir = spec.outdir
    if outdir.exists() and not outdir.is_dir():
        raise BadInput(f"{outdir} is not a directory")
    outdir.mkdir(parents=True, exist_ok=True)
    manifests.clean_temp_files(outdir)
    recovered = manifests.recover_journals(outdir)
    if recovered:
        manifest = manifests.Manifest(outdir)
        for rec in recovered:
            manifest.append(rec)
        manifest.close()
        out.info(f"recovered {len(recovered)} finished {spec.noun} from worker journals")
    manifests.clear_journals(outdir)
    done = manifests.read_manifest(outdir)
    todo = []
    for item in items:
        path = manifests.output_path(outdir, item.name, spec.fmt.suffix)
        rec = done.get(path.name)
        if not spec.overwrite and path.is_file() and rec and rec.get("status") == "ok":
            continue
        todo.append(item)
    return todo


def run_items(out: Output, items: list, spec: ItemRun, json_out: bool) -> tuple[Tally | None, int]:
    """Synthesize what `resume` leaves of `items` into `spec.outdir`: (tally, skipped); the
    tally is None when nothing was left to do."""
    from chatterbox_cli.jobs import batch as job
    from chatterbox_cli.models import voices
    from chatterbox_cli.sinks import manifest as manifests
    from chatterbox_cli.synth.batched import default_batch_size

    todo = resume(out, items, spec)
    skipped = len(items) - len(todo)
    if skipped:
        out.info(f"resuming: {skipped} of {len(items)} {spec.noun} already done in {spec.outdir}")
    if not todo:
        out.info("nothing to do")
        return None, skipped
    request, model = spec.request, spec.model
    voice_spec = voices.resolve(request.voice, model.name) if request.voice else None
    source, device, runtime = model.checked(batch_s3gen=spec.job.batch_s3gen)
    asr = model.recognizer()
    voiceless = [item for item in todo if not item.voice] if request.voice is None else []
    if voiceless and source.has_builtin_voice is False:
        raise VoiceError(
            f"{model.model_dir} has no built-in voice (conds.pt) and {len(voiceless)} "
            f"{spec.rows} name no voice; pass --voice REF.wav or a cached voice name, "
            f"or give those {spec.rows} a voice"
        )
    engine = None if spec.ray_opts else load(out, source, device, runtime)
    cfg = job.BatchConfig(
        outdir=spec.outdir,
        fmt=spec.fmt,
        request=request,
        voice_spec=voice_spec,
        batch_size=spec.job.batch_size or default_batch_size(spec.family),
        fail_fast=spec.fail_fast,
        asr=str(asr) if asr else None,
        subtitles=spec.subtitles,
        subtitle_words=spec.subtitle_words,
    )
    run = recording(
        out, spec.outdir, len(todo), json_out, spec.where, spec.noun, status=spec.status
    )
    try:
        with run as (manifest, on_record, tally):
            if spec.ray_opts:
                from chatterbox_cli.jobs import ray_executor

                raw = model.runtime(batch_s3gen=spec.job.batch_s3gen)
                ray_executor.run(
                    todo, cfg, source, model.device, raw, manifest, on_record, spec.ray_opts
                )
                manifests.clear_journals(spec.outdir)
            else:
                job.run_jobs(engine, todo, cfg, manifest, on_record)
    except job.StopBatch as exc:
        out.error(f"stopped at the first failure (--fail-fast): {exc}")
        raise typer.Exit(EXIT_FAILURE) from None
    return tally, skipped
