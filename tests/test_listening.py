"""Listening back beyond `say`: the attempt kept among retries, books (report by chapter and
time), conversions (against the source's own transcript) and the server (per model, buffered
replies retried, streams reported). Random-weight Turbo heard by a random-weight Whisper."""

from __future__ import annotations

import io
import json

import httpx
import numpy as np
import pysubs2
import pytest
import soundfile as sf
from conftest import serving

from chatterbox_cli.post import guard
from chatterbox_cli.post.asr import MISMATCH


def test_the_attempt_kept_is_the_best_heard_among_the_guards_best(
    checkpoint, whisper_model, monkeypatch
):
    """Every attempt's verdict is recorded; the kept one has the fewest guard symptoms and,
    among those, the lowest error rate."""
    from chatterbox_cli import Synthesizer
    from chatterbox_cli.synth.judge import Judge

    tts = Synthesizer("turbo", model_dir=checkpoint, device="cpu", asr=whisper_model)
    seen: dict[int, list[tuple[int, float]]] = {}
    real = Judge.flags

    def flags(self, chunk):
        found = real(self, chunk)
        seen.setdefault(chunk.group.index, []).append(self.rank(chunk, found))
        return found

    monkeypatch.setattr(Judge, "flags", flags)
    audio = tts.say("Hello there.\n\nAnother one follows.", max_new_tokens=14, seed=5, retries=2)
    assert len(audio.groups) == 2
    for g in audio.groups:
        tries = seen[g.index]
        assert len(tries) == g.retries + 1 and MISMATCH in g.flags  # random speech: never right
        kept = (guard.score([f for f in g.flags if f != MISMATCH]), g.wer)
        assert kept == pytest.approx(min(tries), abs=1e-4)


def test_a_checked_book_reports_each_group_by_chapter_and_time(
    cli, checkpoint, whisper_model, tmp_path
):
    book = tmp_path / "tiny.md"
    book.write_text("# One\n\nFirst chapter here.\n\n# Two\n\nSecond chapter now.\n")
    out = tmp_path / "tiny.m4b"
    args = ("book", book, "-o", out, "--model-dir", checkpoint, "--max-new-tokens", 10,
            "--retries", 0, "--asr", whisper_model, "--json")  # fmt: skip
    r = cli(*args, "--fail-on-flag")
    assert r.exit_code == 1 and out.is_file(), r.output  # written, then failed: flagged
    report = json.loads(r.stdout.splitlines()[-1])
    for chapter in report["chapters"]:
        assert chapter["heard"] and len(chapter["heard"]) == chapter["groups"]
        starts = [h["at_s"] for h in chapter["heard"]]
        assert starts == sorted(starts) and starts[0] == 0
        for h in chapter["heard"]:
            assert h["transcript"] and h["wer"] > 0.3 and h["text"]
    first = report["flagged"][0]
    assert first["chapter"] == 1 and first["transcript"] and "asr-mismatch" in first["flags"][0]
    assert "heard" in r.stderr and "chapter 1 at 0:00:00" in r.stderr
    # resumed: nothing is synthesized, the verdicts are kept in the work folder
    again = cli(*args, "--overwrite")
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout.splitlines()[-1])["flagged"] == report["flagged"]


def test_a_conversion_is_heard_against_what_its_source_says(
    cli, checkpoint, whisper_model, reference_wav, tmp_path
):
    from chatterbox_cli.post.asr import Listener
    from chatterbox_cli.post.wer import score
    from chatterbox_cli.runtime.recordings import resampled
    from chatterbox_cli.testing.checkpoints import speech_like

    src, out = tmp_path / "take.wav", tmp_path / "take-converted.wav"
    sf.write(src, speech_like(3.0, 16000, seed=4) * 0.3, 16000)
    common = ("--model", "turbo", "--model-dir", checkpoint, "--device", "cpu", "--seed", "1",
              "-v", reference_wav, "--asr", whisper_model)  # fmt: skip
    r = cli("convert", src, *common, "-o", out, "--asr-max-wer", 10, "--subtitles", "srt",
            "--json")  # fmt: skip
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout.splitlines()[-1])
    heard = report["heard"]
    cues = pysubs2.load(report["subtitles"])  # from the words heard in the output
    assert len(cues) >= (1 if heard["words"] else 0)
    assert all(0 <= c.start < c.end <= sf.info(out).duration * 1000 + 1 for c in cues)
    listener = Listener(whisper_model)
    alone = listener.hear_all(resampled(src, 16000), 16000, "", None)
    assert heard["source_transcript"] == alone.transcript and heard["language"] == alone.language
    rate = score(heard["source_transcript"], heard["transcript"], heard["language"]).rate
    assert heard["wer"] == pytest.approx(rate, abs=1e-4)
    r = cli("convert", src, *common, "-o", out, "--overwrite", "--asr-max-wer", 0,
            "--fail-on-flag")  # fmt: skip
    assert r.exit_code == (1 if rate > 0 else 0), r.output
    assert ("asr-mismatch" in r.stderr) == (rate > 0)
    r = cli("convert", src, *common, "-o", "-")
    assert r.exit_code == 2 and "--asr checks files" in r.stderr


@pytest.fixture(scope="module")
def heard_server(engine, whisper_model):
    with serving(engine, asr={engine.source.kind: whisper_model}) as url:
        yield httpx.Client(base_url=url, timeout=300)


def test_the_server_retries_a_buffered_reply_and_says_what_it_heard(heard_server, whisper_model):
    body = {"input": "Hello over HTTP.", "seed": 3, "max_new_tokens": 10, "response_format": "wav"}
    r = heard_server.post("/v1/audio/speech", json=body)
    assert r.status_code == 200, r.text
    made = json.loads(r.headers["x-chatterbox-provenance"])
    [group] = made["heard"]
    assert group["index"] == 0 and group["transcript"] and group["wer"] > 0.3
    assert MISMATCH in group["flags"] and group["retries"] == 2  # the request's default retries
    audio, sr = sf.read(io.BytesIO(r.content), dtype="float32")
    assert sr == 24000 and len(audio) and np.isfinite(audio).all()
    models = heard_server.get("/v1/models").json()["data"]
    assert models[0]["asr"] == whisper_model.name


def test_a_stream_reports_what_each_group_was_heard_saying(heard_server):
    body = {"input": "One here.\n\nTwo there.", "seed": 1, "max_new_tokens": 10,
            "stream_format": "sse", "response_format": "pcm"}  # fmt: skip
    with heard_server.stream("POST", "/v1/audio/speech", json=body) as r:
        events = [json.loads(line[6:]) for line in r.iter_lines() if line.startswith("data: ")]
    done = events[-1]
    assert done["type"] == "speech.audio.done"
    rows = done["stats"]["heard"]
    assert [row["index"] for row in rows] == list(range(done["stats"]["groups"]))
    assert all(row["transcript"] and row["retries"] == 0 for row in rows)


def test_serve_asr_names_a_served_model(cli, whisper_model):
    r = cli("serve", "--model", "turbo", "--asr", f"nano={whisper_model}")
    assert r.exit_code == 2 and "'nano' is not a --model" in r.stderr
