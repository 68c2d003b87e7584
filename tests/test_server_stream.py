"""`chatterbox serve` streaming, WebSocket, voices and metrics: a real uvicorn server on
loopback around the session's random-weight Turbo engine, spoken to over real HTTP."""

import base64
import io
import json
import time

import httpx
import numpy as np
import pyloudnorm
import pytest
import soundfile as sf
from conftest import serving

from chatterbox_cli.post.audio import DEFAULT_LUFS
from chatterbox_cli.sinks.verify import WATERMARK_MIN, detector

TWO_GROUPS = "The first sentence is here. And then a second one follows it."
BODY = {"input": TWO_GROUPS, "seed": 5, "max_new_tokens": 30}


@pytest.fixture(scope="module")
def url(engine):
    with serving(engine, max_text_chars=500) as base:
        yield base


def marked(audio: np.ndarray) -> bool:
    return detector().get_watermark(audio, sample_rate=24000) >= WATERMARK_MIN


def pcm(data: bytes) -> np.ndarray:
    return np.frombuffer(data, "<i2").astype(np.float32) / 32768


def queue(base: str) -> int:
    return httpx.get(f"{base}/health").json()["queue"]


def test_streamed_wav_starts_before_the_request_ends_and_is_marked_at_the_target(url):
    pieces, depth_at_first = [], None
    body = {**BODY, "response_format": "wav", "stream_format": "audio"}
    with httpx.stream("POST", f"{url}/v1/audio/speech", json=body, timeout=120) as r:
        assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
        assert "content-length" not in r.headers  # chunked, not buffered
        for piece in r.iter_raw():
            if depth_at_first is None:
                depth_at_first = queue(url)  # the request is still being synthesized
            pieces.append(piece)
    assert depth_at_first == 1
    body = b"".join(pieces)
    audio, sr = sf.read(io.BytesIO(body), dtype="float32")
    assert sr == 24000 and len(audio) > 24000
    assert marked(audio)
    lufs = pyloudnorm.Meter(sr).integrated_loudness(audio)
    assert abs(lufs - DEFAULT_LUFS) < 3  # gain fixed from the first group, as `say -o -`


@pytest.mark.parametrize("fmt", ["mp3", "opus", "flac"])
def test_streamed_compressed_formats_decode(url, fmt):
    body = {**BODY, "response_format": fmt, "stream_format": "audio"}
    with httpx.stream("POST", f"{url}/v1/audio/speech", json=body, timeout=120) as r:
        assert r.status_code == 200
        body = r.read()
    with sf.SoundFile(io.BytesIO(body)) as f:
        audio = read_forward(f)
    assert len(audio) > 24000 and marked(audio)


def read_forward(f) -> np.ndarray:
    """Decode as a streaming player does, never seeking: python-soundfile seeks after every
    read, which libsndfile refuses for a FLAC stream whose length header says "unknown"."""
    from soundfile import _ffi, _snd

    buf, out = np.empty(4096, np.float32), []
    while (n := _snd.sf_readf_float(f._file, _ffi.cast("float *", buf.ctypes.data), 4096)) > 0:
        out.append(buf[:n].copy())
    return np.concatenate(out)


def test_sse_sends_base64_deltas_and_a_final_stats_event(url):
    r = httpx.post(f"{url}/v1/audio/speech", timeout=120,
                   json={**BODY, "response_format": "pcm", "stream_format": "sse"})  # fmt: skip
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: ")]
    deltas = [e for e in events if e["type"] == "speech.audio.delta"]
    assert len(deltas) >= 2 and events[-1]["type"] == "speech.audio.done"
    stats = events[-1]["stats"]
    assert stats["groups"] == 2 and stats["ttfa_s"] <= stats["elapsed_s"]
    audio = pcm(b"".join(base64.b64decode(e["audio"]) for e in deltas))
    assert abs(len(audio) / 24000 - stats["audio_s"]) < 0.05 and marked(audio)


def test_websocket_runs_two_requests_on_one_socket_and_cancels_one(url):
    from websockets.sync.client import connect

    got: dict[str, bytearray] = {"a": bytearray(), "b": bytearray()}
    ends: dict[str, dict] = {}
    long = {"input": "\n\n".join(["A long paragraph."] * 5), "max_new_tokens": 100}
    with connect(url.replace("http", "ws") + "/v1/audio/stream", open_timeout=30) as ws:
        ws.send(json.dumps({"type": "say", "id": "a", **BODY}))
        ws.send(json.dumps({"type": "say", "id": "b", **long}))
        ws.send(b"\x00\xffgarbage")
        ws.send("{not json")
        errors, cancelled_sent = [], False
        while len(ends) < 2:
            msg = json.loads(ws.recv(timeout=120))
            if msg["type"] == "chunk":
                data = ws.recv(timeout=30)
                assert isinstance(data, bytes) and len(data) == msg["bytes"]
                got[msg["id"]] += data
                if msg["id"] == "b" and not cancelled_sent:
                    ws.send(json.dumps({"type": "cancel", "id": "b"}))
                    cancelled_sent = True
            elif msg["type"] == "done":
                ends[msg["id"]] = msg
            elif msg["type"] == "error":
                errors.append(msg)
        assert ends["b"].get("cancelled") is True
        assert ends["a"]["stats"]["groups"] == 2
        assert [e["status"] for e in errors] == [400, 400]  # both bad frames, socket still open
        ws.send(json.dumps({"type": "say", "id": "c", "input": 5}))
        assert json.loads(ws.recv(timeout=30))["status"] == 400
    a = pcm(bytes(got["a"]))
    assert len(a) / 24000 == pytest.approx(ends["a"]["stats"]["audio_s"], abs=0.05) and marked(a)
    stopped = ends["b"]["stats"]
    assert stopped["groups_total"] == 5 and stopped["groups"] < 5
    assert len(got["b"]) / 48000 == pytest.approx(stopped["audio_s"], abs=0.05)
    deadline = time.monotonic() + 60
    while queue(url) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert queue(url) == 0


def test_websocket_refuses_a_wrong_token(engine):
    from websockets.exceptions import InvalidStatus, WebSocketException
    from websockets.sync.client import connect

    with serving(engine, api_token="tok") as base:
        ws_url = base.replace("http", "ws") + "/v1/audio/stream"
        with pytest.raises((InvalidStatus, WebSocketException)):
            with connect(ws_url, open_timeout=10) as ws:
                ws.recv(timeout=10)
        with connect(ws_url + "?token=tok", open_timeout=10) as ws:
            assert json.loads(ws.recv(timeout=10))["type"] == "ready"
            ws.send(json.dumps({"type": "cancel", "id": "nothing"}))
            assert json.loads(ws.recv(timeout=10))["status"] == 404


def test_voices_upload_list_use_and_refuse(url, voices_dir, reference_wav):
    listed = httpx.get(f"{url}/v1/audio/voices").json()["data"]
    assert [v["voice_id"] for v in listed] == ["default"]
    clip = reference_wav.read_bytes()
    r = httpx.post(f"{url}/v1/voices", data={"name": "ann"}, timeout=120,
                   files={"file": ("ann.wav", clip, "audio/wav")})  # fmt: skip
    assert r.status_code == 201, r.text
    assert (voices_dir / "ann.pt").is_file()
    assert "ann" in [v["voice_id"] for v in httpx.get(f"{url}/v1/audio/voices").json()["data"]]
    spoken = httpx.post(f"{url}/v1/audio/speech", timeout=120,
                        json={**BODY, "voice": "ann", "response_format": "wav"})  # fmt: skip
    assert spoken.status_code == 200 and spoken.content[:4] == b"RIFF"
    short = io.BytesIO()
    sf.write(short, np.zeros(24000, dtype=np.float32), 24000, format="WAV")
    cases = [
        ({"name": "ann"}, ("a.wav", clip), 409, "exists"),
        ({"name": "Bad Name"}, ("a.wav", clip), 400, "invalid voice name"),
        ({"name": "short"}, ("a.wav", short.getvalue()), 400, "longer than"),
        ({"name": "junk"}, ("a.wav", b"not audio at all"), 400, "cannot read"),
        ({"name": "big"}, ("a.wav", b"0" * (11 * 1024 * 1024)), 413, "larger than"),
        ({"name": "../etc"}, ("a.wav", clip), 400, "invalid voice name"),
    ]
    for data, file, status, needle in cases:
        r = httpx.post(f"{url}/v1/voices", data=data, files={"file": file}, timeout=60)
        assert r.status_code == status and needle in r.json()["error"]["message"], r.text
    r = httpx.post(f"{url}/v1/audio/speech", json={**BODY, "voice": "../ann"}, timeout=60)
    assert r.status_code == 400 and "unknown voice" in r.json()["error"]["message"]


def test_metrics_count_requests_and_time_them(url):
    httpx.post(f"{url}/v1/audio/speech", json={**BODY, "response_format": "pcm"}, timeout=120)
    httpx.post(f"{url}/v1/audio/speech", json={**BODY, "speed": 9}, timeout=60)
    text = httpx.get(f"{url}/metrics").text
    series = {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }
    assert series['chatterbox_requests_total{route="speech"}'] >= 2
    assert series['chatterbox_requests_success_total{route="speech"}'] >= 1
    assert series['chatterbox_requests_error_total{route="speech",status="400"}'] >= 1
    for name in ("queue_wait_seconds", "time_to_first_audio_seconds", "synthesis_seconds", "rtf"):
        assert series[f"chatterbox_{name}_count"] >= 1
    assert series["chatterbox_queue_depth"] == 0
