"""The Python API (`from chatterbox_cli import Synthesizer`): the same checks, guard, loudness,
watermark and provenance as `say`, whose file it must equal byte for byte."""

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from chatterbox_cli.runtime.errors import BadInput, ChatterboxError
from chatterbox_cli.sinks import provenance
from chatterbox_cli.text.segment import split_groups

TEXT = "The library speaks. It says what the command says. " * 3
"""Two sentence groups for a file (three sentences each), three when streamed (short first)."""
FAST = dict(max_new_tokens=12, seed=3)


def test_import_is_lazy_and_light():
    """`import chatterbox_cli` loads neither torch nor the API; naming `Synthesizer` loads
    the API, still without torch (that comes with a model)."""
    code = (
        "import sys, chatterbox_cli; a = 'chatterbox_cli.api' in sys.modules; "
        "s = chatterbox_cli.Synthesizer; print(a, 'torch' in sys.modules, s.__name__)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.split() == ["False", "False", "Synthesizer"]


def test_bad_arguments_are_refused_before_loading(tmp_path):
    from chatterbox_cli import Synthesizer

    with pytest.raises(BadInput, match="unknown model 'nope'"):
        Synthesizer("nope")
    with pytest.raises(ChatterboxError, match="lacks"):
        Synthesizer("turbo", model_dir=tmp_path)
    with pytest.raises(BadInput, match="--pack"):
        Synthesizer("turbo", pack="pt-br")


@pytest.fixture(scope="module")
def tts(checkpoint):
    from chatterbox_cli import Synthesizer

    return Synthesizer("turbo", model_dir=checkpoint, device="cpu")


def test_say_returns_finished_audio_equal_to_the_cli(tts, checkpoint, cli, tmp_path, detector):
    audio = tts.say(TEXT, **FAST)
    assert audio.samples.dtype == np.float32 and audio.sample_rate == 24000
    assert audio.duration_s == pytest.approx(len(audio.samples) / 24000)
    assert [g.index for g in audio.groups] == [0, 1] and audio.ttfa_s is not None
    assert [g.text for g in audio.groups] == [g.text for g in split_groups(TEXT)]
    assert detector.get_watermark(audio.samples, sample_rate=24000) > 0.5
    assert audio.provenance["seed"] == 3 and audio.provenance["voice"].startswith("builtin:")
    saved = audio.save(tmp_path / "api.flac")
    assert provenance.read(saved)["text_sha256"] == audio.provenance["text_sha256"]
    said = "\n".join(g.text for g in audio.groups)
    assert audio.provenance["spoken_sha256"] == provenance.text_hash(said)
    with pytest.raises(BadInput, match="exists"):
        audio.save(saved)
    r = cli("say", TEXT, "-o", tmp_path / "cli.wav", "--model-dir", checkpoint,
            "--max-new-tokens", 12, "--seed", 3, "--json")  # fmt: skip
    assert r.exit_code == 0, r.output
    from_cli, _ = sf.read(tmp_path / "cli.wav", dtype="float32")
    api_wav = audio.save(tmp_path / "api.wav")
    assert np.array_equal(sf.read(api_wav, dtype="float32")[0], from_cli)
    assert json.loads(r.stdout)["provenance"]["text_sha256"] == audio.provenance["text_sha256"]


def test_stream_yields_finished_chunks_in_order(tts, detector):
    seen = []
    chunks = list(tts.stream(TEXT, on_chunk=seen.append, **FAST))
    groups = split_groups(TEXT, short_first=True)
    assert [c.text for c in chunks] == [g.text for g in groups] and len(groups) == 3
    assert all(c.last for c in chunks) and [c.group.index for c in seen] == [0, 1, 2]
    whole = np.concatenate([c.samples for c in chunks])
    assert len(chunks[1].samples) > len(seen[1].audio)  # the pause before group 1 leads it
    assert detector.get_watermark(whole, sample_rate=24000) > 0.5
    pieces = list(tts.stream(TEXT, stream_tokens=4, **FAST))
    assert len(pieces) > 3 and [p.last for p in pieces].count(True) == 3


def test_knobs_are_checked_as_the_cli_checks_them(tts):
    with pytest.raises(BadInput, match="exaggeration is not used by the turbo model"):
        tts.say(TEXT, exaggeration=0.7, **FAST)
    with pytest.raises(BadInput, match="unknown option 'temprature'"):
        tts.say(TEXT, temprature=0.5, **FAST)
    with pytest.raises(BadInput, match="speaks English only"):
        tts.say(TEXT, language="de", **FAST)
    with pytest.raises(BadInput, match="empty"):
        tts.say("   ", **FAST)
