"""Listening back: the error rate's normalizer and decisions on written transcripts, and the
real faster-whisper path (a random-weight model converted in the session) in `verify`."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from chatterbox_cli.post.wer import score, tokens


@pytest.mark.parametrize(
    ("lang", "text", "heard", "rate"),
    [
        (
            "en",
            "It's the 21st of May, 1999.",
            "its the twenty first of may nineteen ninety nine",
            0,
        ),
        ("en", "Dr. Smith paid $5.", "doctor smith paid five dollars", 1 / 5),
        ("en", "The cat sat on the mat.", "the cat sat on mat", 1 / 6),
        ("en", "The cat sat on the mat.", "the cat the cat sat on the mat", 2 / 6),
        ("en", "Hello — world!", "HELLO, WORLD", 0),
        (
            "de",
            "Am 1. Mai kostet es 3,5 kg.",
            "am erste mai kostet es drei komma fünf kilogramm",
            0,
        ),
        ("zh", "今天是2026年12月5日。", "今天是二零二六年十二月五日", 0),
        ("ja", "猫が好きです。", "猫が好き", 2 / 6),
        ("en", "Three words here.", "", 1),
    ],
)
def test_error_rates_count_what_was_said(lang, text, heard, rate):
    assert score(text, heard, lang).rate == pytest.approx(rate)


def test_characters_are_scored_where_words_are_not_spaced():
    assert tokens("猫が好き。", "ja") == ["猫", "が", "好", "き"]
    assert score("猫", "犬", "zh").unit == "char" and score("a", "b").unit == "word"
    assert score("", "").rate == 0 and score("", "extra").rate == 1


@pytest.fixture
def marked_clip(tmp_path):
    """Three seconds of speech-like sound with our watermark, as any output of ours has."""
    import perth

    from chatterbox_cli.testing.checkpoints import speech_like

    sr = 24000
    audio = speech_like(3.0, sr, seed=2) * 0.3
    marked = perth.PerthImplicitWatermarker().apply_watermark(audio, sample_rate=sr)
    path = tmp_path / "clip.wav"
    sf.write(path, np.asarray(marked, dtype=np.float32), sr)
    return path


def test_verify_listens_and_fails_a_file_that_does_not_say_its_script(
    cli, whisper_model, marked_clip
):
    args = ("verify", marked_clip, "--asr", whisper_model, "--json")
    r = cli(*args, "--text", "Hello there, this is the script.")
    assert r.exit_code == 1, r.output
    report = json.loads(r.stdout.splitlines()[0])
    heard = report["heard"]
    assert heard["transcript"] and heard["wer"] > 0.3 and heard["unit"] == "word"
    assert any(p.startswith("asr-mismatch") for p in report["problems"])
    # the same file against what it does say: greedy decoding hears the same words again
    r = cli(*args, "--text", heard["transcript"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout.splitlines()[0])["heard"]["wer"] == 0
    r = cli(*args, "--text", "Hello.", "--asr-max-wer", "50")
    assert r.exit_code == 2 and "--asr-max-wer must be between 0 and 10" in r.output


def test_listening_is_refused_early_and_in_one_line(cli, tmp_path, marked_clip):
    r = cli("verify", marked_clip, "--text", "Hello.")
    assert r.exit_code == 2 and "needs both the script" in r.output
    r = cli("verify", marked_clip, "--text", "Hi.", "--asr", tmp_path)
    assert r.exit_code == 2 and "not a CTranslate2 model folder" in r.output
    r = cli("verify", marked_clip, "--text", "Hi.", "--asr", "tiniest")
    assert r.exit_code == 2 and "unknown speech-recognition model 'tiniest'" in r.output


def test_an_uncached_model_offline_fails_at_once_without_torch(tmp_path, marked_clip):
    """The one-line offline error the TTS weights give, before torch is imported."""
    code = (
        "import sys\n"
        "from chatterbox_cli.cli import main\n"
        f"sys.argv = ['chatterbox', 'verify', {str(marked_clip)!r}, '--text', 'Hi.',"
        " '--asr', 'base.en']\n"
        "try:\n    main()\n"
        "except SystemExit as e:\n    print('exit', e.code, 'torch' in sys.modules)\n"
    )
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                       timeout=60)  # fmt: skip
    assert r.stdout.strip().endswith("False"), r.stdout + r.stderr
    assert "exit 0" not in r.stdout
    errors = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and "base.en" in errors[0] and "HF_HUB_OFFLINE" in errors[0], errors


@pytest.mark.checkpoint
def test_say_listens_back_flags_retries_and_reports_what_it_heard(
    cli, checkpoint, whisper_model, tmp_path
):
    """Random speech heard by a random recognizer: every group is off its text, so each is
    retried once and kept flagged `asr-mismatch`, its transcript and error rate reported."""
    out = tmp_path / "heard.wav"
    r = cli("say", "Hello there. This is a test.", "--model-dir", checkpoint, "-o", out,
            "--max-new-tokens", 12, "--seed", 3, "--retries", 1, "--asr", whisper_model,
            "--json")  # fmt: skip
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout.splitlines()[0])
    for group in report["groups"]:
        assert group["transcript"] and group["wer"] > 0.3
        assert "asr-mismatch" in group["flags"] and group["retries"] == 1
    r = cli("say", "Hello.", "--model-dir", checkpoint, "-o", tmp_path / "again.wav",
            "--max-new-tokens", 12, "--retries", 0, "--asr", whisper_model,
            "--fail-on-flag")  # fmt: skip
    assert r.exit_code == 1 and "asr-mismatch" in r.output
    r = cli("say", "Hello.", "--model-dir", checkpoint, "-o", "-", "--asr", whisper_model)
    assert r.exit_code == 2 and "--asr checks files" in r.output


@pytest.mark.checkpoint
def test_a_batch_records_what_each_group_was_heard_saying(cli, checkpoint, whisper_model, tmp_path):
    rows = tmp_path / "rows.csv"
    rows.write_text("id,text\na,First row here.\nb,Second row here.\n")
    out = tmp_path / "out"
    r = cli("batch", rows, "-d", out, "--model-dir", checkpoint, "--max-new-tokens", 10,
            "--retries", 0, "--asr", whisper_model, "--fail-on-flag")  # fmt: skip
    assert r.exit_code == 1, r.output  # written, but flagged: random speech says nothing
    records = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert len(records) == 2 and all(rec["status"] == "ok" for rec in records)
    for rec in records:
        [heard] = rec["heard"]
        assert heard["index"] == 0 and heard["transcript"] and heard["wer"] > 0.3
        assert rec["flags"] == ["group 0: asr-mismatch"]


@pytest.mark.checkpoint
def test_a_group_is_heard_while_the_next_one_is_synthesized(checkpoint, whisper_model):
    """The overlap, from timestamps: group 0's transcription starts before group 1 exists."""
    import threading
    import time

    from chatterbox_cli import Synthesizer

    tts = Synthesizer("turbo", model_dir=checkpoint, device="cpu", asr=whisper_model)
    real, started, arrived = tts.engine.listener.hear, {}, {}

    def hear(samples, sr, text, language="en", bounded=True):
        started.setdefault(text, (time.perf_counter(), threading.current_thread().name))
        return real(samples, sr, text, language, bounded)

    tts.engine.listener.hear = hear
    text = "One paragraph here.\n\nAnother paragraph there.\n\nA third one follows."
    audio = tts.say(text, max_new_tokens=30, seed=1, retries=0, pause_s=0.1,
                    on_chunk=lambda c: arrived.setdefault(c.group.index,
                                                          time.perf_counter()))  # fmt: skip
    groups = audio.groups
    assert len(groups) >= 2 and all(g.transcript is not None for g in groups)
    first = started[groups[0].text]
    assert first[1].startswith("asr") and first[0] < arrived[1]
