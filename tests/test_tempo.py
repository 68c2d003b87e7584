"""Speed (`--speed`, `speed`): FFmpeg's atempo through PyAV keeps a tone's pitch and scales its
length by 1/speed, in pieces as in one go and without a click at the seams; out-of-range
values are refused as each caller spells them; through the real pipeline the speech scales,
the pauses keep their length and the watermark survives."""

from types import SimpleNamespace

import numpy as np
import pytest

from chatterbox_cli.post.tempo import Stretcher, stages, stretch
from chatterbox_cli.runtime.errors import BadInput
from chatterbox_cli.synth.request import OPENAI_SPEEDS, SpeechRequest, check_speed

SR = 24000
HZ = 440.0
AMP = 0.5
STEP = 2 * np.pi * HZ / SR
"""A sine's largest sample-to-sample change, per unit of amplitude: a click jumps far past it."""


def tone(seconds: float = 2.0) -> np.ndarray:
    return (AMP * np.sin(2 * np.pi * HZ * np.arange(int(seconds * SR)) / SR)).astype(np.float32)


def pitch(audio: np.ndarray) -> float:
    """The strongest frequency (Hann window, FFT zero-padded to 1/8 of a bin)."""
    n = 8 * len(audio)
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio)), n))
    return float(np.argmax(spectrum)) * SR / n


def jump(audio: np.ndarray) -> float:
    """The largest sample-to-sample change, per unit of the audio's peak."""
    return float(np.max(np.abs(np.diff(audio))) / np.max(np.abs(audio)))


@pytest.mark.parametrize("speed", [0.5, 1.5, 2.0, *OPENAI_SPEEDS])
def test_a_tone_keeps_its_pitch_and_its_length_scales(speed):
    audio = stretch(tone(), SR, speed)
    assert pitch(audio) == pytest.approx(HZ, rel=0.01)
    assert len(audio) == pytest.approx(2.0 * SR / speed, rel=0.03)
    assert jump(audio) <= 1.05 * STEP
    assert np.prod(stages(speed)) == pytest.approx(speed)
    assert all(0.5 <= s <= 2.0 for s in stages(speed))


@pytest.mark.parametrize("speed", [0.5, 1.5, 2.0])
def test_pieces_are_stretched_as_one_signal(speed):
    """Streamed in uneven pieces: the same samples as in one go, no seam, and (with
    `min_out`, for Perth) no piece too short to watermark but the last."""
    whole = tone()
    cuts = np.cumsum(np.random.default_rng(1).integers(500, 6000, 40))
    pieces = [p for p in np.split(whole, cuts[cuts < len(whole)]) if len(p)]
    stretcher = Stretcher(SR, speed, min_out=1200)
    out = [stretcher.push(p, last=i == len(pieces) - 1) for i, p in enumerate(pieces)]
    joined = np.concatenate(out)
    assert np.array_equal(joined, stretch(whole, SR, speed))
    assert jump(joined) <= 1.05 * STEP
    assert all(len(o) == 0 or len(o) >= 1200 for o in out[:-1])


def test_speed_1_processes_nothing():
    audio = tone(0.1)
    assert stretch(audio, SR, 1.0) is audio
    assert Stretcher(SR, 1.0, min_out=10**6).push(audio) is audio


def test_a_stretched_stream_keeps_its_pauses_and_has_no_seams():
    """`StreamLeveler` (the streams' and the server's path) on two groups of tone, the first
    in token pieces: each group stretched as one signal, the pause between as asked, every
    piece long enough for Perth (a stand-in here that checks the length)."""
    from chatterbox_cli.synth.chunk import Synthesized
    from chatterbox_cli.synth.pipeline import StreamLeveler
    from chatterbox_cli.synth.request import RenderOptions
    from chatterbox_cli.text.segment import TextGroup

    def mark(wav, sample_rate):
        assert len(wav) >= 769  # Perth's least (post/audio.py MIN_MARK_S)
        return wav

    groups = [TextGroup(0, "one", 0), TextGroup(1, "two", 0)]
    speed, pause = 2.0, 0.3
    opts = RenderOptions(pause_s=pause, speed=speed)
    leveler = StreamLeveler(SR, groups, opts, SimpleNamespace(apply_watermark=mark))
    first, second = tone(2.0), tone(1.0)
    chunks = [
        Synthesized(groups[0], first[i : i + 3840], SR, [], True, 0, 0, 0, 0, 0, 0,
                    last=i + 3840 >= len(first), offset=i)
        for i in range(0, len(first), 3840)
    ] + [Synthesized(groups[1], second, SR, [], True, 0, 0, 0, 0, 0, 0)]  # fmt: skip
    out = np.concatenate([p for c in chunks for p in leveler.pieces(c)])
    silent = np.abs(out) < 1e-6
    n = int(0.25 * SR)
    start = int(np.argmax(np.convolve(silent, np.ones(n), "valid") == n))
    end = start + int(np.argmin(silent[start:]))
    assert end - start == pytest.approx(pause * SR, abs=3)
    for seconds, part in ((2.0, out[:start]), (1.0, out[end:])):
        assert len(part) == pytest.approx(seconds * SR / speed, rel=0.03)
        assert jump(part) <= 1.05 * STEP


def test_out_of_range_is_refused_as_each_caller_spells_it(cli, tmp_path):
    from chatterbox_cli.cli.options import flag
    from chatterbox_cli.models import get

    family = get("turbo")
    with pytest.raises(BadInput, match=r"^speed must be between 0.5 and 2 "):
        SpeechRequest("Hi.", speed=2.5).options(family)
    with pytest.raises(BadInput, match=r"^--speed must be between 0.5 and 2 "):
        SpeechRequest("Hi.", speed=0.4).plan(family, flag)
    assert SpeechRequest("Hi.", speed=4.0).options(family, speeds=OPENAI_SPEEDS).speed == 4.0
    with pytest.raises(BadInput, match=r"^speed must be between 0.25 and 4 "):
        check_speed(float("nan"), bounds=OPENAI_SPEEDS)
    for args in (("say", "Hi.", "-o", tmp_path / "hi.wav", "--speed", "3"),
                 ("convert", tmp_path / "none.wav", "--speed", "0.1"),
                 ("batch", tmp_path / "none.txt", "-d", tmp_path, "--speed", "2.5")):  # fmt: skip
        r = cli(*args)
        err = r.stderr.strip()
        assert r.exit_code == 2 and "\n" not in err and "--speed must be between" in err, err
    assert not list(tmp_path.iterdir())


PAUSED = "The speed changes here. [pause:1s] The pitch stays where it was."
"""Two groups with one second between them: speech stretches, the pause does not."""


def test_speech_scales_pauses_keep_and_the_mark_holds(engine, detector):
    """Said once at 2x; its engine chunks (the same seed's speech) finished again at 1x, 0.5x
    and 1.5x on the path every file and buffered reply takes."""
    from chatterbox_cli import Synthesizer
    from chatterbox_cli.synth.pipeline import finish

    chunks: list = []
    fast = Synthesizer.of(engine).say(
        PAUSED, on_chunk=chunks.append, speed=2.0, seed=5, max_new_tokens=40, retries=0
    )
    assert [g.audio_s for g in fast.groups] == pytest.approx([c.duration_s / 2 for c in chunks])
    assert detector.get_watermark(fast.samples, sample_rate=SR) > 0.5
    base = finish(engine, chunks, 0.2, -27.0).audio
    speech = len(base) / SR - 1.0
    assert fast.duration_s - 1.0 == pytest.approx(speech / 2, rel=0.03)
    for speed in (0.5, 1.5):
        marked = finish(engine, chunks, 0.2, -27.0, speed).audio
        assert len(marked) / SR - 1.0 == pytest.approx(speech / speed, rel=0.03)
        assert detector.get_watermark(marked, sample_rate=SR) > 0.5


def test_audio_too_short_for_perth_is_marked_at_its_length(detector):
    """A group stretched to almost nothing (a stop-at-once group at 4x) still gets its mark:
    under Perth's floor it is padded for the mark and cut back."""
    from chatterbox_cli.post.audio import watermark

    for n in (0, 1, 500, 768):
        assert len(watermark(tone(1.0)[:n], SR, detector)) == n
