"""`chatterbox voice`: make and list cached voices (upstream conditionals saved as `.pt`)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from chatterbox_cli.cli.errors import mapped_errors
from chatterbox_cli.cli.loading import load
from chatterbox_cli.cli.options import (
    DeviceOpt,
    JsonOpt,
    ModelDirOpt,
    ModelOpt,
    OverwriteOpt,
    PackOpt,
    QuietOpt,
    flag,
)
from chatterbox_cli.cli.output import Output
from chatterbox_cli.runtime.errors import BadInput
from chatterbox_cli.text.segment import slug

app = typer.Typer(help="Cache and list voices.", no_args_is_help=True)


def cache_target(reference: Path, output: Path | None, name: str | None) -> Path:
    from chatterbox_cli.models.voices import cached_path

    if output is not None and name is not None:
        raise BadInput("give either -o OUT.pt or --name NAME, not both")
    if output is not None:
        if output.suffix.lower() != ".pt":
            raise BadInput(f"{output}: a cached voice is a .pt file; end -o with .pt")
        return output
    return cached_path(name if name is not None else slug(reference.stem))


@app.command("cache")
@mapped_errors
def cache(
    reference: Annotated[Path, typer.Argument(help="Reference clip: 5-10 s, one clean speaker.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Where to write the .pt file.")
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", "-n", help="Save as NAME.pt in the voices dir.")
    ] = None,
    model: ModelOpt = "turbo",
    pack: PackOpt = None,
    model_dir: ModelDirOpt = None,
    device: DeviceOpt = "auto",
    overwrite: OverwriteOpt = False,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Prepare a voice once from a reference clip and save it for instant reuse with --voice."""
    from chatterbox_cli.models.packs import pack_model

    model = pack_model(model, pack)
    from chatterbox_cli.models.voices import (
        USED_CLIP_S,
        USED_REFERENCE_S,
        VoiceMeta,
        inspect_reference,
        make_voice,
        now_iso,
        sha256,
    )
    from chatterbox_cli.synth.loader import check_source

    out = Output(quiet=quiet, json=json_out)
    info = inspect_reference(reference)
    target = cache_target(reference, output, name)
    if target.exists() and not overwrite:
        raise BadInput(f"{target} already exists; pass --overwrite to replace it")
    if info.duration_s > USED_CLIP_S:
        out.warn(
            f"{reference} is {info.duration_s:.0f} s; only its first {USED_CLIP_S:.0f} s are "
            "read (5-10 s of one clean speaker is best)"
        )
    elif info.duration_s > USED_REFERENCE_S:
        out.warn(
            f"{reference} is {info.duration_s:.1f} s; only the first 10 s (15 s for T3) are used"
        )
    source, device, _ = check_source(model, model_dir, device, spell=flag)
    engine = load(out, source, device)
    t0 = time.perf_counter()
    meta = VoiceMeta(
        name=target.stem,
        model=source.family.name,
        source_file=reference.name,
        source_sha256=sha256(reference),
        duration_s=round(info.duration_s, 3),
        created=now_iso(),
    )
    with out.status(f"Preparing voice from {reference}…"):
        make_voice(engine, reference, target, meta)
    prepare_s = time.perf_counter() - t0
    record = {"path": str(target), "prepare_s": round(prepare_s, 3), **meta.__dict__}
    if json_out:
        out.data(record)
    out.info(f"saved voice {meta.name} to {target} ({prepare_s:.1f} s); use --voice {meta.name}")


@app.command("list")
@mapped_errors
def list_(
    directory: Annotated[
        Path | None, typer.Option("--dir", help="Voices directory (env CHATTERBOX_VOICES_DIR).")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Show cached voices: name, model, reference duration, size."""
    from dataclasses import asdict

    from rich.table import Table

    from chatterbox_cli.models.voices import list_voices, voices_dir

    out = Output(json=json_out)
    entries = list_voices(directory)
    if json_out:
        out.data([asdict(e) for e in entries])
        return
    if not entries:
        where = directory or voices_dir()
        out.info(f"no cached voices in {where}; make one with `chatterbox voice cache REF.wav`")
        return
    table = Table(show_edge=False)
    for col in ("name", "model", "duration s", "size KB", "created", "path"):
        table.add_column(col)
    for e in entries:
        duration = "-" if e.duration_s is None else f"{e.duration_s:.1f}"
        table.add_row(
            e.name, e.model, duration, f"{e.size_bytes / 1024:.0f}", e.created or "-", e.path
        )
    out.console.print(table)
