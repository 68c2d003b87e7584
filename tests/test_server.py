"""`chatterbox serve`, first slice: a real uvicorn server on loopback around the session's
engine (random-weight Turbo), real HTTP with httpx."""

import hashlib
import io
import json
import socket
import time

import httpx
import numpy as np
import pytest
import soundfile as sf
from conftest import serving

from chatterbox_cli.sinks import provenance
from chatterbox_cli.sinks.verify import WATERMARK_MIN, detector

TOKEN = "s3cret"
BODY = {"input": "Hello over HTTP.", "seed": 3, "max_new_tokens": 30}


@pytest.fixture(scope="module")
def server(engine):
    with serving(engine, max_text_chars=200, api_token=TOKEN) as url:
        yield httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120)


@pytest.mark.parametrize("fmt", ["wav", "flac", "mp3", "opus"])
def test_speech_in_each_format_is_watermarked_and_says_what_made_it(server, fmt, tmp_path):
    r = server.post("/v1/audio/speech", json={**BODY, "response_format": fmt})
    assert r.status_code == 200, r.text
    audio, sr = sf.read(io.BytesIO(r.content), dtype="float32")
    assert sr == 24000 and len(audio) > 0
    assert detector().get_watermark(audio, sample_rate=sr) >= WATERMARK_MIN
    saved = tmp_path / f"reply.{fmt}"
    saved.write_bytes(r.content)
    made = json.loads(r.headers["x-chatterbox-provenance"])
    assert provenance.read(saved) == made
    assert made["model"] == "turbo" and made["seed"] == BODY["seed"]
    assert made["text_sha256"] == hashlib.sha256(BODY["input"].encode()).hexdigest()[:16]


def test_numbers_are_said_unless_normalize_is_false(server):
    """The spoken text's hash beside the written one's: equal only when nothing was put into
    words."""
    made = {}
    for normalize in (True, False):
        body = {**BODY, "input": "Room 101.", "normalize": normalize, "response_format": "wav"}
        r = server.post("/v1/audio/speech", json=body)
        assert r.status_code == 200, r.text
        made[normalize] = json.loads(r.headers["x-chatterbox-provenance"])
    assert made[False]["spoken_sha256"] == made[False]["text_sha256"]
    assert made[True]["spoken_sha256"] == provenance.text_hash("Room one hundred and one.")
    assert made[True]["text_sha256"] == made[False]["text_sha256"]


def test_a_reply_carries_what_say_records_and_verify_reads_it(server, cli, checkpoint, tmp_path):
    r = server.post("/v1/audio/speech", json={**BODY, "response_format": "wav"})
    reply = tmp_path / "reply.wav"
    reply.write_bytes(r.content)
    same = ("--seed", BODY["seed"], "--max-new-tokens", BODY["max_new_tokens"], "--json")
    said = cli("say", BODY["input"], "-o", tmp_path / "say.wav", "--model-dir", checkpoint, *same)
    assert said.exit_code == 0, said.output
    assert provenance.read(reply) == json.loads(said.stdout)["provenance"]
    checked = cli("verify", reply, "--json")
    assert checked.exit_code == 0, checked.output
    assert json.loads(checked.stdout.splitlines()[0])["provenance"] == provenance.read(reply)


def test_pcm_is_raw_16_bit_and_matches_wav(server):
    wav = server.post("/v1/audio/speech", json={**BODY, "response_format": "wav"})
    pcm = server.post("/v1/audio/speech", json={**BODY, "response_format": "pcm"})
    assert pcm.status_code == 200 and pcm.headers["content-type"] == "audio/pcm"
    samples, _ = sf.read(io.BytesIO(wav.content), dtype="int16")
    assert np.array_equal(np.frombuffer(pcm.content, "<i2"), samples)  # seeded: same audio
    header = "x-chatterbox-provenance"  # raw PCM has no tags: the record comes as a header
    assert json.loads(pcm.headers[header]) == json.loads(wav.headers[header])


def test_health_is_open_and_the_rest_needs_the_token(server):
    open_client = httpx.Client(base_url=server.base_url, timeout=30)
    health = open_client.get("/health")
    assert health.status_code == 200 and health.json()["model"] == "turbo"
    denied = open_client.post("/v1/audio/speech", json=BODY)
    assert denied.status_code == 401 and denied.json()["error"]["type"] == "authentication_error"


@pytest.mark.parametrize(
    "body,status,needle",
    [
        ({**BODY, "input": "x" * 201}, 413, "longer than 200"),
        ({**BODY, "input": "   "}, 400, "empty"),
        ({**BODY, "response_format": "aac"}, 400, "response_format"),
        ({**BODY, "speed": 4.5}, 400, "speed must be between 0.25 and 4"),
        ({**BODY, "instructions": "Speak softly."}, 400, "instructions"),
        ({**BODY, "voice": "ghost"}, 400, "ghost"),
        ({**BODY, "model": "tts-9"}, 400, "not loaded"),
        ({**BODY, "language": "fr"}, 400, "English only"),
        ({**BODY, "temperature": -1}, 400, "temperature"),
        ({**BODY, "temperature": 0}, 400, "temperature"),  # refused, as `say` does, not ignored
        ({"voice": "x"}, 400, "input"),
        ({**BODY, "bogus": 1}, 400, "bogus"),
    ],
)
def test_bad_requests_get_a_4xx_json_error_and_the_server_goes_on(server, body, status, needle):
    r = server.post("/v1/audio/speech", json=body)
    assert r.status_code == status, r.text
    assert needle in r.json()["error"]["message"]
    assert server.get("/health").status_code == 200


def test_malformed_json_is_a_400(server):
    r = server.post(
        "/v1/audio/speech", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 400 and "error" in r.json()


def test_serve_command_starts_serves_and_stops_on_sigterm(checkpoint, tmp_path):
    import os
    import signal
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    env = {k: v for k, v in os.environ.items() if k != "CHATTERBOX_API_TOKEN"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "chatterbox_cli", "serve", "--port", str(port), "--model-dir",
         str(checkpoint), "--api-token-file", str(token_file), "--grace", "60"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=env,
    )  # fmt: skip
    client = httpx.Client(
        base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=120,
    )  # fmt: skip
    signaled = False
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            try:
                if client.get("/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.3)
        r = client.post("/v1/audio/speech", json={**BODY, "response_format": "wav"})
        assert r.status_code == 200 and r.content[:4] == b"RIFF"
        # SIGTERM mid-stream: no new connections, the stream in flight still ends in full.
        text = "First part. Second part is here.\n\nThird part is the last."
        sse = {**BODY, "input": text, "stream_format": "sse", "response_format": "pcm"}
        with client.stream("POST", "/v1/audio/speech", json=sse) as stream:
            lines = stream.iter_lines()
            assert next(line for line in lines if line.startswith("data: "))
            proc.send_signal(signal.SIGTERM)
            signaled = True
            rest = [line for line in lines if line.startswith("data: ")]
        assert '"speech.audio.done"' in rest[-1] and '"groups": 3' in rest[-1]
        with pytest.raises(httpx.TransportError):
            client.get("/health")
    finally:
        if not signaled:  # a second signal would mean "stop now", not "shut down gracefully"
            proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "Traceback" not in err and out == ""


def test_serve_refuses_bad_flags_before_loading(cli, tmp_path):
    r = cli("serve", "--api-token-file", tmp_path / "missing")
    assert r.exit_code == 2 and "does not exist" in r.stderr
    r = cli("serve", "--port", "70000")
    assert r.exit_code == 2 and "--port" in r.stderr


def test_the_openai_client_gets_audio(server):
    from openai import BadRequestError, OpenAI

    client = OpenAI(base_url=f"{server.base_url}/v1", api_key=TOKEN)
    reply = client.audio.speech.create(
        model="chatterbox", voice="default", input="Hello from the client.",
        response_format="flac", extra_body={"seed": 3, "max_new_tokens": 30},
    )  # fmt: skip
    audio, sr = sf.read(io.BytesIO(reply.content), dtype="float32")
    assert sr == 24000 and detector().get_watermark(audio, sample_rate=sr) >= WATERMARK_MIN
    fast = client.audio.speech.create(
        model="chatterbox", voice="default", input="Hello from the client.", speed=2.0,
        response_format="flac", extra_body={"seed": 3, "max_new_tokens": 30},
    )  # fmt: skip
    fast, _ = sf.read(io.BytesIO(fast.content), dtype="float32")
    assert len(fast) == pytest.approx(len(audio) / 2, abs=0.03 * sr)  # Perth keeps 20 ms frames
    assert detector().get_watermark(fast, sample_rate=sr) >= WATERMARK_MIN
    with pytest.raises(BadRequestError, match="speed must be between 0.25 and 4"):
        client.audio.speech.create(model="chatterbox", voice="default", input="Hi.", speed=5.0)


@pytest.mark.parametrize("fmt", ["wav", "mp3", "opus", "flac", "pcm"])
def test_curl_gets_valid_audio(server, fmt, tmp_path):
    import json
    import shutil
    import subprocess

    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    out = tmp_path / f"reply.{fmt}"
    body = json.dumps({**BODY, "response_format": fmt})
    subprocess.run(
        ["curl", "-sf", f"{server.base_url}/v1/audio/speech", "-o", str(out), "-d", body,
         "-H", f"Authorization: Bearer {TOKEN}", "-H", "Content-Type: application/json"],
        check=True, timeout=120,
    )  # fmt: skip
    if fmt == "pcm":
        audio = np.fromfile(out, "<i2").astype(np.float32) / 32768
    else:
        audio, _ = sf.read(out, dtype="float32")
    assert len(audio) > 0 and detector().get_watermark(audio, sample_rate=24000) >= WATERMARK_MIN
