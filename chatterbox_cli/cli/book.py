"""`chatterbox book`: an EPUB, a Markdown manuscript or a text file to a chaptered audiobook.

Groups are synthesized as `batch` does them (into a work folder beside the output, journaled),
so a rerun after Ctrl-C, kill -9 or a reboot reuses every finished group and assembly starts
only when all are done (`jobs/book.py`)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from chatterbox_cli.cli.batch import executor_options
from chatterbox_cli.cli.errors import mapped_errors
from chatterbox_cli.cli.jobrun import ItemRun, run_items
from chatterbox_cli.cli.model import check_voices, checked_language, family_options
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
from chatterbox_cli.runtime.errors import EXIT_FAILURE, BadInput
from chatterbox_cli.synth.pipeline import DEFAULT_PAUSE_S


@mapped_errors
def book(
    path: Annotated[Path, typer.Argument(help="An .epub, a Markdown (.md) or a text file.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="The M4B to write (default BOOK.m4b).")
    ] = None,
    per_chapter: Annotated[
        Path | None, typer.Option("--per-chapter", help="Also (or only) one file per chapter.")
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", help="--per-chapter files: wav|flac|mp3|opus|ogg.")
    ] = "mp3",
    subtype: SubtypeOpt = "PCM_16",
    list_chapters: Annotated[
        bool, typer.Option("--list-chapters", help="Print the chapters and exit.")
    ] = False,
    chapters: Annotated[
        str | None, typer.Option("--chapters", help="Only these chapters, e.g. 3-7,9.")
    ] = None,
    front_matter: Annotated[
        bool,
        typer.Option("--include-front-matter", help="Read cover, title, copyright pages too."),
    ] = False,
    lexicon: LexiconOpt = None,
    work_dir: Annotated[
        Path | None, typer.Option("--work-dir", help="Finished groups (default OUTPUT.work).")
    ] = None,
    bitrate: Annotated[int, typer.Option("--bitrate", help="M4B AAC kbit/s (32-256).")] = 64,
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
    batch_size: BatchSizeOpt = None,
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
    max_new_tokens: MaxNewTokensOpt = None,
    lufs: LufsOpt = DEFAULTS["lufs"],
    pause: PauseOpt = DEFAULT_PAUSE_S,
    overwrite: OverwriteOpt = False,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Read a book aloud into a chaptered M4B (and/or a file per chapter); re-run to resume."""
    from chatterbox_cli.models.packs import pack_model
    from chatterbox_cli.text.book import pick_chapters, read_book

    t0 = time.perf_counter()
    out = Output(quiet=quiet, json=json_out)
    model = pack_model(model, pack)
    family, sampling, steps = family_options(
        model, cfm_steps, temperature=temperature, top_p=top_p, top_k=top_k, min_p=min_p,
        repetition_penalty=repetition_penalty, cfg_weight=cfg_weight, exaggeration=exaggeration,
    )  # fmt: skip
    read = read_book(path, front_matter)
    picked = pick_chapters(chapters, len(read.chapters))
    if list_chapters:
        _list(out, read, picked)
        return
    from chatterbox_cli.jobs import book as job
    from chatterbox_cli.sinks.files import AudioFormat, check_writable
    from chatterbox_cli.synth.pipeline import RenderOptions
    from chatterbox_cli.text.markup import Lexicon

    opts = RenderOptions(
        sampling=sampling, max_new_tokens=max_new_tokens, lufs=lufs, pause_s=pause,
        cfm_steps=steps,
    ).check()  # fmt: skip
    chapter_fmt = AudioFormat(fmt, subtype).check()
    if not 32 <= bitrate <= 256:
        raise BadInput("--bitrate must be between 32 and 256 (kbit/s)")
    ray_opts = executor_options(
        executor, ray_address, workers, cpus_per_worker, gpus_per_worker, verbose
    )
    if output is None and per_chapter is None:
        output = path.with_suffix(".m4b")
    if output is not None:
        if output.suffix.lower() not in (".m4b", ".m4a", ".mp4"):
            raise BadInput(f"-o {output}: write an .m4b (or use --per-chapter DIR)")
        check_writable(output, overwrite)
    work = work_dir or (
        output.with_name(output.name + ".work") if output else per_chapter / ".work"
    )
    code = _language(out, family, language, read.language)
    words = Lexicon.load(lexicon) if lexicon else None
    identity = {
        "model": model, "model_dir": str(model_dir or ""), "voice": voice, "seed": seed,
        "sampling": repr(sampling), "cfm_steps": steps, "lufs": lufs, "cap": max_new_tokens,
        "quantize": quantize, "dtype": dtype,
    }  # fmt: skip
    planned = job.plan(read, picked, identity, code, words, pause)
    todo = job.items(planned, path.name, code, seed)
    check_voices({item.voice for item in todo}, model)
    status = _chapter_status(planned)
    spec = ItemRun(
        outdir=work, fmt=AudioFormat(job.WORK_FORMAT, "PCM_16"), opts=opts, family=family,
        model=model, model_dir=model_dir, device=device,
        runtime=(threads, quantize, dtype, overlap, batch_s3gen), voice=voice, seed=seed,
        batch_size=batch_size, fail_fast=False, retries=retries, ray_opts=ray_opts,
        where="chapter {line}", noun="group(s)", rows="group(s)", status=status,
    )  # fmt: skip
    tally, reused = run_items(out, todo, spec, json_out=False)
    if tally is not None and tally.failed:
        out.error(f"{tally.failed} group(s) failed; run the same command again to retry them")
        raise typer.Exit(EXIT_FAILURE)
    if per_chapter is not None:
        per_chapter.mkdir(parents=True, exist_ok=True)
    with out.progress(len(planned), "Assembling chapters") as advance:
        reports = job.assemble(
            read, planned, work, output, per_chapter, chapter_fmt, bitrate * 1000, seed, advance
        )
    _report(out, read, reports, output, per_chapter, len(todo), reused, time.perf_counter() - t0)


def _language(out: Output, family, given: str | None, from_book: str | None) -> str:
    """--language, else the book's (when the model speaks it), else the model's first."""
    if given:
        return checked_language(family, given, out).code
    if from_book and from_book in family.languages:
        return checked_language(family, from_book, out).code
    if from_book and from_book != family.languages[0]:
        raise BadInput(
            f"the book is in {from_book!r}, which {family.name} does not speak; pass "
            f"--model multilingual, or --language {family.languages[0]} to read it anyway"
        )
    return checked_language(family, family.languages[0], out).code


def _chapter_status(planned):
    """Progress words: chapters whose every group is done."""
    left = {c.number: {p.name for p in c.pieces if p.name} for c in planned}

    def status(rec: dict) -> str:
        for names in left.values():
            names.discard(rec.get("id"))
        done = sum(not names for names in left.values())
        return f"chapters {done}/{len(left)}"

    return status


def _list(out: Output, book, picked: list[int]) -> None:
    rows = [
        {
            "number": i + 1,
            "title": book.chapters[i].title,
            "words": book.chapters[i].words,
            "estimated_s": round(book.chapters[i].estimated_s, 1),
        }
        for i in picked
    ]
    if out.json:
        out.data(rows)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{book.title}" + (f" — {book.author}" if book.author else ""))
    for col in ("#", "title", "words", "est. audio"):
        table.add_column(col, justify="left" if col == "title" else "right")
    for r in rows:
        table.add_row(str(r["number"]), r["title"], str(r["words"]), _clock(r["estimated_s"]))
    Console(highlight=False).print(table)  # the listing is the data: stdout


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}"


def _report(out: Output, book, reports, output, per_chapter, groups, reused, wall) -> None:
    audio = sum(r.duration_s for r in reports)
    chars = sum(len(book.chapters[r.number - 1].text) for r in reports)
    flagged = [f | {"chapter": r.number} for r in reports for f in r.flagged]
    summary = {
        "output": str(output) if output else None,
        "per_chapter": str(per_chapter) if per_chapter else None,
        "title": book.title,
        "author": book.author,
        "chapters": [r.to_dict() for r in reports],
        "groups": groups,
        "reused_groups": reused,
        "synthesized_groups": groups - reused,
        "flagged": flagged,
        "audio_s": round(audio, 3),
        "wall_s": round(wall, 3),
        "chars_per_s": round(chars / wall, 2) if wall else None,
    }
    if out.json:
        out.data(summary)
    for f in flagged:
        out.warn(f"chapter {f['chapter']} at {_clock(f['at_s'])}: {', '.join(f['flags'])}")
    where = output or per_chapter
    out.info(
        f"{len(reports)} chapter(s), {_clock(audio)} of audio -> {where} "
        f"({groups - reused} group(s) synthesized, {reused} reused, {wall:.0f} s)"
    )
