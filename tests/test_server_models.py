"""Several models behind one server (issue #27): Turbo (the session's engine) and Standard, real
random-weight checkpoints, over real HTTP and WebSocket on loopback: the models API, each
request checked by its own model's rules, unload (waiting for a request in flight, refusing new
ones, the memory given back: RSS measured) while the other model goes on serving, load again,
and the socket's `ready` and `set_voice`."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest
from conftest import served_app

from chatterbox_cli.cli.serve import served_models
from chatterbox_cli.runtime.errors import BadInput

SHORT = {"input": "Two models.", "max_new_tokens": 4, "seed": 1, "response_format": "pcm"}


def wait_for(condition, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_served_models_parse_models_and_dirs(tmp_path):
    assert served_models(None, None, None) == [("turbo", None)]
    assert served_models(["turbo,standard"], None, [f"standard={tmp_path}"]) == [
        ("turbo", None), ("standard", tmp_path),
    ]  # fmt: skip
    assert served_models(["nano", "multilingual"], "pt-br", [str(tmp_path)]) == [
        ("nano", tmp_path), ("multilingual-pt-br", None),
    ]  # fmt: skip
    for models, dirs, needle in [
        (["turbo", "turbo"], None, "each model once"),
        (["turbo", "standard"], ["a", "b"], "MODEL=DIR"),
        (["turbo"], ["nano=x"], "not a --model"),
    ]:
        with pytest.raises(BadInput, match=needle):
            served_models(models, None, dirs)


@pytest.fixture(scope="module")
def two(engine, standard_checkpoint):
    """A server with Turbo (default) and Standard; Standard is held by the server alone."""
    from chatterbox_cli.models.source import ModelSource
    from chatterbox_cli.synth import loader

    engines = [
        engine,
        loader.load_engine(ModelSource("standard", standard_checkpoint), "cpu", share=True),
    ]
    with served_app(engines, max_text_chars=500) as (url, app):
        engines.clear()
        yield httpx.Client(base_url=url, timeout=300), app
    loader.unload(ModelSource("standard", standard_checkpoint))


def test_models_api_and_per_model_rules(two):
    client, _app = two
    listed = client.get("/v1/models").json()
    assert listed["object"] == "list"
    models = {m["id"]: m for m in listed["data"]}
    assert list(models) == ["turbo", "standard"]
    assert models["standard"]["family"] == "standard" and models["turbo"]["languages"] == ["en"]
    assert all(
        m["loaded"] and m["device"] == "cpu" and m["object"] == "model" for m in models.values()
    )
    assert models["standard"]["weights_mb"] > 1000 and models["turbo"]["weights_mb"] > 1000
    health = client.get("/health").json()
    assert [m["id"] for m in health["models"]] == ["turbo", "standard"] and health["rss_mb"] > 0
    assert client.get("/v1/models/nope").status_code == 404

    for body, status, needle in [
        ({**SHORT, "model": "standard", "top_k": 5}, 400, "top_k"),
        ({**SHORT, "model": "turbo", "exaggeration": 0.7}, 400, "exaggeration"),
        ({**SHORT, "model": "tts-9"}, 400, "GET /v1/models"),
    ]:
        r = client.post("/v1/audio/speech", json=body)
        assert r.status_code == status and needle in r.json()["error"]["message"], r.text
    r = client.post("/v1/audio/speech", json={**SHORT, "model": "standard", "min_p": 0.1})
    assert r.status_code == 200 and len(r.content) > 0
    made = json.loads(r.headers["x-chatterbox-provenance"])
    assert made["model"] == "standard"
    r = client.post("/v1/audio/speech", json=SHORT)  # no model: the first, Turbo
    assert json.loads(r.headers["x-chatterbox-provenance"])["model"] == "turbo"


def test_unload_waits_refuses_frees_and_load_brings_it_back(two):
    client, _app = two
    in_flight: dict = {}
    request = threading.Thread(
        target=lambda: in_flight.update(
            r=client.post(
                "/v1/audio/speech", json={**SHORT, "model": "standard", "max_new_tokens": 20}
            )
        )
    )
    request.start()
    wait_for(lambda: client.get("/v1/models/standard").json()["queue"])
    unloading: dict = {}
    unload = threading.Thread(
        target=lambda: unloading.update(r=client.delete("/v1/models/standard"))
    )
    unload.start()
    wait_for(lambda: client.get("/v1/models/standard").json()["state"] != "loaded")
    refused = client.post("/v1/audio/speech", json={**SHORT, "model": "standard"})
    assert refused.status_code == 409
    assert "POST /v1/models/standard/load" in refused.json()["error"]["message"]
    other = client.post("/v1/audio/speech", json=SHORT)
    assert other.status_code == 200  # Turbo serves while Standard drains
    request.join()
    unload.join()
    assert in_flight["r"].status_code == 200 and len(in_flight["r"].content) > 0
    gone = unloading["r"].json()
    assert gone["state"] == "unloaded" and not gone["loaded"] and gone["unload_s"] > 0
    assert gone["rss_freed_mb"] > 1000, gone  # Standard's weights go back to the OS

    back = client.post("/v1/models/standard/load").json()
    assert back["loaded"] and back["load_s"] > 0 and back["rss_at_load_mb"] > 0, back
    print(f"\nstandard: unload {gone['unload_s']} s freed {gone['rss_freed_mb']} MB; "
          f"load {back['load_s']} s +{back['rss_at_load_mb']} MB")  # fmt: skip
    r = client.post("/v1/audio/speech", json={**SHORT, "model": "standard"})
    assert r.status_code == 200


def test_websocket_ready_and_set_voice(two):
    from websockets.sync.client import connect

    client, _app = two
    url = str(client.base_url).replace("http", "ws") + "/v1/audio/stream"
    with connect(url, open_timeout=30) as ws:
        ready = json.loads(ws.recv(timeout=30))
        assert ready["type"] == "ready" and ready["model"] == "turbo"
        assert [m["id"] for m in ready["models"]] == ["turbo", "standard"]
        assert ready["voices"][0]["voice_id"] == "default"
        ws.send(json.dumps({"type": "set_voice", "voice": "ghost"}))
        refused = json.loads(ws.recv(timeout=30))
        assert (
            refused["type"] == "error"
            and refused["status"] == 400
            and "ghost" in refused["message"]
        )
        ws.send(json.dumps({"type": "set_voice", "voice": "default"}))
        assert json.loads(ws.recv(timeout=30)) == {"type": "voice", "voice": "default"}
        ws.send(json.dumps({"type": "say", "id": "s", **SHORT, "model": "standard"}))
        kinds = []
        while not kinds or kinds[-1] not in ("done", "error"):
            msg = json.loads(ws.recv(timeout=300))
            kinds.append(msg["type"])
            if msg["type"] == "chunk":
                ws.recv(timeout=30)
        assert kinds[0] == "start" and kinds[-1] == "done", kinds


def test_conversion_buffered_and_streamed(two, detector):
    import io

    import numpy as np
    import soundfile as sf

    from chatterbox_cli.testing.checkpoints import speech_like

    client, _app = two
    buf = io.BytesIO()
    sf.write(buf, speech_like(3.0, sr=16000, seed=4), 16000, format="WAV")
    source = buf.getvalue()
    files = {"file": ("talk.wav", source, "audio/wav")}
    r = client.post("/v1/audio/conversions", files=files, data={"seed": "2"})
    assert r.status_code == 200, r.text
    audio, sr = sf.read(io.BytesIO(r.content), dtype="float32")
    assert sr == 24000 and abs(len(audio) / sr - 3.0) < 0.2
    assert detector.get_watermark(audio, sample_rate=sr) > 0.5
    made = json.loads(r.headers["x-chatterbox-provenance"])
    assert made["task"] == "convert" and made["model"] == "turbo" and made["seed"] == 2

    form = {"response_format": "pcm", "stream_format": "audio", "seed": "2"}
    with client.stream("POST", "/v1/audio/conversions", files=files, data=form) as streamed:
        assert streamed.status_code == 200
        body = b"".join(streamed.iter_bytes())
    pcm = np.frombuffer(body, "<i2").astype(np.float32) / 32768
    assert abs(len(pcm) - len(audio)) <= 1 and detector.get_watermark(pcm, sample_rate=sr) > 0.5

    bad = client.post("/v1/audio/conversions", files={"file": ("x.wav", b"not audio")})
    assert bad.status_code == 400 and "cannot read" in bad.json()["error"]["message"]
    ghost = client.post("/v1/audio/conversions", files=files, data={"voice": "ghost"})
    assert ghost.status_code == 400 and "ghost" in ghost.json()["error"]["message"]
