"""The loop every job command shares around its executor: a manifest open for appending,
progress on stderr, each record reported as it lands, Ctrl-C turned into a resumable exit, and
the manifest closed and temp files swept whatever happens."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import typer

from chatterbox_cli.cli.output import Output
from chatterbox_cli.runtime.errors import EXIT_FAILURE, EXIT_INTERRUPTED


@dataclass
class Tally:
    done: int = 0
    failed: int = 0

    @property
    def ok(self) -> int:
        return self.done - self.failed

    def exit_if_failed(self) -> None:
        if self.failed:
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
) -> Iterator[tuple[object, Callable[[dict], None], Tally]]:
    """Yield (manifest, on_record, tally); `where` (a format of the record's fields) names a
    failed record in its warning."""
    from chatterbox_cli.sinks import manifest as manifests

    tally = Tally()
    manifest = manifests.Manifest(outdir)
    try:
        with out.batch_progress(total, verb) as update:

            def on_record(rec: dict) -> None:
                tally.done += 1
                tally.failed += rec["status"] != "ok"
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
