"""The real pipeline through the CLI on the random-weight checkpoint (no fakes)."""

import json

import numpy as np
import pyloudnorm
import pytest
import soundfile as sf
from conftest import plain_mode

TOKENS = ("--max-new-tokens", "40")


def assert_watermarked_at_target(path, detector, lufs=-27.0):
    info = sf.info(str(path))
    assert (info.samplerate, info.channels, info.subtype, info.format) == (
        24000,
        1,
        "PCM_16",
        "WAV",
    )
    wav, sr = sf.read(str(path), dtype="float32")
    loudness = pyloudnorm.Meter(sr).integrated_loudness(wav.astype(np.float64))
    assert abs(loudness - lufs) <= 0.5, loudness
    assert np.max(np.abs(wav)) <= 10 ** (-1 / 20) + 1e-3
    assert detector.get_watermark(wav, sample_rate=sr) > 0.5
    return wav


def test_say_writes_leveled_watermarked_wav(cli, checkpoint, tmp_path, detector, engine):
    out = tmp_path / "hello.wav"
    text = "Hello there. Dr. Smith arrived at 5 p.m. today.\n\nA second paragraph follows."
    r = cli("say", text, "--model-dir", checkpoint, "-o", out, "--seed", 3, *TOKENS, "--json")
    assert r.exit_code == 0, r.output
    wav = assert_watermarked_at_target(out, detector)
    report = json.loads(r.stdout)
    assert [g["text"] for g in report["groups"]] == [
        "Hello there. Dr. Smith arrived at five p.m. today.",
        "A second paragraph follows.",
    ]
    assert all(g["speech_tokens"] == 40 for g in report["groups"])
    assert report["output"] == str(out) and report["device"] == "cpu"
    assert report["ttfa_s"] <= report["synth_s"]
    assert report["audio_s"] == pytest.approx(len(wav) / 24000, abs=1e-3)
    assert report["rtf"] == pytest.approx(report["synth_s"] / report["audio_s"])
    assert not list(tmp_path.glob(".chatterbox-*"))


def test_seeded_runs_are_identical(cli, checkpoint, tmp_path, engine):
    a, b, c = tmp_path / "a.wav", tmp_path / "b.wav", tmp_path / "c.wav"
    for path, seed in ((a, 5), (b, 5), (c, 6)):
        r = cli(
            "say",
            "Same seed, same audio.",
            "--model-dir",
            checkpoint,
            "-o",
            path,
            "--seed",
            seed,
            "--max-new-tokens",
            12,
            "-q",
        )
        assert r.exit_code == 0 and r.output == ""
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()


def test_flac_float_and_dir_outputs(cli, checkpoint, tmp_path, engine):
    r = cli(
        "say",
        "Flac output.",
        "--model-dir",
        checkpoint,
        "-o",
        tmp_path / "x.flac",
        "--max-new-tokens",
        10,
        "-q",
    )
    assert r.exit_code == 0, r.output
    assert sf.info(str(tmp_path / "x.flac")).format == "FLAC"
    r = cli(
        "say",
        "Into a new directory.",
        "--model-dir",
        checkpoint,
        "-o",
        f"{tmp_path}/sub/",
        "--subtype",
        "FLOAT",
        "--max-new-tokens",
        10,
        "-q",
    )
    assert r.exit_code == 0, r.output
    written = tmp_path / "sub" / "into-a-new-directory.wav"
    assert sf.info(str(written)).subtype == "FLOAT"


def test_text_from_file_and_stdin(cli, checkpoint, tmp_path, engine):
    src = tmp_path / "in.txt"
    src.write_text("From a file.", encoding="utf-8")
    r = cli(
        "say",
        "-f",
        src,
        "--model-dir",
        checkpoint,
        "-o",
        tmp_path / "f.wav",
        "--max-new-tokens",
        8,
        "--json",
        "-q",
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["groups"][0]["text"] == "From a file."
    r = cli(
        "say",
        "--model-dir",
        checkpoint,
        "-o",
        tmp_path / "s.wav",
        "--max-new-tokens",
        8,
        "--json",
        "-q",
        input="From standard input.",
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["groups"][0]["text"] == "From standard input."


def test_voice_cache_round_trip(cli, checkpoint, tmp_path, reference_wav, voices_dir, detector):
    r = cli(
        "voice",
        "cache",
        reference_wav,
        "--name",
        "narrator",
        "--model-dir",
        checkpoint,
        "--json",
        "-q",
    )
    assert r.exit_code == 0, r.output
    record = json.loads(r.stdout)
    cached = voices_dir / "narrator.pt"
    assert record["path"] == str(cached) and cached.is_file()
    assert cached.stat().st_mode & 0o777 == plain_mode(voices_dir)
    assert record["model"] == "turbo" and record["duration_s"] == pytest.approx(6.5)

    import torch
    from chatterbox.tts_turbo import Conditionals

    raw = torch.load(cached, weights_only=True)
    assert raw["meta"]["source_sha256"] and raw["meta"]["name"] == "narrator"
    upstream = Conditionals.load(cached)  # upstream reads our file as-is
    assert abs(upstream.t3.cond_prompt_speech_tokens.shape[-1] - 6.5 * 25) <= 1  # 25 tokens/s

    listing = cli("voice", "list", "--json")
    assert [v["name"] for v in json.loads(listing.stdout)] == ["narrator"]

    by_name, by_path, by_clip = (tmp_path / n for n in ("n.wav", "p.wav", "c.wav"))
    for voice, out in (("narrator", by_name), (cached, by_path), (reference_wav, by_clip)):
        r = cli(
            "say",
            "Cloned voice.",
            "--model-dir",
            checkpoint,
            "--voice",
            voice,
            "-o",
            out,
            "--seed",
            9,
            *TOKENS,
            "--json",
            "-q",
        )
        assert r.exit_code == 0, r.output
        assert_watermarked_at_target(out, detector)
    # A cached voice is the same conditioning as preparing the clip on the fly.
    assert by_name.read_bytes() == by_path.read_bytes() == by_clip.read_bytes()
    builtin = tmp_path / "b.wav"
    cli(
        "say", "Cloned voice.", "--model-dir", checkpoint, "-o", builtin, "--seed", 9, *TOKENS, "-q"
    )
    assert builtin.read_bytes() != by_name.read_bytes()
