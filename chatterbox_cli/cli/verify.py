"""`chatterbox verify`: is this audio ours, watermarked, and what the manifest says?"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from chatterbox_cli.cli.errors import mapped_errors
from chatterbox_cli.cli.options import JsonOpt, QuietOpt
from chatterbox_cli.cli.output import Output
from chatterbox_cli.runtime.errors import EXIT_FAILURE, BadInput


@mapped_errors
def verify(
    paths: Annotated[list[Path], typer.Argument(help="Audio files, or batch output directories.")],
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Check watermark, loudness, peak, duration, sample rate and provenance; exit 1 when a
    file lacks the watermark, can't be read, or disagrees with its batch manifest."""
    from chatterbox_cli.sinks import verify as check

    out = Output(quiet=quiet, json=json_out)
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise BadInput(f"no such file or directory: {', '.join(missing)}")
    files, dirs = check.targets(paths)
    if not files and not dirs:
        raise BadInput("no audio files found (.wav .flac .mp3 .opus .ogg .m4b .m4a)")
    marker = check.detector()
    reports = {}
    with out.progress(len(files), f"Verifying {len(files)} file(s)") as advance:
        for f in files:
            reports[str(f)] = check.check_file(f, marker)
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
