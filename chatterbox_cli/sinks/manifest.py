"""A job's record of what it wrote: `OUTDIR/manifest.jsonl`, appended and fsynced after each
file is renamed into place (so a crash loses at most the item in flight), and the per-worker
journals the Ray executor keeps beside it."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from chatterbox_cli.runtime.atomic import TEMP_PREFIX, disk_full, space_error
from chatterbox_cli.runtime.errors import BadInput

MANIFEST = "manifest.jsonl"
JOURNALS = ".journal-chatterbox"
"""Workers of the Ray executor note each finished file here (one file per worker), so a rerun
recovers files whose manifest line was lost with a killed driver."""


def output_path(outdir: Path, name: str, suffix: str) -> Path:
    path = outdir / f"{name}{suffix}"
    if path.resolve().parent != outdir.resolve():
        raise BadInput(f"refusing to write outside {outdir}: {name!r}")
    return path


def read_manifest(outdir: Path) -> dict[str, dict]:
    """Latest record per output file name; torn lines from a killed run are ignored."""
    latest: dict[str, dict] = {}
    path = outdir / MANIFEST
    if not path.is_file():
        return latest
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict) and "output" in rec:
            latest[Path(rec["output"]).name] = rec
    return latest


def clean_temp_files(outdir: Path) -> int:
    removed = 0
    for tmp in outdir.glob(f"{TEMP_PREFIX}*"):
        tmp.unlink(missing_ok=True)
        removed += 1
    return removed


def recover_journals(outdir: Path) -> list[dict]:
    """Records of finished files that workers noted but the manifest lacks (the driver died
    before writing them); the caller appends them. Journals are removed once read."""
    folder = outdir / JOURNALS
    if not folder.is_dir():
        return []
    latest = read_manifest(outdir)
    found: dict[str, dict] = {}
    for journal in sorted(folder.glob("*.jsonl")):
        for line in journal.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if not isinstance(rec, dict) or rec.get("status") != "ok" or "output" not in rec:
                continue
            name = Path(rec["output"]).name
            known = latest.get(name)
            if (outdir / name).is_file() and not (known and known.get("status") == "ok"):
                found[name] = rec
    return list(found.values())


def clear_journals(outdir: Path) -> None:
    folder = outdir / JOURNALS
    if folder.is_dir():
        for journal in folder.glob("*.jsonl"):
            journal.unlink(missing_ok=True)
        folder.rmdir()


class Manifest:
    """Append-only JSONL; each record is flushed and fsynced before the next item starts."""

    def __init__(self, outdir: Path):
        self.path = outdir / MANIFEST
        self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115
        if self._fh.tell() > 0:
            with open(self.path, "rb") as fh:
                fh.seek(-1, os.SEEK_END)
                torn = fh.read(1) != b"\n"
            if torn:  # finish a line torn by a killed run (or a full disk)
                self.append_raw("\n")

    def append_raw(self, text: str) -> None:
        """A torn line (a full disk mid-write) is skipped on reading, finished on reopening."""
        try:
            self._fh.write(text)
            self._fh.flush()
        except OSError as exc:
            cause = space_error(exc)
            if cause is None:
                raise
            raise disk_full(self.path, cause, len(text)) from None

    def append(self, record: dict) -> None:
        self.append_raw(json.dumps(record, ensure_ascii=False) + "\n")
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        """Closed whatever happened: what a full disk left unwritten was reported already."""
        with contextlib.suppress(OSError):
            self._fh.close()


class Journal(Manifest):
    """A worker's own append-only record of the files it finished."""

    def __init__(self, outdir: Path, tag: str):
        folder = outdir / JOURNALS
        folder.mkdir(exist_ok=True)
        self.path = folder / f"{tag}.jsonl"
        self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115
