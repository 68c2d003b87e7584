"""Formats (WAV, FLAC, MP3, Ogg/Opus), provenance inside the files, and `chatterbox verify`."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
from conftest import plain_mode

from chatterbox_cli.sinks import provenance
from chatterbox_cli.testing.checkpoints import reference_clip

TEXT = "Formats should keep the watermark and say what made them."
FAST = ("--max-new-tokens", "40", "--seed", "4")


@pytest.fixture(scope="module")
def made(tmp_path_factory, checkpoint):
    """One `say` per format, run in-process like the other CLI tests."""
    from typer.testing import CliRunner

    from chatterbox_cli.cli import app

    folder = tmp_path_factory.mktemp("formats")
    runner = CliRunner()
    results = {}
    for suffix in ("wav", "flac", "mp3", "opus"):
        path = folder / f"out.{suffix}"
        r = runner.invoke(
            app, ["say", TEXT, "-o", str(path), "--model-dir", str(checkpoint), *FAST, "--json"]
        )
        assert r.exit_code == 0, r.output
        results[suffix] = (path, json.loads(r.stdout))
    return results


@pytest.mark.parametrize("suffix", ["wav", "flac", "mp3", "opus"])
def test_each_format_is_watermarked_and_records_what_made_it(cli, made, suffix):
    path, report = made[suffix]
    assert path.stat().st_mode & 0o777 == plain_mode(path.parent)  # not mkstemp's 0600
    info = sf.info(str(path))
    assert info.samplerate == 24000 and info.frames > 0
    assert info.format == {"wav": "WAV", "flac": "FLAC", "mp3": "MP3", "opus": "OGG"}[suffix]
    inside = provenance.read(path)
    assert inside == report["provenance"]
    assert inside["model"] == "turbo" and inside["seed"] == 4
    assert inside["checkpoint"].startswith("sha256:") and inside["voice"].startswith("builtin:")
    assert inside["text_sha256"] == provenance.hashlib.sha256(TEXT.encode()).hexdigest()[:16]
    assert set(inside) >= {"chatterbox-cli", "chatterbox-tts", "torch", "sampling", "flags"}
    r = cli("verify", path, "--json")
    assert r.exit_code == 0, r.output
    checked = json.loads(r.stdout.splitlines()[0])
    assert checked["ok"] and checked["watermark"] >= 0.5
    assert checked["provenance"] == inside


def test_verify_fails_truncated_files_and_says_why(made, tmp_path):
    """Cut copies of each format: the decoders read them without complaint, verify must not.
    A subprocess, so that what libraries print on file descriptor 2 would show."""
    cuts = []
    for suffix, (path, _) in made.items():
        data = path.read_bytes()
        for n, size in enumerate((3000, len(data) // 2, len(data) - 3)):
            cut = tmp_path / f"cut{n}.{suffix}"
            cut.write_bytes(data[:size])
            cuts.append(cut)
    r = subprocess.run(
        [sys.executable, "-m", "chatterbox_cli", "verify", "--json", *map(str, cuts)],
        capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert r.returncode == 1, r.stderr
    *reports, summary = [json.loads(line) for line in r.stdout.splitlines()]
    assert summary["failed"] == len(cuts) == len(reports)
    for rep in reports:
        assert not rep["ok"] and re.match(r"(truncated|unreadable)", rep["error"]), rep
    first = next(rep for rep in reports if rep["path"].endswith("cut0.wav"))
    frames = sf.info(str(made["wav"][0])).frames
    said = re.fullmatch(
        r"truncated: header says ([\d,]+) frames, file holds ([\d,]+)", first["error"]
    )
    assert said, first
    promised, held = (int(x.replace(",", "")) for x in said.groups())
    assert promised == frames and 0 < held < 1500  # 3,000 bytes of 16-bit samples at most
    assert "Traceback" not in r.stderr and "Warning" not in r.stderr and "Xing" not in r.stderr


def test_streams_stay_wav_and_say_so(cli, checkpoint):
    r = cli("say", TEXT, "-o", "-", "--format", "mp3", "--model-dir", checkpoint)
    assert r.exit_code == 2 and "-o FILE.mp3" in r.stderr


def test_verify_flags_unmarked_damaged_and_missing_files(cli, tmp_path):
    clean = tmp_path / "clean.wav"
    sf.write(clean, reference_clip(3.0, seed=2), 24000)  # speech-like, never marked
    damaged = tmp_path / "damaged.wav"
    damaged.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    r = cli("verify", clean, damaged, "--json")
    assert r.exit_code == 1
    by_path = {d["path"]: d for d in map(json.loads, r.stdout.splitlines()[:-1])}
    assert by_path[str(clean)]["problems"] == ["no watermark"]
    assert by_path[str(clean)]["provenance"] is None
    assert by_path[str(damaged)]["error"].startswith("unreadable")
    assert "Traceback" not in r.output
    missing = cli("verify", tmp_path / "nope.wav")
    assert missing.exit_code == 2 and "no such file" in missing.stderr


def test_verify_a_batch_directory_against_its_manifest(cli, checkpoint, tmp_path):
    src = tmp_path / "lines.txt"
    src.write_text("First line to check.\nSecond line to check.\n")
    outdir = tmp_path / "out"
    r = cli("batch", src, "-d", outdir, "--model-dir", checkpoint, "--format", "flac", *FAST)
    assert r.exit_code == 0, r.output
    assert "Synthesizing 2/2 · " in r.stderr  # a log (not a terminal) gets a line per row
    recs = [json.loads(x) for x in (outdir / "manifest.jsonl").read_text().splitlines()]
    assert all(provenance.read(rec["output"]) == rec["provenance"] for rec in recs)
    assert cli("verify", outdir).exit_code == 0
    first, second = (rec["output"] for rec in recs)
    sf.write(first, np.zeros(24000, dtype=np.float32), 24000, format="FLAC")
    (tmp_path / "out" / second.split("/")[-1]).unlink()
    r = cli("verify", outdir)
    assert r.exit_code == 1
    assert "in the manifest as ok, but the file is missing" in r.stderr
    assert "no watermark" in r.stderr


def test_shell_completion_is_available():
    import subprocess
    import sys
    from pathlib import Path

    exe = Path(sys.executable).parent / "chatterbox"
    # Typer finds the shell from the parent process (sh under `make`) unless told to take it
    # from the option, with its own switch for tests
    env = {**os.environ, "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"}
    r = subprocess.run([exe, "--show-completion", "bash"], capture_output=True, text=True, env=env)
    assert r.returncode == 0 and "_chatterbox_completion" in r.stdout
