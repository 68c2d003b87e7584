"""`say -o -`: each group's audio streams to stdout as soon as it exists."""

import io

import numpy as np
import pytest
import soundfile as sf
from conftest import interruptible

from chatterbox_cli.text.segment import FIRST_GROUP_CHARS, split_groups

TEXT = (
    "Streaming starts here. Then a second sentence follows. And a third one ends it.\n\nNew para."
)


def test_short_first_group_for_streaming():
    groups = split_groups(TEXT, short_first=True)
    assert groups[0].text == "Streaming starts here."
    assert " ".join(g.text for g in groups).split() == TEXT.split()
    long_first = "word " * 40 + "end, and then more words follow here. Next sentence."
    first = split_groups(long_first, short_first=True)[0].text
    assert len(first) <= FIRST_GROUP_CHARS
    assert [g.text for g in split_groups("One.", short_first=True)] == ["One."]


def test_stdout_wav_matches_file_length_and_is_watermarked(cli, checkpoint, tmp_path, detector):
    args = ("say", TEXT, "--model-dir", checkpoint, "--seed", 4, "--max-new-tokens", 30)
    streamed = cli(*args, "-o", "-", "-q")
    assert streamed.exit_code == 0, streamed.stderr
    wav, sr = sf.read(io.BytesIO(streamed.stdout_bytes), dtype="float32")
    assert sr == 24000 and wav.ndim == 1

    # The same groups written to a file: same length, pauses in the same places.
    from chatterbox_cli.models.sampling import SamplingParams
    from chatterbox_cli.models.source import ModelSource
    from chatterbox_cli.synth.loader import load_engine
    from chatterbox_cli.synth.pipeline import render
    from chatterbox_cli.synth.request import RenderOptions

    engine = load_engine(ModelSource("turbo", checkpoint), "cpu")
    groups = split_groups(TEXT, short_first=True)
    opts = RenderOptions(SamplingParams(), max_new_tokens=30, seed=4)
    rendered = render(engine, groups, engine.builtin_voice, opts)
    assert len(wav) == len(rendered.audio)
    edge = round(rendered.groups[0].audio_s * sr)
    assert np.all(wav[edge : edge + int(0.2 * sr)] == 0)  # the pause after group 1, in order
    assert np.any(wav[:edge] != 0)
    assert detector.get_watermark(wav, sample_rate=sr) > 0.5
    assert np.max(np.abs(wav)) <= 10 ** (-1 / 20) + 1e-3


def test_raw_stream_and_refusals(cli, checkpoint, tmp_path):
    r = cli(
        "say",
        "Raw bytes please.",
        "--model-dir",
        checkpoint,
        "--max-new-tokens",
        10,
        "-o",
        "-",
        "--format",
        "raw",
        "--seed",
        1,
    )
    assert r.exit_code == 0, r.stderr
    assert "s16le, mono, 24000 Hz" in r.stderr
    report_free = r.stdout_bytes
    assert len(report_free) % 2 == 0
    pcm = np.frombuffer(report_free, dtype="<i2")
    assert len(pcm) == (10 + 3) * 2 * 480  # (tokens + 3 silence) x 2 mel frames x 480 samples
    for extra, needle in (
        (("--json",), "--json"),
        (("--format", "flac"), "wav or raw"),
        (("--subtype", "FLOAT"), "16-bit"),
    ):
        bad = cli("say", "Hi.", "-o", "-", *extra)
        assert bad.exit_code == 2 and needle in bad.stderr
    bad = cli("say", "Hi.", "-o", tmp_path / "x.wav", "--format", "raw")
    assert bad.exit_code == 2 and "-o -" in bad.stderr


def test_refuses_binary_audio_on_a_terminal(monkeypatch):
    import sys

    from chatterbox_cli.cli.say import check_stream_args
    from chatterbox_cli.runtime.errors import BadInput

    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    with pytest.raises(BadInput, match="terminal"):
        check_stream_args(True, None, "PCM_16", False)


def test_harmonic_source_matches_upstream(engine):
    """Our carried-phase source is upstream SourceModuleHnNSF's arithmetic, draw for draw."""
    import torch
    from torch.distributions.uniform import Uniform

    from chatterbox_cli.models.s3gen.stream import harmonic_source

    m_source = engine.tts.s3gen.mel2wav.m_source
    f0 = torch.rand(1, 1, 4800) * 300
    f0[..., 1000:1500] = 0  # an unvoiced stretch
    torch.manual_seed(3)
    upstream = m_source(f0.transpose(1, 2))[0].transpose(1, 2)
    torch.manual_seed(3)
    harmonics = m_source.l_sin_gen.harmonic_num + 1
    phase = Uniform(low=-np.pi, high=np.pi).sample((1, harmonics, 1))
    phase[:, 0] = 0
    noise = torch.randn(1, harmonics, 4800)
    ours, _ = harmonic_source(m_source, f0, torch.zeros(1, harmonics, 1), phase, noise)
    torch.testing.assert_close(ours, upstream, rtol=0, atol=0)
    # Two halves with the phase carried give the same signal as one pass.
    a, cycles = harmonic_source(
        m_source, f0[..., :2400], torch.zeros_like(phase), phase, noise[..., :2400]
    )
    b, _ = harmonic_source(m_source, f0[..., 2400:], cycles[..., -1:] % 1, phase, noise[..., 2400:])
    torch.testing.assert_close(torch.cat([a, b], dim=2), ours, rtol=0, atol=1e-4)


def test_token_streaming_seams_against_one_full_pass(engine):
    """Seam fidelity, independent of the weights: fixed noise and source, the same tokens
    streamed every N tokens vs rendered in one pass.

    Measured here (60 tokens, random weights): N=10 44.1 dB, N=25 46.9 dB SNR; max error
    within 20 ms of a seam 1.7% / 1.1% of the peak. Breaking the method drops below the bound:
    no mel context in HiFiGAN 27.1 dB, no left token context in the flow 36.9 dB. So: >= 40 dB
    and seam error <= 5% of the peak.
    """
    import torch
    from chatterbox.models.s3gen.const import S3GEN_SIL

    from chatterbox_cli.models.s3gen.stream import (
        GroupNoise,
        TokenStreamer,
        full_render,
        prompt_frames,
        seam_error,
    )

    s3gen, ref = engine.tts.s3gen, engine.builtin_voice.gen
    tokens = torch.randint(0, 6561, (60,), generator=torch.Generator().manual_seed(0)).tolist()
    silence = [S3GEN_SIL] * 3
    noise = GroupNoise.draw(s3gen, prompt_frames(ref), 100, torch.Generator().manual_seed(1))
    with torch.inference_mode():
        full = full_render(s3gen, ref, noise, tokens + silence)
        for every in (10, 25):
            streamer = TokenStreamer(s3gen, ref, noise, every)
            pieces = [p for p in map(streamer.push, tokens) if p is not None]
            pieces.append(streamer.finish(silence))
            assert len(pieces) == 1 + (60 - 3) // every
            assert len(np.concatenate(pieces)) == len(full) == (60 + 3) * 960
            snr, worst = seam_error(full, pieces)
            assert snr >= 40 and worst <= 0.05, (every, snr, worst)


def test_stream_tokens_cli_parses_and_is_watermarked(cli, checkpoint, detector):
    text = "Token streaming starts here. And goes on."
    args = ("say", text, "--model-dir", checkpoint, "--seed", 5, "--max-new-tokens", 24)
    r = cli(*args, "-o", "-", "--stream-tokens", 8, "--json")
    assert r.exit_code == 2 and "--json" in r.stderr
    r = cli(*args, "-o", "-", "--stream-tokens", 8, "-q")
    assert r.exit_code == 0, r.stderr
    wav, sr = sf.read(io.BytesIO(r.stdout_bytes), dtype="float32")
    assert len(wav) == 2 * (24 + 3) * 960 + int(0.2 * sr)  # both groups hit the cap; one pause
    assert detector.get_watermark(wav, sample_rate=sr) > 0.5
    for extra, needle in (
        (("-o", "x.wav", "--stream-tokens", 8), "-o - or --play"),
        (("-o", "-", "--stream-tokens", 2), "between 4 and 500"),
        (("--play", "-o", "x.wav"), "drop -o"),
        (("-o", "-", "--cfm-steps", 3), "--cfm-steps"),
    ):
        bad = cli("say", "Hi.", *extra)
        assert bad.exit_code == 2 and needle in bad.stderr, bad.stderr


def test_play_without_sounddevice_is_a_clear_error(cli, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "sounddevice", None)  # what a missing extra looks like
    r = cli("say", "Hi.", "--play")
    assert r.exit_code == 2
    assert "pip install 'chatterbox-cli[play]'" in r.stderr and "Traceback" not in r.stderr


def test_ctrl_c_mid_stream_leaves_a_well_formed_stream(checkpoint):
    """SIGINT after the first audio: exit 130 at once, and what was sent parses as WAV. With
    --overlap, so the T3 worker thread is cancelled and joined too."""
    import os
    import signal
    import subprocess
    import sys
    import time

    text = "One sentence streams first. " + "Then a long tail keeps the model busy. " * 4
    env = {k: v for k, v in os.environ.items() if k != "CHATTERBOX_DEBUG"}
    cmd = [sys.executable, "-m", "chatterbox_cli", "say", text, "--model-dir", str(checkpoint)]
    cmd += ["--max-new-tokens", "400", "--stream-tokens", "10", "-o", "-", "--overlap"]
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        preexec_fn=interruptible,
    )
    head = proc.stdout.read(44 + 4800)  # the header, then the first audio
    assert len(head) == 44 + 4800
    proc.send_signal(signal.SIGINT)
    t0 = time.monotonic()
    rest, err = proc.communicate(timeout=60)
    stopped_in = time.monotonic() - t0
    assert proc.returncode == 130, err
    assert b"interrupted" in err and b"Traceback" not in err
    assert stopped_in < 10  # within a decode step or one S3Gen chunk, not the 400-token cap
    data = head + rest
    assert len(data) % 2 == 0
    wav, sr = sf.read(io.BytesIO(data), dtype="float32")
    assert sr == 24000 and len(wav) == (len(data) - 44) // 2
