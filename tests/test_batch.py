"""`chatterbox batch`: inputs, safe names, manifest/resume, and batched decoding = unbatched."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import interruptible, plain_mode

from chatterbox_cli.jobs import inputs
from chatterbox_cli.models.sampling import SamplingParams
from chatterbox_cli.models.t3.request import Decoding, Row
from chatterbox_cli.sinks import manifest as manifests
from chatterbox_cli.synth.batched import Job, synthesize_batch
from chatterbox_cli.text.segment import TextGroup

TRICKY_CSV = (
    "\ufeffID,Text,Voice,Seed,Mood\n"
    'greet,"Hello, world.",,1,happy\n'
    'multi,"Line one.\nLine two, with ""quotes"".",,2,calm\n'
    "greet,Duplicate id here.,,3,\n"
    "../evil,Trying to escape.,,4,\n"
    "/etc/passwd,Absolute path id.,,5,\n"
    "blank,   ,,6,\n"
    "novoice,Voice file is missing.,missing.wav,7,\n"
    "uni,Ünïcödé text — naïve café.,,8,\n"
)


def write(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    return str(path)


def test_csv_parsing_quoting_bom_and_invalid_rows(tmp_path):
    items, invalid = inputs.read_inputs([write(tmp_path, "in.csv", TRICKY_CSV)], None, "line")
    assert [i.id for i in items] == [
        "greet",
        "multi",
        "greet",
        "../evil",
        "/etc/passwd",
        "novoice",
        "uni",
    ]
    assert items[1].text == 'Line one.\nLine two, with "quotes".'
    assert items[1].line == 3 and items[2].line == 5  # a record's first line
    assert items[0].seed == 1 and items[0].extra == {"mood": "happy"}
    assert [(r.line, r.reason) for r in invalid] == [(8, "empty text")]


def test_other_formats(tmp_path):
    tsv = write(tmp_path, "in.tsv", "text\ttemperature\nFirst.\t0.7\nSecond.\thot\n")
    items, invalid = inputs.read_inputs([tsv], None, "line")
    assert items[0].overrides == {"temperature": 0.7}
    assert invalid[0].line == 3 and "temperature must be a number" in invalid[0].reason
    jsonl = write(tmp_path, "in.jsonl", '{"text": "A.", "id": "a"}\n{oops\n\n[1]\n')
    items, invalid = inputs.read_inputs([jsonl], None, "line")
    assert [i.id for i in items] == ["a"] and [r.line for r in invalid] == [2, 4]
    txt = write(tmp_path, "book.txt", "Chapter one.\n\nIt begins.\n")
    assert [i.text for i in inputs.read_inputs([txt], None, "line")[0]] == [
        "Chapter one.",
        "It begins.",
    ]
    (whole,) = inputs.read_inputs([txt], None, "file")[0]
    assert whole.id == "book" and "It begins." in whole.text


def test_names_are_safe_unique_and_inside_outdir(tmp_path):
    items, _ = inputs.read_inputs([write(tmp_path, "in.csv", TRICKY_CSV)], None, "line")
    warnings = inputs.assign_names(items)
    names = [i.name for i in items]
    assert len(set(names)) == len(names)
    assert names[:3] == ["greet", "multi", "greet-2"] and len(warnings) == 1
    for name in names:
        assert "/" not in name and ".." not in name and not name.startswith(".")
        path = manifests.output_path(tmp_path / "out", name, ".wav")
        assert path.parent == tmp_path / "out"
    no_id = inputs.BatchItem("x", 1, "Some words here")
    inputs.assign_names([no_id])
    assert no_id.name == "0001-some-words-here"


@pytest.mark.parametrize("shared_prefix", [False, True], ids=["full-prefill", "prefix-cache"])
def test_greedy_batched_tokens_equal_unbatched(engine, shared_prefix):
    """Pads sit left of the text (after the shared voice prefix when cached), masked out."""
    from chatterbox_cli.models.t3.decode import decode, decode_batch
    from chatterbox_cli.models.t3.prefix import Prefix

    greedy = SamplingParams(top_k=1)
    texts = ["Hi.", "A somewhat longer sentence for padding.", "Third one!", "And four."]
    conds = engine.builtin_voice
    rows = [Row(conds.t3, engine.text_tokens(t), greedy, 10) for t in texts]
    prefix = Prefix.build(engine.tts.t3, conds.t3) if shared_prefix else None
    batched = decode_batch(engine.tts.t3, rows, Decoding(prefix=prefix))
    for text, row_tokens in zip(texts, batched, strict=True):
        alone = [
            int(t[0])
            for t in decode(engine.tts.t3, Row(conds.t3, engine.text_tokens(text), greedy, 10))
        ]
        assert row_tokens == alone


def test_seeded_row_is_independent_of_batch(engine):
    conds = engine.builtin_voice
    params = SamplingParams()
    texts = ["The row we watch.", "Other text one.", "Another, longer, other text two.", "Three."]
    jobs = [Job(TextGroup(0, t, 0), conds, params, 8, seed=100 + i) for i, t in enumerate(texts)]
    together = synthesize_batch(engine, jobs)
    alone = synthesize_batch(engine, jobs[:1])
    assert together[0].speech_tokens == alone[0].speech_tokens
    np.testing.assert_array_equal(together[0].audio, alone[0].audio)
    assert together[1].speech_tokens != together[0].speech_tokens


def manifest(outdir):
    return [json.loads(line) for line in (outdir / "manifest.jsonl").read_text().splitlines()]


def test_tricky_csv_end_to_end(cli, checkpoint, tmp_path):
    src = write(tmp_path, "in.csv", TRICKY_CSV)
    outdir = tmp_path / "out"
    args = ("batch", src, "-d", outdir, "--model-dir", checkpoint, "--max-new-tokens", 6)
    r = cli(*args)
    assert r.exit_code == 2 and "in.csv:8: empty text" in r.stderr and not outdir.exists()

    r = cli(*args, "--skip-invalid", "--json", "--batch-size", 3)
    assert r.exit_code == 1, r.output  # the missing voice file failed its row
    records = [json.loads(line) for line in r.stdout.splitlines()]
    assert records == manifest(outdir)
    status = {rec["name"]: rec["status"] for rec in records}
    assert status == {
        "greet": "ok",
        "multi": "ok",
        "greet-2": "ok",
        "evil": "ok",
        "etc_passwd": "ok",
        "novoice": "failed",
        "uni": "ok",
    }
    failed = next(rec for rec in records if rec["status"] == "failed")
    assert "missing.wav" in failed["error"]
    files = sorted(p.name for p in outdir.iterdir())
    assert files == sorted(
        ["manifest.jsonl", *(f"{n}.wav" for n, s in status.items() if s == "ok")]
    )
    assert not list(tmp_path.glob("*.wav")) and not (tmp_path / "etc").exists()
    for rec in records:
        if rec["status"] == "ok":
            info = sf.info(rec["output"])
            assert (info.samplerate, info.channels) == (24000, 1)
            assert Path(rec["output"]).stat().st_mode & 0o777 == plain_mode(outdir)
            assert rec["audio_s"] > 0 and rec["speech_tokens"] == 6  # one group each
    assert next(r for r in records if r["name"] == "multi")["extra"] == {"mood": "calm"}

    again = cli(*args, "--skip-invalid")
    assert again.exit_code == 1 and "6 of 7 item(s) already done" in again.stderr
    assert len(manifest(outdir)) == len(records) + 1  # only the failed row was retried


def test_fail_fast_stops_at_the_first_failed_row(cli, checkpoint, tmp_path):
    src = write(tmp_path, "in.csv", "id,text,voice\nbad,Voice file is missing.,missing.wav\n"
                "good,Fine row.,\n")  # fmt: skip
    outdir = tmp_path / "out"
    args = ("batch", src, "-d", outdir, "--model-dir", checkpoint, "--max-new-tokens", 4)
    r = cli(*args, "--fail-fast")
    assert r.exit_code == 1 and "stopped at the first failure" in r.stderr
    assert [rec["status"] for rec in manifest(outdir)] == ["failed"]
    assert not (outdir / "good.wav").exists()


def test_interrupt_then_resume(cli, checkpoint, tmp_path):
    lines = [f"Sentence number {n} of the book." for n in range(1, 9)]
    src = write(tmp_path, "book.txt", "\n".join(lines) + "\n")
    outdir = tmp_path / "out"
    args = [
        src,
        "-d",
        str(outdir),
        "--model-dir",
        str(checkpoint),
        "--max-new-tokens",
        "6",
        "--batch-size",
        "2",
        "--seed",
        "1",
    ]
    env = {k: v for k, v in os.environ.items() if k != "CHATTERBOX_DEBUG"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "chatterbox_cli", "batch", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=interruptible,
    )
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if (outdir / "manifest.jsonl").is_file() and (outdir / "manifest.jsonl").read_text():
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "run the same command again to resume" in err and "Traceback" not in err
    first = manifest(outdir)
    assert 1 <= len(first) < len(lines)

    r = cli("batch", *args)
    assert r.exit_code == 0, r.output
    assert f"{len(first)} of {len(lines)} item(s) already done" in r.stderr
    recs = manifest(outdir)
    assert sorted(rec["name"] for rec in recs) == sorted({rec["name"] for rec in recs})
    wavs = sorted(outdir.glob("*.wav"))
    assert len(wavs) == len(lines) == len(recs)
    assert all(sf.info(str(w)).frames > 0 for w in wavs)
    assert not [p for p in outdir.iterdir() if p.name.startswith(".")]


def test_manifest_survives_a_torn_line_and_stale_temp_files(tmp_path):
    """What `kill -9` leaves behind: a half-written record and a temp file."""
    (tmp_path / "a.wav").write_bytes(b"done")
    (tmp_path / ".chatterbox-x.wav.part").write_bytes(b"half")
    ok = {"output": str(tmp_path / "a.wav"), "status": "ok"}
    (tmp_path / "manifest.jsonl").write_text(json.dumps(ok) + '\n{"output": "b.wav", "sta')
    assert manifests.read_manifest(tmp_path) == {"a.wav": ok}
    assert manifests.clean_temp_files(tmp_path) == 1
    m = manifests.Manifest(tmp_path)
    m.append({"output": str(tmp_path / "b.wav"), "status": "ok"})
    m.close()
    assert set(manifests.read_manifest(tmp_path)) == {"a.wav", "b.wav"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav", "manifest.jsonl"]
