"""Post-processing and sinks: joins without clicks, loudness with a peak guard, atomic files."""

import os

import numpy as np
import pytest
import soundfile as sf

from chatterbox_cli.post.audio import joined, master, normalize_loudness
from chatterbox_cli.runtime.errors import BadInput
from chatterbox_cli.sinks.files import AudioFormat, check_writable, write_file
from chatterbox_cli.testing.checkpoints import reference_clip

SR = 24000


def tone(seconds, freq=220.0, amp=0.5):
    t = np.arange(int(seconds * SR)) / SR
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_join_inserts_pause_and_fades_edges():
    a, b = tone(0.5), tone(0.5, 330)
    out = joined([a, b], SR, pause_s=0.25)[0]
    assert len(out) == len(a) + len(b) + int(0.25 * SR)
    assert abs(out[len(a) - 1]) < 1e-3  # faded to silence before the pause
    assert abs(out[len(a) + int(0.25 * SR)]) < 1e-3  # and faded in after it
    steepest = max(np.max(np.abs(np.diff(x))) for x in (a, b))
    assert np.max(np.abs(np.diff(out))) <= steepest + 1e-6


def test_crossfade_join_has_no_step():
    a, b = np.full(SR // 2, 0.5, np.float32), np.full(SR // 2, -0.5, np.float32)
    out = joined([a, b], SR, pause_s=0, fade_s=0.01)[0]
    assert len(out) == len(a) + len(b) - int(0.01 * SR)
    assert np.max(np.abs(np.diff(out))) < 0.01  # a hard cut would jump by 1.0


def test_loudness_hits_target_and_peak_guard_limits():
    import pyloudnorm

    wav = reference_clip(4.0)
    out, info = normalize_loudness(wav, SR, -23.0)
    assert pyloudnorm.Meter(SR).integrated_loudness(out.astype(np.float64)) == pytest.approx(
        -23, abs=0.05
    )
    assert not info.peak_limited
    spiky = tone(2.0, amp=0.01)
    spiky[1000] = 0.9
    out, info = normalize_loudness(spiky, SR, -10.0)
    assert info.peak_limited and np.max(np.abs(out)) <= 10 ** (-1 / 20) + 1e-6


def test_too_short_or_silent_audio_is_left_alone():
    for wav in (tone(0.1), np.zeros(SR, np.float32)):
        out, info = normalize_loudness(wav, SR)
        assert info.measured_lufs is None
        np.testing.assert_array_equal(out, wav)


def test_master_watermarks_then_trims_to_target():
    import perth
    import pyloudnorm

    wm = perth.PerthImplicitWatermarker()
    clean = reference_clip(5.0, seed=3)
    out, info = master(clean, SR, wm, -27.0)
    assert pyloudnorm.Meter(SR).integrated_loudness(out.astype(np.float64)) == pytest.approx(
        -27, abs=0.1
    )
    assert wm.get_watermark(out, sample_rate=SR) > 0.5
    assert wm.get_watermark(normalize_loudness(clean, SR)[0], sample_rate=SR) < 0.5


def test_atomic_write_never_replaces_without_overwrite(tmp_path):
    target = tmp_path / "a.wav"
    fmt = AudioFormat().check()
    write_file(target, tone(0.2), SR, fmt)
    first = target.read_bytes()
    with pytest.raises(BadInput, match="--overwrite"):
        write_file(target, tone(0.3), SR, fmt)
    assert target.read_bytes() == first
    write_file(target, tone(0.3), SR, fmt, overwrite=True)
    assert sf.info(str(target)).frames == int(0.3 * SR)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav"]


def test_interrupted_write_leaves_nothing(tmp_path, monkeypatch):
    import soundfile

    def interrupted(self, data):  # the header is out, the samples never arrive
        raise KeyboardInterrupt

    monkeypatch.setattr(soundfile.SoundFile, "write", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_file(tmp_path / "x.wav", tone(0.2), SR, AudioFormat().check())
    assert list(tmp_path.iterdir()) == []


def test_check_writable(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(BadInput, match="directory"):
        check_writable(tmp_path / "d", overwrite=True)
    (tmp_path / "f").write_text("x")
    with pytest.raises(BadInput, match="not a directory"):
        check_writable(tmp_path / "f" / "out.wav", overwrite=False)
    check_writable(tmp_path / "new" / "deep" / "out.wav", overwrite=False)
    if os.geteuid() != 0:
        (tmp_path / "ro").mkdir(mode=0o500)
        with pytest.raises(BadInput, match="permission"):
            check_writable(tmp_path / "ro" / "out.wav", overwrite=False)


def test_watermarking_many_clips_keeps_no_memory():
    """Perth with autograd on kept ~1.4 MB a call (84 MB over these 60); a server calls it
    for every piece it sends."""
    import gc

    import perth

    from chatterbox_cli.post.audio import watermark
    from chatterbox_cli.runtime.device import release_memory

    def rss_mb() -> float:
        with open("/proc/self/status") as f:
            return int(next(x for x in f if x.startswith("VmRSS")).split()[1]) / 1024

    marker = perth.PerthImplicitWatermarker()
    rng = np.random.default_rng(0)
    clips = [(rng.standard_normal(12000 + 480 * (i % 37)) * 0.1).astype(np.float32)
             for i in range(80)]  # fmt: skip
    for clip in clips[:20]:
        watermark(clip, 24000, marker)
    gc.collect()
    release_memory()
    before = rss_mb()
    for clip in clips[20:]:
        watermark(clip, 24000, marker)
    gc.collect()
    release_memory()
    assert rss_mb() - before < 25


def test_streamed_pcm16_holds_the_samples_a_wav_file_holds():
    """One PCM16 encoder (`say -o -`, the server's pcm and WAV streams) with the integers
    libsndfile writes into files, so a stream and a file of one audio are the same."""
    import io

    import soundfile as sf

    from chatterbox_cli.sinks.stream import StreamEncoder, pcm16

    rng = np.random.default_rng(0)
    x = np.concatenate([np.clip(0.3 * rng.standard_normal(48000), -1, 1), [1, -1, 0.5 / 32768]])
    x = x.astype(np.float32)
    buf = io.BytesIO()
    sf.write(buf, x, SR, format="WAV", subtype="PCM_16")
    buf.seek(0)
    in_file, _ = sf.read(buf, dtype="int16")
    assert np.array_equal(np.frombuffer(pcm16(x), "<i2"), in_file)
    enc = StreamEncoder("wav", SR)
    streamed = enc.feed(x[:1000]) + enc.feed(x[1000:]) + enc.close()
    assert np.array_equal(sf.read(io.BytesIO(streamed), dtype="int16")[0], in_file)
