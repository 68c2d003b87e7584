"""`say -o -`: each group's audio streams to stdout as soon as it exists."""

import io

import numpy as np
import pytest
import soundfile as sf

from chatterbox_cli.text import FIRST_GROUP_CHARS, split_groups

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


@pytest.fixture(scope="module")
def detector():
    import perth

    return perth.PerthImplicitWatermarker()


def test_stdout_wav_matches_file_length_and_is_watermarked(cli, checkpoint, tmp_path, detector):
    args = ("say", TEXT, "--model-dir", checkpoint, "--seed", 4, "--max-new-tokens", 30)
    streamed = cli(*args, "-o", "-", "-q")
    assert streamed.exit_code == 0, streamed.stderr
    wav, sr = sf.read(io.BytesIO(streamed.stdout_bytes), dtype="float32")
    assert sr == 24000 and wav.ndim == 1

    # The same groups written to a file: same length, pauses in the same places.
    from chatterbox_cli.engine import ModelSource, SamplingParams, load_engine
    from chatterbox_cli.pipeline import RenderOptions, render

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
    from chatterbox_cli.errors import BadInput

    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    with pytest.raises(BadInput, match="terminal"):
        check_stream_args(True, None, "PCM_16", False)
