"""`[pause]`, `[voice]` markup and `--lexicon` in `say` (file and stream), the Python API,
`batch` and the server, on the random Turbo checkpoint: the silence lands where the markup puts
it, a `[voice]` stretch is spoken with that voice's conditionals (its tokens equal a run in that
voice), the lexicon rewrites what is said, and bad markup is a one-line refusal."""

from __future__ import annotations

import io
import json

import httpx
import numpy as np
import pytest
import soundfile as sf
from conftest import serving

SR = 24000
CAP = dict(max_new_tokens=8, seed=5)


def silences(audio: np.ndarray, at_least_s: float = 0.3) -> list[tuple[float, float]]:
    """(start, length) in seconds of every near-silent run of at least `at_least_s`."""
    quiet = np.concatenate([[False], np.abs(audio) < 1e-3, [False]])
    edges = np.flatnonzero(np.diff(quiet.astype(np.int8)))
    runs = [(a / SR, (b - a) / SR) for a, b in zip(edges[::2], edges[1::2], strict=True)]
    return [r for r in runs if r[1] >= at_least_s]


def assert_silences(audio: np.ndarray, expected: list[float]) -> list[tuple[float, float]]:
    """The audio's silences are `expected` long (fades at their edges: +-60 ms)."""
    runs = silences(audio)
    assert len(runs) == len(expected), runs
    for (_, length), want in zip(runs, expected, strict=True):
        assert abs(length - want) < 0.06, runs
    return runs


@pytest.fixture(scope="module")
def tts(checkpoint):
    from chatterbox_cli import Synthesizer

    return Synthesizer("turbo", model_dir=checkpoint, device="cpu")


def test_pauses_and_a_voice_stretch_in_say_and_stream(tts, reference_wav):
    clip = str(reference_wav)
    text = f"[pause:0.5s]One two three. [pause:1.2s] [voice:{clip}]Four five six.[/voice][pause:1s]"
    audio = tts.say(text, **CAP)
    assert [g.text for g in audio.groups] == ["One two three.", "Four five six."]
    runs = assert_silences(audio.samples, [0.5, 1.2, 1.0])
    assert runs[0][0] == 0 and runs[-1][0] + runs[-1][1] == pytest.approx(audio.duration_s)
    streamed = list(tts.stream(text, **CAP))
    assert_silences(np.concatenate([c.samples for c in streamed]), [0.5, 1.2, 1.0])


def test_a_voice_stretch_uses_that_voice(tts, cli, checkpoint, reference_wav):
    """Group 0 decodes as in the default voice, so the RNG is where it was for group 1: its
    tokens change only because its voice did. A cached voice of the same clip, named in the
    markup, gives the same tokens as the clip."""
    clip = str(reference_wav)
    r = cli("voice", "cache", clip, "--name", "ann", "--model-dir", checkpoint, "-q")
    assert r.exit_code == 0, r.output

    def tokens(text: str) -> list[list[int]]:
        seen = []
        tts.say(text, retries=0, on_chunk=lambda c: seen.append(c.speech_tokens), **CAP)
        return seen

    default = tokens("One two three. [pause:0.3s] Four five six.")
    marked = tokens(f"One two three. [pause:0.3s] [voice:{clip}]Four five six.[/voice]")
    named = tokens("One two three. [pause:0.3s] [voice:ann]Four five six.[/voice]")
    assert marked[0] == default[0] and len(marked[1]) == 8
    assert marked[1] != default[1] and named == marked


def test_say_lexicon_and_refusals(cli, checkpoint, tmp_path):
    words = tmp_path / "words.tsv"
    words.write_text("Nguyen\tWin\nSQL\tsequel\n")
    out = tmp_path / "said.wav"
    r = cli(
        "say", "Mr. Nguyen likes SQL. [laugh] sql stays.", "-o", out, "--lexicon", words,
        "--model-dir", checkpoint, "--max-new-tokens", "8", "--device", "cpu", "--json",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    said = " ".join(g["text"] for g in json.loads(r.stdout)["groups"])
    assert said == "Mr. Win likes sequel. [laugh] sql stays."
    for args, needle in [
        (["Hi [pause:soon] there."], "write a length like [pause:1.5s]"),
        (["Hi [voice:nobody]there[/voice]."], "nobody"),
        (["Hi.", "--lexicon", tmp_path / "missing.tsv"], "cannot read lexicon"),
    ]:
        r = cli("say", *args, "-o", tmp_path / "x.wav", "--model-dir", checkpoint)
        assert r.exit_code != 0 and needle in r.output, r.output
        assert "Traceback" not in r.output and not (tmp_path / "x.wav").exists()


def test_batch_rows_with_markup_and_lexicon(cli, checkpoint, tmp_path, reference_wav):
    rows = tmp_path / "rows.jsonl"
    lines = [
        {"id": "marked", "text": f"Hello Nguyen. [pause:1s] [voice:{reference_wav}]Bye.[/voice]"},
        {"id": "bad", "text": "Broken [pause:forever] pause."},
    ]
    rows.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    words = tmp_path / "words.tsv"
    words.write_text("Nguyen\tWin\n")
    args = ["--model-dir", checkpoint, "--max-new-tokens", "8", "--device", "cpu"]
    refused = cli("batch", rows, "-d", tmp_path / "out", *args)
    assert refused.exit_code != 0 and "rows.jsonl:2: [pause:forever]" in refused.output
    r = cli("batch", rows, "-d", tmp_path / "out", "--lexicon", words, "--skip-invalid", *args)
    assert r.exit_code == 0, r.output
    records = [
        json.loads(x) for x in (tmp_path / "out" / "manifest.jsonl").read_text().splitlines()
    ]
    assert [rec["status"] for rec in records] == ["ok"]
    audio, sr = sf.read(tmp_path / "out" / "marked.wav", dtype="float32")
    assert_silences(audio, [1.0])


def test_server_markup_voices_and_lexicon(engine, voices_dir, reference_wav):
    import threading

    from chatterbox_cli.server.session import Speech, Voices, plan
    from chatterbox_cli.server.state import ServeOptions
    from chatterbox_cli.text.markup import Lexicon

    options = ServeOptions(lexicon=Lexicon({"Nguyen": "Win"}))
    p = plan(engine, Speech(input="Hi Nguyen. [pause:0.7s] Bye."), Voices(engine, None),
             options, threading.Lock())  # fmt: skip
    assert [g.text for g in p.groups] == ["Hi Win.", "Bye."] and p.groups[1].lead_s == 0.7

    with serving(engine, max_text_chars=500) as url:
        clip = reference_wav.read_bytes()
        r = httpx.post(f"{url}/v1/voices", data={"name": "ann"}, timeout=120,
                       files={"file": ("ann.wav", clip, "audio/wav")})  # fmt: skip
        assert r.status_code == 201, r.text
        body = {"input": "Hello. [pause:1s] [voice:ann]Bye now.[/voice]", "max_new_tokens": 8,
                "seed": 2, "response_format": "wav"}  # fmt: skip
        r = httpx.post(f"{url}/v1/audio/speech", json=body, timeout=120)
        assert r.status_code == 200, r.text
        audio, _ = sf.read(io.BytesIO(r.content), dtype="float32")
        assert_silences(audio, [1.0])
        body["input"] = "Hello. [voice:ghost]Who?[/voice]"
        r = httpx.post(f"{url}/v1/audio/speech", json=body, timeout=120)
        assert r.status_code == 400 and "ghost" in r.json()["error"]["message"]
