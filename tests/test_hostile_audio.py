"""Hostile recordings (#37): hours of audio in a few hundred kB (FLAC, Opus, MP3), a FLAC whose
header does not say its length, a WAV whose header claims 12 hours over a sparse file. Voice
clips are decoded no further than they are used, conversion sources are scanned and streamed
with memory independent of length and refused past their limit; peak RSS and time are measured
in a child process against the same command on a short clip."""

from __future__ import annotations

import pytest
from hostile import (
    flac_of_unknown_length,
    one_line_error,
    run_measured,
    sparse_wav,
    tone_then_silence,
)

MAX_EXTRA_MB = 250
MAX_S = 60


@pytest.fixture(scope="module")
def bombs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("audio-bombs")
    return {
        "flac-3h": tone_then_silence(tmp / "long.flac", 3 * 3600, format="FLAC"),
        "flac-unknown": flac_of_unknown_length(tmp / "unknown.flac", 3 * 3600),
        "wav-sparse": sparse_wav(tmp / "sparse.wav"),
        "opus-20min": tone_then_silence(tmp / "long.opus", 1200, format="OGG", subtype="OPUS"),
        "mp3-20min": tone_then_silence(tmp / "long.mp3", 1200, format="MP3"),
        "short": tone_then_silence(tmp / "short.wav", 7.0, 24000, tone_s=7.0),
    }


@pytest.fixture(scope="module")
def baseline(bombs, tmp_path_factory):
    """`convert` on a 7 s clip, failing at the model load (none here): the process's size."""
    out = tmp_path_factory.mktemp("base") / "out.wav"
    ran = run_measured(["convert", bombs["short"], "-o", out, "--model-dir", "/nonexistent"])
    assert ran.rc != 0 and "Traceback" not in ran.err
    return ran.peak_mb


@pytest.mark.parametrize(
    "bomb", ["flac-3h", "flac-unknown", "wav-sparse", "opus-20min", "mp3-20min"]
)
def test_a_conversion_source_past_its_limit_is_refused_after_decoding_only_that(
    bombs, baseline, bomb, tmp_path
):
    out = tmp_path / "out.wav"
    ran = run_measured(["convert", bombs[bomb], "-o", out], {"CHATTERBOX_MAX_AUDIO_S": "300"})
    assert ran.rc == 2, ran.err
    line = one_line_error(ran.err)
    assert "longer than 300 s" in line and "CHATTERBOX_MAX_AUDIO_S" in line, line
    assert ran.peak_mb < baseline + MAX_EXTRA_MB and ran.seconds < MAX_S, (ran.peak_mb, ran.seconds)
    assert not list(tmp_path.iterdir())


def test_hours_of_source_are_scanned_in_bounded_memory(bombs, baseline, tmp_path):
    """Under the limit, a 3-hour source is decoded whole (its cuts planned) before the model
    loads; memory stays that of a short clip (the model load fails here: no weights)."""
    ran = run_measured(
        ["convert", bombs["flac-unknown"], "-o", tmp_path / "out.wav", "--model-dir", tmp_path]
    )
    assert ran.rc != 0 and "Traceback" not in ran.err
    assert "longer than" not in ran.err and "checkpoint" in one_line_error(ran.err).lower()
    assert ran.peak_mb < baseline + MAX_EXTRA_MB and ran.seconds < MAX_S, (ran.peak_mb, ran.seconds)


@pytest.mark.parametrize(
    "bomb", ["flac-3h", "flac-unknown", "wav-sparse", "opus-20min", "mp3-20min"]
)
def test_a_voice_clip_is_decoded_only_as_far_as_it_is_used(bombs, baseline, bomb, tmp_path):
    """Checked (and measured) before any model loads; the model load fails here (no weights)."""
    ran = run_measured(
        ["say", "Hi.", "--voice", bombs[bomb], "-o", tmp_path / "o.wav", "--model-dir", tmp_path]
    )
    assert ran.rc != 0 and "Traceback" not in ran.err
    assert "checkpoint" in one_line_error(ran.err).lower()
    assert ran.peak_mb < baseline + MAX_EXTRA_MB and ran.seconds < MAX_S, (ran.peak_mb, ran.seconds)


def test_the_reader_never_trusts_a_header(bombs):
    from chatterbox_cli.runtime import recordings

    assert recordings.probe(bombs["flac-unknown"]).duration_s is None
    assert recordings.probe(bombs["wav-sparse"]).duration_s > 12 * 3600
    for bomb in ("flac-unknown", "wav-sparse", "opus-20min"):
        wav, sr, whole = recordings.read(bombs[bomb], 60.0, 24000)
        assert len(wav) == 60 * 24000 and sr == 24000 and not whole
    wav, sr, whole = recordings.read(bombs["short"], 60.0)
    assert whole and len(wav) == 7 * sr


def test_a_streamed_source_is_librosa_load_in_pieces(tmp_path):
    """What conversion reads block by block is exactly upstream's `librosa.load(sr=16000)`."""
    import librosa
    import numpy as np
    import soundfile as sf

    from chatterbox_cli.runtime.recordings import resampled

    rng = np.random.default_rng(0)
    x = (rng.standard_normal((44100 * 13, 2)) * 0.1).astype(np.float32)
    for fmt in ("WAV", "FLAC", "MP3"):
        path = tmp_path / f"x.{fmt.lower()}"
        sf.write(path, x, 44100, format=fmt)
        whole, _ = librosa.load(path, sr=16000)
        np.testing.assert_array_equal(np.concatenate(list(resampled(path, 16000))), whole)


def plain_log(err: str) -> None:
    """What a log file gets: no escape codes, no rich markup left unrendered."""
    assert "\x1b[" not in err, err
    for mark in ("[bold", "[/]", "[red]", "[yellow]", "[dim]", "[green]"):
        assert mark not in err, err


def test_voice_cache_of_a_three_hour_clip_costs_its_first_minute(
    bombs, checkpoint, engine, tmp_path
):
    import soundfile as sf
    import torch

    from chatterbox_cli.models.voices import load_cached
    from chatterbox_cli.runtime import recordings

    env = {"FORCE_COLOR": None, "TTY_COMPATIBLE": None}
    args = ["--model-dir", checkpoint]
    base = run_measured(["voice", "cache", bombs["short"], "-o", tmp_path / "s.pt", *args], env)
    assert base.rc == 0, base.err
    ran = run_measured(["voice", "cache", bombs["flac-3h"], "-o", tmp_path / "b.pt", *args], env)
    assert ran.rc == 0, ran.err
    assert "only its first 60 s are read" in ran.err and "saved voice b to" in ran.err
    plain_log(ran.err)
    assert ran.peak_mb < base.peak_mb + MAX_EXTRA_MB, (ran.peak_mb, base.peak_mb)
    assert ran.seconds < base.seconds + 30, (ran.seconds, base.seconds)
    head = tmp_path / "head.wav"
    wav, sr, whole = recordings.read(bombs["flac-3h"], 60.0)
    assert not whole
    sf.write(head, wav, sr, subtype="FLOAT")
    mine, first_minute = load_cached(tmp_path / "b.pt"), engine.prepare_reference(head)
    torch.testing.assert_close(mine.t3.speaker_emb, first_minute.t3.speaker_emb.cpu())
    torch.testing.assert_close(mine.gen["prompt_feat"], first_minute.gen["prompt_feat"].cpu())


def test_logs_hold_no_markup_or_escape_codes(bombs, tmp_path):
    """Errors, warnings and tables as a log file (stderr not a terminal) receives them."""
    from hostile import base_epub

    env = {"FORCE_COLOR": None, "TTY_COMPATIBLE": None}
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"text": "ok"}\n{"text": "[pause:forever]"}\n{"nope": 1}\n')
    for args in (
        ["batch", rows, "-d", tmp_path / "o"],
        ["book", base_epub(tmp_path), "--list-chapters"],
        ["say", "Hi.", "--voice", "no-such-voice"],
        ["convert", bombs["short"], "-o", tmp_path / "x.wav", "--model-dir", tmp_path],
    ):
        ran = run_measured(args, env)
        assert ran.rc != 0 or ran.out, ran.err
        plain_log(ran.err + ran.out)
