"""`chatterbox serve` (imported only by that command): the engine behind HTTP.

Routes: OpenAI-style `POST /v1/audio/speech` (buffered, or streamed as audio or SSE),
`GET /v1/audio/voices`, `POST /v1/voices`, `GET /health`, `GET /metrics`, and the WebSocket
`/v1/audio/stream` (`ws.py`). Every request goes through one scheduler (`scheduler.py`)
whose batched T3 decode all requests share; every response is leveled and watermarked as
`say`'s files are. Errors are JSON with a 4xx status (5xx only for a fault of ours), never
a traceback.
"""

import base64
import hmac
import json
from dataclasses import dataclass

from chatterbox_cli.server.errors import message_of, status_of
from chatterbox_cli.server.session import (
    RESPONSE_FORMATS,
    PostThread,
    Speech,
    Synthesis,
    Voices,
    finish,
    level,
    plan,
)
from chatterbox_cli.sinks.provenance import tags as provenance_tags
from chatterbox_cli.sinks.stream import StreamEncoder, encode

PROVENANCE_HEADER = "X-Chatterbox-Provenance"
"""A buffered reply's provenance record (JSON), also for `pcm`, which has no tags inside."""


@dataclass(frozen=True)
class ServeOptions:
    max_text_chars: int = 4096
    api_token: str | None = None
    max_queue: int = 64
    request_timeout_s: float | None = 600.0
    max_upload_bytes: int = 10 * 1024 * 1024
    max_upload_s: float = 60.0
    batch_size: int | None = None


def create_app(engine, options: ServeOptions = ServeOptions(), default_voice=None):
    """A FastAPI app around a loaded engine, with its scheduler started and stopped by the
    app's lifespan. `default_voice` (a resolved VoiceSpec) answers `voice: default`."""
    import contextlib

    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, Response, StreamingResponse
    from starlette.concurrency import run_in_threadpool

    from chatterbox_cli.server.metrics import Metrics
    from chatterbox_cli.server.scheduler import Scheduler

    state: dict = {}

    @contextlib.asynccontextmanager
    async def lifespan(app):
        state["scheduler"] = Scheduler(
            engine, options.max_queue, options.batch_size, metrics.cancelled.inc
        )
        state["post"] = PostThread()
        app.state.scheduler = state["scheduler"]  # for those who embed the app (and tests)
        yield
        state["scheduler"].close()
        state["post"].close()

    app = FastAPI(title="chatterbox-cli", docs_url=None, redoc_url=None, lifespan=lifespan)
    voices = Voices(engine, default_voice)
    metrics = Metrics(lambda: state["scheduler"].depth if "scheduler" in state else 0)
    app.state.chatterbox = state
    sr = engine.sample_rate

    def error(status: int, message: str, kind: str = "invalid_request_error", headers=None):
        body = {"error": {"message": message, "type": kind}}
        return JSONResponse(body, status_code=status, headers=headers)

    def fail(route: str, exc: BaseException):
        status, kind = status_of(exc)
        metrics.failed(route, status)
        headers = {"Retry-After": "1"} if status == 429 else None
        return error(status, message_of(exc), kind, headers)

    def authorized(header: str | None) -> bool:
        return not options.api_token or hmac.compare_digest(
            header or "", f"Bearer {options.api_token}"
        )

    @app.exception_handler(RequestValidationError)
    async def bad_request(_request, exc):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return error(400, f"{where or 'body'}: {first.get('msg', 'invalid request')}")

    @app.exception_handler(Exception)
    async def unexpected(_request, exc):
        return fail("any", exc)

    @app.middleware("http")
    async def auth(request: Request, call_next):
        if request.url.path != "/health" and not authorized(request.headers.get("authorization")):
            return error(401, "missing or wrong bearer token", "authentication_error")
        return await call_next(request)

    @app.get("/health")
    async def health():
        scheduler = state.get("scheduler")
        return {"status": "ok", "model": engine.source.kind, "device": engine.device,
                "queue": scheduler.depth if scheduler else 0}  # fmt: skip

    @app.get("/metrics")
    async def prometheus():
        body, kind = metrics.render()
        return Response(body, media_type=kind)

    async def start(req: Speech, route: str) -> Synthesis:
        """Plan and admit a request (voice loading happens between batches, off the loop)."""
        metrics.requests.labels(route).inc()
        lock = state["scheduler"].lock
        streaming = req.stream_format is not None
        p = await run_in_threadpool(
            plan, engine, req, voices, options.max_text_chars, lock, streaming
        )
        return Synthesis(state["scheduler"], p, options.request_timeout_s)

    @app.post("/v1/audio/speech")
    async def speech(req: Speech, request: Request):
        try:
            syn = await start(req, "speech")
            chunks = syn.chunks(request.is_disconnected)
            first = await anext(chunks)
        except Exception as exc:
            return fail("speech", exc)
        if req.stream_format is None:
            try:
                rest = [first] + [c async for c in chunks]
                audio = await state["post"](finish, engine, syn.plan, rest)
                made = syn.plan.provenance
                body = await state["post"](encode, audio, sr, syn.plan.fmt, provenance_tags(made))
            except Exception as exc:
                return fail("speech", exc)
            metrics.done("speech", syn.stats())
            headers = {PROVENANCE_HEADER: json.dumps(made, sort_keys=True, separators=(",", ":"))}
            return Response(body, media_type=RESPONSE_FORMATS[syn.plan.fmt], headers=headers)
        sse = req.stream_format == "sse"
        kind = "text/event-stream" if sse else RESPONSE_FORMATS[syn.plan.fmt]
        return StreamingResponse(streamed(syn, first, chunks, sse), media_type=kind)

    async def streamed(syn: Synthesis, first, chunks, sse: bool):
        """Pieces of audio as their groups are made; SSE wraps them as OpenAI's
        `speech.audio.delta` events (base64) and ends with `speech.audio.done` and stats."""
        from chatterbox_cli.synth.pipeline import StreamLeveler

        leveler = StreamLeveler(sr, len(syn.plan.groups), syn.plan.opts, engine.watermarker)
        enc = StreamEncoder(syn.plan.fmt, sr)

        def wrap(data: bytes) -> bytes:
            if not sse:
                return data
            event = {"type": "speech.audio.delta", "audio": base64.b64encode(data).decode()}
            return f"data: {json.dumps(event)}\n\n".encode()

        try:
            chunk = first
            while chunk is not None:
                data = await state["post"](level, leveler, enc, chunk)
                if data:
                    yield wrap(data)
                chunk = await anext(chunks, None)
            tail = enc.close()
            if tail:
                yield wrap(tail)
            stats = syn.stats()
            metrics.done("speech", stats)
            if sse:
                done = {"type": "speech.audio.done", "stats": stats}
                yield f"data: {json.dumps(done)}\n\n".encode()
        except Exception as exc:  # after the status line: SSE says so, audio ends early
            status, kind = status_of(exc)
            metrics.failed("speech", status)
            if sse:
                event = {"type": "error", "error": {"message": message_of(exc), "type": kind}}
                yield f"data: {json.dumps(event)}\n\n".encode()
        finally:
            if len(syn.chunks_seen) < len(syn.plan.jobs):
                syn.cancel()

    from chatterbox_cli.server.voices import add_voice_routes
    from chatterbox_cli.server.ws import add_ws_route

    add_voice_routes(app, engine, options, state, fail)
    add_ws_route(app, engine, options, state, voices, metrics, authorized)
    return app
