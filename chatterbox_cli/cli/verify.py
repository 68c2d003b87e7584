"""`chatterbox verify`: is this audio ours, watermarked, and what the manifest says?"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from chatterbox_cli.cli.errors import mapped_errors
from chatterbox_cli.cli.options import AsrMaxWerOpt, AsrOpt, JsonOpt, QuietOpt, flag
from chatterbox_cli.cli.output import Output
from chatterbox_cli.post.asr import DEFAULT_MAX_WER
from chatterbox_cli.runtime.errors import EXIT_FAILURE, BadInput


@mapped_errors
def verify(
    paths: Annotated[list[Path], typer.Argument(help="Audio files, or batch output directories.")],
    text: Annotated[
        str | None, typer.Option("--text", help="The script: with --asr, what the audio says.")
    ] = None,
    text_file: Annotated[
        Path | None, typer.Option("--text-file", help="The script, from a UTF-8 file.")
    ] = None,
    language: Annotated[
        str, typer.Option("--language", "-l", help="The script's language code.")
    ] = "en",
    asr: AsrOpt = None,
    asr_max_wer: AsrMaxWerOpt = DEFAULT_MAX_WER,
    subtitles: Annotated[
        Path | None,
        typer.Option(
            "--subtitles",
            help="A subtitle file to check against the audio (default: FILE.srt/.vtt beside it).",
        ),
    ] = None,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Check watermark, loudness, peak, duration, sample rate and provenance; exit 1 when a
    file lacks the watermark, can't be read, or disagrees with its batch manifest. With
    --text/--text-file and --asr, also listen: exit 1 when a file does not say its script."""
    from chatterbox_cli.sinks import verify as check

    out = Output(quiet=quiet, json=json_out)
    script, model = _script(text, text_file, language, asr, asr_max_wer)
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise BadInput(f"no such file or directory: {', '.join(missing)}")
    files, dirs = check.targets(paths)
    if not files and not dirs:
        raise BadInput("no audio files found (.wav .flac .mp3 .opus .ogg .m4b .m4a)")
    if subtitles is not None and (len(files) != 1 or not subtitles.is_file()):
        raise BadInput("--subtitles FILE goes with one audio file, and must exist")
    listener = _listener(model) if model else None
    marker = check.detector()
    reports = {}
    with out.progress(len(files), f"Verifying {len(files)} file(s)") as advance:
        for f in files:
            reports[str(f)] = report = check.check_file(f, marker)
            if listener is not None and not report.error:
                pieces, sr = check.decoded(f)
                heard = listener.hear_all(pieces, sr, script, language)
                report.heard = heard.to_dict()
                out.info(f"{f}: heard {heard.transcript!r} ({heard.unit} error rate "
                         f"{heard.wer:.0%})")  # fmt: skip
                if heard.wer > asr_max_wer:
                    report.problems.append(f"asr-mismatch ({heard.wer:.0%})")
                    report.ok = False
            subs = subtitles or check.beside(f)
            if subs is not None and not report.error:
                check.subtitle_drift(f, subs, report)
                d = report.subtitles
                if "end_drift_s" in d:
                    out.info(f"{subs}: {d['cues']} cue(s), {d['start_drift_s']:+.2f} s from the "
                             f"speech's start, {d['end_drift_s']:+.2f} s from its end")  # fmt: skip
            advance()
    problems = [p for d in dirs for p in check.manifest_problems(d, reports)]
    for report in reports.values():
        if json_out:
            out.data(report.to_dict())
    out.verify_table(list(reports.values()))
    for problem in problems:
        out.warn(problem)
    bad = [r for r in reports.values() if not r.ok]
    if json_out:
        out.data({"files": len(reports), "failed": len(bad), "manifest_problems": problems})
    if bad or problems:
        out.error(f"{len(bad)} of {len(reports)} file(s) failed, {len(problems)} missing")
        raise typer.Exit(EXIT_FAILURE)
    out.info(f"{len(reports)} file(s) verified")


def _script(text, text_file, language, asr, max_wer):
    """(the script, the recognizer's folder), checked before anything loads."""
    from chatterbox_cli.post.asr import check_max_wer, resolve
    from chatterbox_cli.runtime import limits
    from chatterbox_cli.text.languages import LANGUAGES
    from chatterbox_cli.text.segment import decode_bytes

    if text is not None and text_file is not None:
        raise BadInput("give the script with --text or --text-file, not both")
    if text_file is not None:
        if not text_file.is_file():
            raise BadInput(f"--text-file {text_file} does not exist")
        text = decode_bytes(limits.read_file(text_file), str(text_file))
    if (text is None) != (asr is None):
        raise BadInput("listening needs both the script (--text or --text-file) and --asr MODEL")
    if text is None:
        return None, None
    if language not in LANGUAGES:
        raise BadInput(f"--language {language!r}: one of {' '.join(LANGUAGES)}")
    check_max_wer(max_wer, flag)
    return text, resolve(asr, flag)


def _listener(path):
    import ctranslate2

    from chatterbox_cli.post.asr import Listener

    return Listener(path, "cuda" if ctranslate2.get_cuda_device_count() else "cpu")
