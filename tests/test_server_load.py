"""`chatterbox serve` under load: many clients at once share the model's batched decode, each
gets its own audio or a clean 429, a client that leaves frees its slot, limits hold. Real
uvicorn on loopback, random-weight Turbo, real HTTP."""

import io
import threading
import time

import httpx
import soundfile as sf
from conftest import served_app, serving

from chatterbox_cli.sinks.verify import WATERMARK_MIN, detector

CLIENTS = 8
ADMITTED = 6


def body(i: int) -> dict:
    return {"input": f"Client number {i} says hello.", "seed": 100 + i,
            "max_new_tokens": 12, "response_format": "wav"}  # fmt: skip


def wait_idle(url: str, bound_s: float = 60) -> int:
    deadline = time.monotonic() + bound_s
    while (depth := httpx.get(f"{url}/health").json()["queue"]) and time.monotonic() < deadline:
        time.sleep(0.2)
    return depth


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        line = next(x for x in f if x.startswith("VmRSS"))
    return int(line.split()[1]) / 1024


def test_more_clients_than_the_queue_get_their_own_audio_or_a_clean_429(engine):
    with served_app(engine, max_queue=ADMITTED) as (url, app):
        replies: dict[int, httpx.Response] = {}

        def client(i: int):
            replies[i] = httpx.post(f"{url}/v1/audio/speech", json=body(i), timeout=300)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
        warm = httpx.post(f"{url}/v1/audio/speech", json=body(CLIENTS), timeout=300)
        assert warm.status_code == 200  # the built-in voice is prepared (under the model lock)
        # The model held (as during a batch): nothing finishes, so exactly ADMITTED are
        # admitted and the rest refused, however they arrive; a kept voice needs no model, so
        # admission does not wait for the batch.
        with app.state.served.models.default.scheduler.lock:
            for t in threads:
                t.start()
            deadline = time.monotonic() + 60
            while not (
                len(replies) == CLIENTS - ADMITTED
                and httpx.get(f"{url}/health").json()["queue"] == ADMITTED
            ):
                assert time.monotonic() < deadline, "requests were not admitted during a batch"
                time.sleep(0.05)
        for t in threads:
            t.join(timeout=600)
        assert len(replies) == CLIENTS
        ok = {i: r for i, r in replies.items() if r.status_code == 200}
        busy = [r for r in replies.values() if r.status_code == 429]
        assert (len(ok), len(busy)) == (ADMITTED, CLIENTS - ADMITTED), [
            r.text for r in replies.values()
        ]
        for r in busy:
            assert r.headers["retry-after"] and "busy" in r.json()["error"]["message"]
        for r in ok.values():
            audio, _ = sf.read(io.BytesIO(r.content), dtype="float32")
            assert detector().get_watermark(audio, sample_rate=24000) >= WATERMARK_MIN
        # No cross-talk: a seeded request alone gives the very bytes it got among the others.
        for i in sorted(ok)[:1]:
            alone = httpx.post(f"{url}/v1/audio/speech", json=body(i), timeout=300)
            assert alone.content == ok[i].content
        assert len({r.content for r in ok.values()}) == len(ok)
        assert wait_idle(url) == 0


def test_a_client_that_leaves_mid_stream_frees_its_slot(engine):
    text = "\n\n".join(f"Paragraph {n} of a long reading." for n in range(6))
    with serving(engine) as url:
        req = {"input": text, "max_new_tokens": 80, "response_format": "pcm",
               "stream_format": "audio"}  # fmt: skip
        with httpx.stream("POST", f"{url}/v1/audio/speech", json=req, timeout=120) as r:
            first = next(r.iter_raw())
            assert first and httpx.get(f"{url}/health").json()["queue"] == 1
        assert wait_idle(url) == 0  # not after six paragraphs: their decode was cancelled
        metrics = httpx.get(f"{url}/metrics").text
        assert "chatterbox_requests_cancelled_total 1.0" in metrics


def test_a_request_past_the_timeout_gets_a_504_and_the_server_goes_on(engine):
    text = "\n\n".join(f"Paragraph {n} of a long reading." for n in range(4))
    with serving(engine, request_timeout_s=1.0) as url:
        r = httpx.post(f"{url}/v1/audio/speech", timeout=120,
                       json={"input": text, "max_new_tokens": 200})  # fmt: skip
        assert r.status_code == 504 and "longer than 1 s" in r.json()["error"]["message"]
        assert wait_idle(url) == 0


def test_rss_stays_flat_over_many_short_requests(engine):
    """Memory, not speed: after a warm-up of 16 requests, 16 more (8 clients at once) leave the
    process's RSS within 80 MB of where it was (`make load` runs a few hundred;
    test_audio.py guards the watermarker's memory directly)."""
    with serving(engine) as url:

        def burst(rounds: int):
            def client(i: int):
                for n in range(rounds):
                    req = {"input": f"Hi {i} {n}.", "max_new_tokens": 4, "response_format": "pcm"}
                    assert httpx.post(f"{url}/v1/audio/speech", json=req, timeout=300).is_success

            threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=600)

        burst(2)  # the warm-up as long as the measured run: the allocator's arenas settle
        before = rss_mb()
        burst(2)
        after = rss_mb()
        assert wait_idle(url) == 0
        assert after - before < 80, (before, after)
