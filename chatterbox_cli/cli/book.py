"""`chatterbox book`: an EPUB, a Markdown manuscript or a text file to a chaptered audiobook.

Groups are synthesized as `batch` does them (into a work folder beside the output, journaled),
so a rerun after Ctrl-C, kill -9 or a reboot reuses every finished group and assembly starts
only when all are done (`jobs/book.py`)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from chatterbox_cli.cli.errors import mapped_errors
from chatterbox_cli.cli.groups import grouped
from chatterbox_cli.cli.jobrun import ItemRun, run_items
from chatterbox_cli.cli.loading import check_voices, note_language
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
from chatterbox_cli.runtime.errors import EXIT_FAILURE, BadInput
from chatterbox_cli.sinks.subtitles import check_subtitles


@mapped_errors
@grouped
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
    work_dir: Annotated[
        Path | None, typer.Option("--work-dir", help="Finished groups (default OUTPUT.work).")
    ] = None,
    bitrate: Annotated[int, typer.Option("--bitrate", help="M4B AAC kbit/s (32-256).")] = 64,
    read_along: Annotated[
        Path | None,
        typer.Option(
            "--read-along", help="Also (or only) an EPUB 3 that highlights each sentence as read."
        ),
    ] = None,
    speech: SpeechFlags = SpeechFlags(),
    model: ModelFlags = ModelFlags(),
    job_flags: JobFlags = JobFlags(),
    overwrite: OverwriteOpt = False,
    show_text: ShowTextOpt = False,
    subtitles: SubtitlesFormatOpt = None,
    subtitle_words: SubtitleWordsOpt = False,
    fail_on_flag: FailOnFlagOpt = False,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Read a book aloud into a chaptered M4B (and/or a file per chapter); re-run to resume."""
    from chatterbox_cli.models import get
    from chatterbox_cli.text.book import pick_chapters, read_book

    t0 = time.perf_counter()
    out = Output(quiet=quiet, json=json_out)
    name = model.name
    family = get(name)
    request = speech.request()
    opts = request.options(family, flag)
    read = read_book(path, front_matter)
    picked = pick_chapters(chapters, len(read.chapters))
    if list_chapters:
        _list(out, read, picked)
        return
    from chatterbox_cli.jobs import book as job
    from chatterbox_cli.jobs.readalong import ReadAlong

    if show_text:
        code = _language(out, family, request.language, read.language)
        planned = job.plan(read, picked, {}, code, request.lexicon, 0, request.normalize)
        _show(out, read, code, planned)
        return
    from chatterbox_cli.sinks.files import AudioFormat, check_writable

    chapter_fmt = AudioFormat(fmt, subtype).check(flag)
    sub_fmt = check_subtitles(subtitles, subtitle_words, bool(model.asr), flag)
    if not 32 <= bitrate <= 256:
        raise BadInput("--bitrate must be between 32 and 256 (kbit/s)")
    ray_opts = job_flags.ray()
    if output is None and per_chapter is None and read_along is None:
        output = path.with_suffix(".m4b")
    if output is not None:
        if output.suffix.lower() not in (".m4b", ".m4a", ".mp4"):
            raise BadInput(f"-o {output}: write an .m4b (or use --per-chapter DIR)")
        check_writable(output, overwrite, flag)
    if read_along is not None:
        if read_along.suffix.lower() != ".epub":
            raise BadInput(f"--read-along {read_along}: name an .epub to write")
        check_writable(read_along, overwrite, flag)
    shared = output or (path.with_suffix(".m4b") if per_chapter is None else None)
    work = work_dir or (
        shared.with_name(shared.name + ".work") if shared else per_chapter / ".work"
    )
    code = _language(out, family, request.language, read.language)
    identity = {
        "model": name, "model_dir": str(model.model_dir or ""), "voice": request.voice,
        "seed": opts.seed, "sampling": repr(opts.sampling), "cfm_steps": opts.cfm_steps,
        "lufs": opts.lufs, "cap": opts.max_new_tokens, "quantize": model.quantize,
        "dtype": model.dtype, **({"speed": opts.speed} if opts.speed != 1 else {}),
    }  # fmt: skip
    planned = job.plan(
        read, picked, identity, code, request.lexicon, opts.pause_s, request.normalize
    )
    todo = job.items(planned, path.name, code, opts.seed)
    check_voices({item.voice for item in todo}, name)
    status = _chapter_status(planned)
    spec = ItemRun(
        outdir=work, fmt=AudioFormat(job.WORK_FORMAT, "PCM_16"), request=request, family=family,
        model=model, job=job_flags, fail_fast=False, ray_opts=ray_opts,
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
            read,
            planned,
            work,
            output,
            per_chapter,
            chapter_fmt,
            bitrate * 1000,
            opts.seed,
            advance,
            job.Subtitles(sub_fmt, code, subtitle_words) if sub_fmt else None,
            ReadAlong(read_along, path, read, code, overwrite) if read_along else None,
        )
    outputs = (output, per_chapter, read_along)
    flagged = _report(out, read, reports, outputs, len(todo), reused, time.perf_counter() - t0)
    if flagged and fail_on_flag:
        raise typer.Exit(EXIT_FAILURE)


def _language(out: Output, family, given: str | None, from_book: str | None) -> str:
    """--language, else the book's (when the model speaks it), else the model's first."""
    if given:
        code = given
    elif from_book and from_book in family.languages:
        code = from_book
    elif from_book and from_book != family.languages[0]:
        raise BadInput(
            f"the book is in {from_book!r}, which {family.name} does not speak; pass "
            f"--model multilingual, or --language {family.languages[0]} to read it anyway"
        )
    else:
        code = family.languages[0]
    lang = family.language(code, flag)
    note_language(lang, out)
    return lang.code


def _chapter_status(planned):
    """Progress words: chapters whose every group is done."""
    left = {c.number: {p.name for p in c.pieces if p.name} for c in planned}

    def status(rec: dict) -> str:
        for names in left.values():
            names.discard(rec.get("id"))
        done = sum(not names for names in left.values())
        return f"chapters {done}/{len(left)}"

    return status


def _show(out: Output, book, code: str, planned) -> None:
    """`--show-text`: each chapter's spoken groups (pauses left out)."""
    from chatterbox_cli.text.segment import TextGroup

    rows = []
    for chapter in planned:
        said = [p for p in chapter.pieces if p.name]
        groups = [TextGroup(k, p.text, 0, voice=p.voice) for k, p in enumerate(said)]
        label = f"chapter {chapter.number}: {chapter.title}"
        rows.append((label, code, book.chapters[chapter.number - 1].text, groups))
    out.spoken(rows)


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


def _report(out: Output, book, reports, outputs: tuple, groups, reused, wall) -> list[dict]:
    output, per_chapter, read_along = outputs
    audio = sum(r.duration_s for r in reports)
    chars = sum(len(book.chapters[r.number - 1].text) for r in reports)
    flagged = [f | {"chapter": r.number} for r in reports for f in r.flagged]
    summary = {
        "output": str(output) if output else None,
        "per_chapter": str(per_chapter) if per_chapter else None,
        "read_along": str(read_along) if read_along else None,
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
        heard = f" (heard {f['transcript']!r}, {f['wer']:.0%} off)" if "transcript" in f else ""
        out.warn(f"chapter {f['chapter']} at {_clock(f['at_s'])}: {', '.join(f['flags'])}{heard}")
    where = ", ".join(str(p) for p in (output, per_chapter, read_along) if p)
    out.info(
        f"{len(reports)} chapter(s), {_clock(audio)} of audio -> {where} "
        f"({groups - reused} group(s) synthesized, {reused} reused, {wall:.0f} s)"
    )
    return flagged
