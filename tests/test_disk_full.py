"""Full disks (#37): `batch`, `book`, `say`, `convert`, `voice cache` and the server writing onto
a disk with almost no room. As root (CI) the disk is a small tmpfs mounted by the test, with a
filler file to take away when space is "freed"; otherwise (or with CHATTERBOX_TEST_FSIZE=1)
the file-size limit (RLIMIT_FSIZE) stands in for it. Each run ends with one line naming the
file and the space, nothing half-written under a final name, a manifest or journal whose every
line reads back, and the same command, rerun with room, finishes with every row or group done
once."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
from hostile import one_line_error

ROOM = 64 * 1024
"""Free bytes left: two 8-token WAVs (~22 kB each) and their manifest lines fit, a third not."""
CAP = ["--max-new-tokens", "8", "--seed", "1"]


class SmallDisk:
    """A folder with `ROOM` bytes free, and a way to free more."""

    def __init__(self, root: Path):
        self.dir = root / "disk"
        self.dir.mkdir()
        rlimit = os.environ.get("CHATTERBOX_TEST_FSIZE") == "1"  # root can try this path too
        self.mounted = not rlimit and os.geteuid() == 0 and _mount(self.dir)
        self.limit = None if self.mounted else 16 * 1024  # below one WAV: the first write fails
        if self.mounted:
            free = os.statvfs(self.dir).f_bavail * os.statvfs(self.dir).f_frsize
            with open(self.dir / ".filler", "wb") as fh:
                fh.write(b"\0" * (free - ROOM))

    def free_space(self) -> None:
        if self.mounted:
            (self.dir / ".filler").unlink()
        self.limit = None

    def run(self, *args) -> subprocess.CompletedProcess:
        limit = self.limit

        def limited():
            if limit is not None:
                resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

        return subprocess.run(
            [sys.executable, "-m", "chatterbox_cli", *map(str, args)],
            capture_output=True,
            text=True,
            preexec_fn=limited,
            timeout=900,
        )

    def close(self) -> None:
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.dir)], check=False)


def _mount(folder: Path) -> bool:
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)], capture_output=True
    )
    return done.returncode == 0


@pytest.fixture
def disk(tmp_path):
    d = SmallDisk(tmp_path)
    yield d
    d.close()


def no_partial_files(folder: Path) -> None:
    left = [p.name for p in folder.rglob("*") if ".part" in p.name or p.name.startswith(".chatt")]
    assert not left, left


def records(manifest: Path) -> list[dict]:
    """Every complete line of a manifest (a torn last line is allowed, and finished later)."""
    lines = manifest.read_text().splitlines() if manifest.exists() else []
    out = []
    for n, line in enumerate(lines):
        try:
            out.append(json.loads(line))
        except ValueError:
            assert n == len(lines) - 1, f"a torn line inside the manifest: {line!r}"
    return out


def disk_error(done) -> str:
    assert done.returncode != 0, done.stderr
    line = one_line_error(done.stderr)
    assert "no space left" in line or "file-size limit" in line, line
    return line


def test_batch_stops_cleanly_and_the_rerun_finishes_each_row_once(disk, checkpoint, tmp_path):
    rows = tmp_path / "rows.txt"
    rows.write_text("".join(f"Row number {i}.\n" for i in range(6)))
    out = disk.dir / "out"
    args = ["batch", rows, "-d", out, "--model-dir", checkpoint, "--batch-size", "6", *CAP]
    first = disk.run(*args)
    assert ".wav" in disk_error(first)
    no_partial_files(disk.dir)
    done_first = {r["output"] for r in records(out / "manifest.jsonl") if r["status"] == "ok"}
    assert all(Path(o).stat().st_size > 1000 for o in done_first)
    assert len(done_first) < 6 and (len(done_first) >= 1 or not disk.mounted)
    disk.free_space()
    second = disk.run(*args, "--json")
    assert second.returncode == 0, second.stderr
    redone = {json.loads(line)["output"] for line in second.stdout.splitlines()}
    assert not redone & done_first and len(redone | done_first) == 6  # each row once
    ok = [r for r in records(out / "manifest.jsonl") if r["status"] == "ok"]
    assert sorted(r["output"] for r in ok) == sorted(redone | done_first)
    no_partial_files(disk.dir)


def test_book_stops_cleanly_and_the_rerun_reuses_what_was_done(disk, checkpoint, tmp_path):
    from chatterbox_cli.testing.epubs import build_epub

    book = build_epub(tmp_path / "book.epub")
    m4b = disk.dir / "book.m4b"
    args = ["book", book, "-o", m4b, "--model-dir", checkpoint, "--retries", "0", *CAP]
    disk_error(disk.run(*args))
    no_partial_files(disk.dir)
    assert not m4b.exists()
    records(Path(f"{m4b}.work") / "manifest.jsonl")  # every line reads back
    disk.free_space()
    second = disk.run(*args, "--json")
    assert second.returncode == 0, second.stderr
    report = json.loads(second.stdout)
    assert report["reused_groups"] + report["synthesized_groups"] == report["groups"]
    assert m4b.stat().st_size > 0
    no_partial_files(disk.dir)


@pytest.mark.parametrize("command", ["say", "convert", "voice"])
def test_single_outputs_leave_nothing_and_say_why(disk, checkpoint, reference_wav, command):
    target = disk.dir / ("out.pt" if command == "voice" else "out.wav")
    args = {
        "say": ["say", "Hello there.", "-o", target, "--max-new-tokens", "60"],  # ~110 kB
        "convert": ["convert", reference_wav, "-o", target, "--model", "turbo"],
        "voice": ["voice", "cache", reference_wav, "-o", target],
    }[command]
    line = disk_error(disk.run(*args, "--model-dir", checkpoint))
    assert str(target) in line
    assert not target.exists()
    no_partial_files(disk.dir)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to mount a small tmpfs in-process")
def test_the_server_answers_507_on_a_full_disk_and_goes_on(engine, tmp_path, reference_wav):
    import httpx
    from conftest import serving

    disk = SmallDisk(tmp_path)
    try:
        if not disk.mounted:
            pytest.skip("tmpfs could not be mounted")
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("CHATTERBOX_VOICES_DIR", str(disk.dir))
            with serving(engine) as url:
                clip = reference_wav.read_bytes()
                r = httpx.post(
                    f"{url}/v1/voices", files={"file": ("a.wav", clip)}, data={"name": "ann"},
                    timeout=300,
                )  # fmt: skip
                assert r.status_code == 507, r.text
                assert "no space left" in r.json()["error"]["message"]
                assert not (disk.dir / "ann.pt").exists()
                no_partial_files(disk.dir)
                disk.free_space()
                r = httpx.post(
                    f"{url}/v1/voices", files={"file": ("a.wav", clip)}, data={"name": "ann"},
                    timeout=300,
                )  # fmt: skip
                assert r.status_code == 201, r.text
    finally:
        disk.close()
