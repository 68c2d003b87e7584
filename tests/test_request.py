"""One request object from every front-end to the decode loop (`synth/request.py`): a knob a
family takes reaches its decode through the request alone, and the limits are the same
wherever a request comes from, each named as that caller spells it."""

import json

import pytest

from chatterbox_cli.models import FAMILIES, TURBO, register
from chatterbox_cli.models.turbo import Turbo
from chatterbox_cli.runtime.errors import BadInput
from chatterbox_cli.synth.request import SpeechRequest

SEEN: list = []
"""Every row's sampling the probe family's decode loops were handed."""


class Probe(Turbo):
    """A test-only family: Turbo, that also takes `min_p` and records what its loops get."""

    name = "probe"
    listed = False
    knobs = Turbo.knobs | {"min_p"}

    def decode(self, t3, row, run):
        SEEN.append(row.params)
        return super().decode(t3, row, run)

    def decode_batch(self, t3, rows, run):
        SEEN.extend(r.params for r in rows)
        return super().decode_batch(t3, rows, run)


@pytest.mark.parametrize(
    "args",
    [
        ["say", "Hi there."],
        ["batch", "rows.csv", "-d", "out"],
        ["book", "book.txt"],
    ],
)
@pytest.mark.parametrize(
    "flag,value,message",
    [
        ("--retries", "11", "--retries must be between 0 and 10"),
        ("--retries", "1000", "--retries must be between 0 and 10"),
        ("--max-new-tokens", "1001", "--max-new-tokens must be between 1 and 1000"),
        ("--lufs", "0", "--lufs must be between -70 and -5"),
    ],
)
def test_limits_are_the_same_on_every_command(cli, tmp_path, monkeypatch, args, flag, value,
                                              message):  # fmt: skip
    """`book --retries 1000` used to pass unchecked; every command now checks one request."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rows.csv").write_text("text\nOne row.\n")
    (tmp_path / "book.txt").write_text("A book of one line.\n")
    r = cli(*args, flag, value)
    assert r.exit_code == 2 and message in r.stderr, r.output
    assert "Traceback" not in r.output and not (tmp_path / "out").exists()


def test_the_library_names_options_as_python_does():
    """The same checks from Python (and the server, and batch columns) name `top_k`, not a
    flag: the caller's own spelling."""
    cases = [
        (dict(retries=11), "retries must be between 0 and 10"),
        (dict(max_new_tokens=1001), "max_new_tokens must be between 1 and 1000"),
        (dict(max_new_tokens=0), "max_new_tokens must be between 1 and 1000"),
        (dict(top_k=-1), "top_k must be >= 0"),
        (dict(exaggeration=0.7), "exaggeration is not used by the turbo model"),
        (dict(cfm_steps=3), "cfm_steps must be between 1 and 2"),
        (dict(lufs=0), "lufs must be between -70 and -5"),
        (dict(pause_s=9), "pause_s must be between 0 and 5"),
        (dict(language="de"), "for language de use model multilingual"),
        (dict(stream_tokens=10), "stream_tokens is for streaming"),
    ]
    for given, message in cases:
        with pytest.raises(BadInput) as caught:
            SpeechRequest("Hi.", **given).plan(TURBO)
        assert message in str(caught.value), (given, str(caught.value))
        assert "--" not in str(caught.value)
    with pytest.raises(BadInput, match="unknown option 'temprature'"):
        SpeechRequest.of("Hi.", temprature=0.5)
    plan = SpeechRequest("One. [pause:1s] Two.", top_k=5, max_new_tokens=7).plan(TURBO)
    assert [g.text for g in plan.groups] == ["One.", "Two."]
    assert plan.options.sampling.top_k == 5 and plan.options.cap(plan.groups[1]) == 7
    plain = SpeechRequest("A [pause:1s] literal.", markup=False).plan(TURBO)
    assert [g.text for g in plain.groups] == ["A [pause:1s] literal."]


@pytest.fixture(scope="module")
def probe():
    register(Probe())
    try:
        yield FAMILIES["probe"]
    finally:
        del FAMILIES["probe"]


def _min_ps() -> list[float]:
    seen = sorted({p.min_p for p in SEEN})
    SEEN.clear()
    return seen


def test_a_new_knob_reaches_the_decode_loop_from_every_front_end(probe, checkpoint, cli, tmp_path):
    """`min_p` for the probe family only: given to the API (say, stream), `say`, `batch` (flag
    and column), `book`, the server and the WebSocket, it reaches `Family.decode` in the row's
    sampling, through the request and nothing else."""
    import httpx
    from conftest import serving
    from websockets.sync.client import connect

    from chatterbox_cli import Synthesizer

    SEEN.clear()
    tts = Synthesizer("probe", model_dir=checkpoint, device="cpu")
    tts.say("Hi there.", min_p=0.11, max_new_tokens=4, retries=0)
    assert _min_ps() == [0.11]
    list(tts.stream("Hi there.", min_p=0.12, max_new_tokens=4))
    assert _min_ps() == [0.12]
    with pytest.raises(BadInput, match="retries must be between 0 and 10"):
        tts.say("Hi there.", retries=11)
    with pytest.raises(BadInput, match="exaggeration is not used by the probe model"):
        tts.say("Hi there.", exaggeration=0.7)

    common = ("--model", "probe", "--model-dir", checkpoint, "--max-new-tokens", 4)
    r = cli("say", "Hi there.", "-o", tmp_path / "a.wav", "--min-p", 0.13, "--retries", 0,
            *common)  # fmt: skip
    assert r.exit_code == 0, r.output
    assert _min_ps() == [0.13]
    rows = tmp_path / "rows.csv"
    rows.write_text("text,min_p\nOne row.,0.15\nAnother row.,\n")
    r = cli("batch", rows, "-d", tmp_path / "out", "--min-p", 0.14, "--retries", 0, *common)
    assert r.exit_code == 0, r.output
    assert _min_ps() == [0.14, 0.15]
    book = tmp_path / "book.txt"
    book.write_text("A book of one short line.\n")
    r = cli("book", book, "-o", tmp_path / "b.m4b", "--min-p", 0.16, "--retries", 0, *common)
    assert r.exit_code == 0, r.output
    assert _min_ps() == [0.16]

    with serving(tts.engine) as url:
        body = {"input": "Hi there.", "min_p": 0.17, "max_new_tokens": 4, "response_format": "wav"}
        r = httpx.post(f"{url}/v1/audio/speech", json=body, timeout=120)
        assert r.status_code == 200, r.text
        assert _min_ps() == [0.17]
        r = httpx.post(f"{url}/v1/audio/speech", json={**body, "max_new_tokens": 1001})
        assert r.status_code == 400
        assert "max_new_tokens must be between 1 and 1000" in r.json()["error"]["message"]
        with connect(url.replace("http", "ws") + "/v1/audio/stream", open_timeout=30) as ws:
            assert json.loads(ws.recv(timeout=30))["type"] == "ready"
            said = {k: v for k, v in body.items() if k != "response_format"}
            ws.send(json.dumps({"type": "say", "id": "a", **said, "min_p": 0.18}))
            kinds: list[str] = []
            while not kinds or kinds[-1] not in ("done", "error"):
                msg = json.loads(ws.recv(timeout=300))
                kinds.append(msg["type"])
                if msg["type"] == "chunk":
                    ws.recv(timeout=30)
            assert kinds[-1] == "done", kinds
        assert _min_ps() == [0.18]
