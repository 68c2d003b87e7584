"""`chatterbox book` on the random Turbo checkpoint: an EPUB to a chaptered, tagged, watermarked
M4B (read back with mutagen, not FFmpeg) and per-chapter files; kill -9 mid-book then a rerun
that reuses every finished group and makes the same audio; a changed chapter redoing only its
own groups; markup and lexicon in a Markdown book."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import numpy as np
import soundfile as sf

from chatterbox_cli.testing.epubs import TITLES, build_epub, cover_jpeg

CAP = ["--max-new-tokens", "10", "--device", "cpu", "--seed", "11"]


def report_of(result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def decoded(path) -> np.ndarray:
    from chatterbox_cli.sinks.m4b import decode

    pieces, _sr, _tags = decode(path)
    return np.concatenate(list(pieces))


def test_epub_to_m4b_and_chapter_files(cli, checkpoint, tmp_path, detector):
    import mutagen.mp4

    from chatterbox_cli.sinks.verify import check_file

    epub = build_epub(tmp_path / "book.epub")
    out = tmp_path / "book.m4b"
    chapters = tmp_path / "chapters"
    result = cli(
        "book", epub, "-o", out, "--per-chapter", chapters, "--format", "flac",
        "--model-dir", checkpoint, "--json", *CAP,
    )  # fmt: skip
    report = report_of(result)
    assert [c["title"] for c in report["chapters"]] == TITLES
    assert report["reused_groups"] == 0 and report["synthesized_groups"] == report["groups"]

    mp4 = mutagen.mp4.MP4(out)
    assert [c.title for c in mp4.chapters] == TITLES
    starts = [round(c.start, 1) for c in mp4.chapters]
    assert starts == [round(c["start_s"], 1) for c in report["chapters"]]
    assert mp4.tags["©nam"] == ["The Test Book"] and mp4.tags["©alb"] == ["The Test Book"]
    assert mp4.tags["©ART"] == ["Ada Voice"]
    assert bytes(mp4.tags["covr"][0]) == cover_jpeg()
    assert abs(mp4.info.length - report["audio_s"]) < 0.2

    checked = check_file(out, detector)
    assert checked.ok, checked.problems
    assert checked.watermark >= 0.5
    assert checked.provenance["model"] == "turbo" and checked.provenance["task"] == "book"

    files = sorted(chapters.glob("*.flac"))
    assert [f.name for f in files] == [
        "01 - Chapter 1_ The Beginning.flac",
        "02 - Part Two — Chapter 2_ Rivers.flac",
        "03 - Chapter 3_ Mountains.flac",
        "04 - Chapter 4_ The End.flac",
    ]
    with sf.SoundFile(files[1]) as f:
        assert (f.title, f.album, f.artist) == (TITLES[1], "The Test Book", "Ada Voice")
    whole = sum(sf.info(str(f)).duration for f in files)
    assert abs(whole - report["audio_s"]) < 0.05


def test_changed_chapter_redoes_only_its_groups(cli, checkpoint, tmp_path):
    text = tmp_path / "story.txt"
    body = (
        "Chapter 1\n\nThe first part. It is short.\n\nChapter 2\n\nThe second part, also short.\n"
    )
    text.write_text(body)
    args = ("book", text, "--model-dir", checkpoint, "--json", "--overwrite", *CAP)
    first = report_of(cli(*args))
    assert [c["title"] for c in first["chapters"]] == ["Chapter 1", "Chapter 2"]
    text.write_text(body.replace("also short", "rewritten now"))
    second = report_of(cli(*args))
    changed = second["chapters"][1]["groups"] - 1  # its spoken title is unchanged
    assert second["groups"] == first["groups"]
    assert second["reused_groups"] == first["groups"] - changed
    assert (tmp_path / "story.m4b").is_file()


def test_markup_and_lexicon(cli, checkpoint, tmp_path):
    md = tmp_path / "play.md"
    md.write_text(
        "# Act One\n\nThe Nguyen family spoke. [pause:1.5s] Then silence [laugh] ended.\n"
    )
    lexicon = tmp_path / "words.tsv"
    lexicon.write_text("# how names are said\nNguyen\tWin\n")
    report = report_of(
        cli("book", md, "--model-dir", checkpoint, "--lexicon", lexicon, "--json", *CAP)
    )
    work = tmp_path / "play.m4b.work"
    said = [json.loads(line)["text"] for line in (work / "manifest.jsonl").read_text().splitlines()]
    assert any("The Win family spoke." in t for t in said)
    assert not any("Nguyen" in t or "pause" in t for t in said)
    assert any("[laugh]" in t for t in said)
    audio = decoded(tmp_path / "play.m4b")
    quiet = np.abs(audio) < 1e-3
    longest = run = 0
    for q in quiet:
        run = run + 1 if q else 0
        longest = max(longest, run)
    assert longest / 24000 >= 1.4
    assert report["chapters"][0]["title"] == "Act One"


def test_kill_then_resume_reuses_groups_and_matches(cli, checkpoint, tmp_path):
    """kill -9 mid-book, rerun: complete, finished groups reused, the audio of a clean run."""
    paragraphs = [
        f"Paragraph {i} of the chapter goes here. It has two sentences." for i in range(4)
    ]
    text = "\n\n".join(f"Chapter {n}\n\n" + "\n\n".join(paragraphs) for n in (1, 2, 3))
    book = tmp_path / "long.txt"
    book.write_text(text)
    args = ["--model-dir", str(checkpoint), "--batch-size", "2", "--json", *CAP]
    cmd = [sys.executable, "-m", "chatterbox_cli", "book", str(book), *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    manifest = tmp_path / "long.m4b.work" / "manifest.jsonl"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if manifest.is_file() and len(manifest.read_text().splitlines()) >= 2:
            break
        time.sleep(0.2)
    assert proc.poll() is None, "the book finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "long.m4b").exists()

    resumed = report_of(cli("book", book, *args))
    assert 2 <= resumed["reused_groups"] < resumed["groups"]
    clean_dir = tmp_path / "clean"
    clean_dir.mkdir()
    (clean_dir / "long.txt").write_text(text)
    clean = report_of(cli("book", clean_dir / "long.txt", *args))
    assert clean["reused_groups"] == 0 and clean["groups"] == resumed["groups"]
    np.testing.assert_array_equal(decoded(tmp_path / "long.m4b"), decoded(clean_dir / "long.m4b"))
