"""`chatterbox batch`: many texts to many files — validated first, resumable, batched."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from chatterbox_cli.cli.errors import mapped_errors
from chatterbox_cli.cli.groups import grouped
from chatterbox_cli.cli.jobrun import ItemRun, run_items
from chatterbox_cli.cli.loading import note_language
from chatterbox_cli.cli.options import (
    FailOnFlagOpt,
    JobFlags,
    JsonOpt,
    ModelFlags,
    OverwriteOpt,
    QuietOpt,
    ShowTextOpt,
    SpeechFlags,
    SubtitlesFormatOpt,
    SubtitleWordsOpt,
    SubtypeOpt,
    flag,
)
from chatterbox_cli.cli.output import Output
from chatterbox_cli.runtime.errors import BadInput
from chatterbox_cli.sinks.subtitles import check_subtitles


@mapped_errors
@grouped
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
    speech: SpeechFlags = SpeechFlags(),
    model: ModelFlags = ModelFlags(),
    job: JobFlags = JobFlags(),
    fmt: Annotated[str, typer.Option("--format", help="wav|flac|mp3|opus|ogg.")] = "wav",
    subtype: SubtypeOpt = "PCM_16",
    overwrite: OverwriteOpt = False,
    show_text: ShowTextOpt = False,
    subtitles: SubtitlesFormatOpt = None,
    subtitle_words: SubtitleWordsOpt = False,
    fail_on_flag: FailOnFlagOpt = False,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Synthesize one file per row/line into OUTDIR, with a manifest; re-run to resume."""
    from chatterbox_cli.jobs import inputs as batch_inputs
    from chatterbox_cli.models import get
    from chatterbox_cli.sinks.files import AudioFormat

    out = Output(quiet=quiet, json=json_out)
    family = get(model.name)
    request = speech.request()
    request.options(family, flag)
    family.language(request.language, flag)
    audio_fmt = AudioFormat(fmt, subtype).check(flag)
    sub_fmt = check_subtitles(subtitles, subtitle_words, bool(model.asr), flag)
    ray_opts = job.ray()
    stdin = getattr(sys.stdin, "buffer", None)
    items, invalid = batch_inputs.read_inputs(inputs, input_format, unit, stdin)
    items, unplanned = batch_inputs.check_rows(items, family, request)
    items, unmarked = batch_inputs.markup(items, model.name)
    invalid += unplanned + unmarked
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
    if show_text:
        plans = (batch_inputs.row_request(i, request).plan(family) for i in items)
        out.spoken(((i.id or f"{i.source}:{i.line}", p.language.code, i.text, p.groups)
                   for i, p in zip(items, plans, strict=True)))  # fmt: skip
        return
    for code in dict.fromkeys(item.language for item in items):
        note_language(family.language(code), out)
    for warning in batch_inputs.assign_names(items):
        out.warn(warning)
    spec = ItemRun(
        outdir=outdir,
        fmt=audio_fmt,
        request=request,
        family=family,
        model=model,
        job=job,
        fail_fast=fail_fast,
        ray_opts=ray_opts,
        overwrite=overwrite,
        subtitles=sub_fmt,
        subtitle_words=subtitle_words,
    )
    tally, skipped = run_items(out, items, spec, json_out)
    if tally is None:
        return
    out.info(
        f"{tally.ok} written ({tally.flagged} flagged), {tally.failed} failed, {skipped} "
        f"skipped -> {outdir}"
    )
    tally.exit_if_failed(fail_on_flag)
