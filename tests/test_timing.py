"""When each group is said, end to end on random-weight Turbo: segments where the pipeline put
the groups (pauses, `[pause]` markup, `--speed`), subtitle files from `say`, `batch` and
`book` read back by pysubs2, and timed replies from the server (buffered, SSE, WebSocket)."""

from __future__ import annotations

import base64
import io
import json

import httpx
import numpy as np
import pysubs2
import pytest
import soundfile as sf
from conftest import serving

TEXT = "First sentence is here.\n\nThe second one [pause:0.7s] follows it.\n\nA third."


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0


def check_segments(audio: np.ndarray, sr: int, segments, tail_s: float = 0.0):
    """In order, inside the audio, speech inside each and (near) silence between them, the
    last ending where the audio's tail of silence begins."""
    assert segments and segments[0].start >= 0
    for a, b in zip(segments, segments[1:], strict=False):
        assert a.end <= b.start
        gap = audio[int(a.end * sr) + 1 : int(b.start * sr) - 1]
        assert rms(gap) < 0.05 * rms(audio[int(a.start * sr) : int(a.end * sr)])
    assert segments[-1].end == pytest.approx(len(audio) / sr - tail_s, abs=1 / sr)


@pytest.mark.parametrize("speed", [1.0, 1.5])
def test_segments_are_where_the_pipeline_put_each_group(engine, speed):
    from chatterbox_cli import Synthesizer

    tts = Synthesizer.of(engine)
    audio = tts.say(TEXT, max_new_tokens=20, seed=2, retries=0, pause_s=0.4, speed=speed)
    segs, groups, sr = audio.segments, audio.groups, audio.sample_rate
    assert [s.text for s in segs] == [g.text for g in groups]
    check_segments(audio.samples, sr, segs)
    for s, g in zip(segs, groups, strict=True):
        assert s.end - s.start == pytest.approx(g.audio_s, abs=0.03)  # stretched by 1/speed
    assert segs[1].start - segs[0].end == pytest.approx(0.4, abs=2 / sr)  # --pause


def test_a_stream_says_when_each_group_is_said(engine):
    from chatterbox_cli import Synthesizer

    tts = Synthesizer.of(engine)
    chunks = list(tts.stream(TEXT, max_new_tokens=20, seed=2, pause_s=0.3))
    audio = np.concatenate([c.samples for c in chunks])
    segments = [c.segment for c in chunks if c.segment is not None]
    assert len(segments) == len({c.index for c in chunks})
    check_segments(audio, 24000, segments)


def test_say_writes_subtitles_that_tile_the_speech(cli, checkpoint, tmp_path):
    out, subs = tmp_path / "s.wav", tmp_path / "s.srt"
    r = cli("say", TEXT, "--model-dir", checkpoint, "-o", out, "--subtitles", subs,
            "--max-new-tokens", 20, "--seed", 1, "--retries", 0)  # fmt: skip
    assert r.exit_code == 0, r.output
    audio, sr = sf.read(out)
    events = pysubs2.load(str(subs))
    assert events and all(0 <= e.start < e.end <= len(audio) / sr * 1000 + 1 for e in events)
    assert all(a.end <= b.start for a, b in zip(events, events[1:], strict=False))
    assert abs(events[-1].end / 1000 - len(audio) / sr) <= 0.1
    joined = " ".join(e.plaintext.replace("\n", " ") for e in events)
    assert joined == "First sentence is here. The second one follows it. A third."
    r = cli("say", "Hi.", "--model-dir", checkpoint, "-o", tmp_path / "w.wav",
            "--subtitles", tmp_path / "w.srt", "--subtitles-words")  # fmt: skip
    assert r.exit_code == 2 and "--asr" in r.stderr


def test_a_streamed_say_writes_subtitles_too(cli, checkpoint, tmp_path):
    subs = tmp_path / "s.vtt"
    r = cli("say", TEXT, "--model-dir", checkpoint, "-o", "-", "--subtitles", subs,
            "--max-new-tokens", 20, "--format", "raw")  # fmt: skip
    assert r.exit_code == 0, r.stderr
    audio_s = len(r.stdout_bytes) / 2 / 24000
    events = pysubs2.load(str(subs))
    assert subs.read_text().startswith("WEBVTT") and len(events) >= 3
    assert abs(events[-1].end / 1000 - audio_s) <= 0.1


def test_batch_and_book_write_subtitles_beside_their_audio(cli, checkpoint, tmp_path):
    rows = tmp_path / "rows.csv"
    rows.write_text("id,text\na,One row here. And more.\nb,Another row.\n")
    r = cli("batch", rows, "-d", tmp_path / "out", "--model-dir", checkpoint,
            "--max-new-tokens", 12, "--retries", 0, "--subtitles", "vtt")  # fmt: skip
    assert r.exit_code == 0, r.output
    for rec in map(json.loads, (tmp_path / "out" / "manifest.jsonl").read_text().splitlines()):
        events = pysubs2.load(rec["subtitles"])
        assert rec["subtitles"].endswith(".vtt") and events
        assert abs(events[-1].end / 1000 - rec["audio_s"]) <= 0.1
        assert rec["segments"][-1]["end"] == pytest.approx(rec["audio_s"], abs=0.01)

    book = tmp_path / "b.md"
    book.write_text("# One\n\nFirst chapter here.\n\n# Two\n\nSecond chapter now.\n")
    m4b, chapters = tmp_path / "b.m4b", tmp_path / "ch"
    r = cli("book", book, "-o", m4b, "--per-chapter", chapters, "--model-dir", checkpoint,
            "--max-new-tokens", 12, "--retries", 0, "--subtitles", "srt", "--json")  # fmt: skip
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout.splitlines()[-1])
    whole = pysubs2.load(str(m4b.with_suffix(".srt")))
    per = [pysubs2.load(str(p)) for p in sorted(chapters.glob("*.srt"))]
    assert len(per) == 2 and len(whole) == sum(len(p) for p in per)
    second = report["chapters"][1]["start_s"] * 1000
    assert [e.start for e in whole][len(per[0]) :] == pytest.approx(
        [second + e.start for e in per[1]], abs=2
    )
    assert whole[-1].end / 1000 <= report["audio_s"]


@pytest.fixture(scope="module")
def url(engine):
    with serving(engine) as base:
        yield base


def test_a_buffered_reply_with_timestamps_is_json(url):
    body = {"input": TEXT, "seed": 1, "max_new_tokens": 20, "response_format": "wav",
            "timestamps": True}  # fmt: skip
    r = httpx.post(f"{url}/v1/audio/speech", json=body, timeout=300)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    reply = r.json()
    audio, sr = sf.read(io.BytesIO(base64.b64decode(reply["audio"])), dtype="float32")
    assert sr == reply["sample_rate"] == 24000 and reply["format"] == "wav"
    segs = reply["segments"]
    assert [s["index"] for s in segs] == list(range(len(segs))) and len(segs) >= 3
    assert segs[-1]["end"] == pytest.approx(len(audio) / sr, abs=0.01)
    assert "x-chatterbox-provenance" in r.headers
    bad = httpx.post(f"{url}/v1/audio/speech", json=body | {"stream_format": "audio"}, timeout=60)
    assert bad.status_code == 400 and "timestamps" in bad.json()["error"]["message"]


def test_sse_and_websocket_send_timestamps_after_each_group(url):
    from websockets.sync.client import connect

    body = {"input": TEXT, "seed": 1, "max_new_tokens": 20, "response_format": "pcm",
            "timestamps": True}  # fmt: skip
    with httpx.stream("POST", f"{url}/v1/audio/speech", json=body | {"stream_format": "sse"},
                      timeout=300) as r:  # fmt: skip
        events = [json.loads(line[6:]) for line in r.iter_lines() if line.startswith("data: ")]
    kinds = [e["type"] for e in events]
    timed = [e["segment"] for e in events if e["type"] == "timestamps"]
    assert kinds[0] == "speech.audio.delta" and kinds[-1] == "speech.audio.done"
    assert [s["index"] for s in timed] == list(range(len(timed))) and len(timed) >= 3
    pcm = b"".join(base64.b64decode(e["audio"]) for e in events if "audio" in e)
    assert timed[-1]["end"] == pytest.approx(len(pcm) / 2 / 24000, abs=0.01)

    with connect(url.replace("http", "ws") + "/v1/audio/stream", open_timeout=30) as ws:
        ws.send(json.dumps({"type": "say", "id": "t", **body}))
        got = []
        while True:
            msg = json.loads(ws.recv(timeout=120))
            if msg["type"] == "chunk":
                ws.recv(timeout=30)
            got.append(msg)
            if msg["type"] == "done":
                break
    said = [m["segment"] for m in got if m["type"] == "timestamps"]
    assert [s["index"] for s in said] == [s["index"] for s in timed]
