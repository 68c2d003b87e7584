"""`POST /v1/audio/speech`: OpenAI's speech endpoint, buffered (whole-file loudness, as `say`
writes) or streamed as audio or SSE (`StreamLeveler`), watermarked either way."""

import base64
import json

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from chatterbox_cli.server.errors import message_of, status_of
from chatterbox_cli.server.session import (
    RESPONSE_FORMATS,
    Speech,
    Synthesis,
    finish,
    heard,
    level,
    plan,
    settle,
)
from chatterbox_cli.server.state import Served, served
from chatterbox_cli.sinks.provenance import tags as provenance_tags
from chatterbox_cli.sinks.stream import StreamEncoder, encode
from chatterbox_cli.synth.pipeline import StreamLeveler

router = APIRouter()
PROVENANCE_HEADER = "X-Chatterbox-Provenance"
"""A buffered reply's provenance record (JSON), also for `pcm`, which has no tags inside."""


async def start(s: Served, req: Speech, route: str, streaming: bool | None = None) -> Synthesis:
    """Plan a request for the model it names and admit it to that model's scheduler (voice
    loading happens between batches, off the loop)."""
    s.metrics.requests.labels(route).inc()
    streaming = req.stream_format is not None if streaming is None else streaming
    model = s.models.get(req.model)
    args = (model.engine, req, model.voices, s.options, model.scheduler.lock, streaming)
    p = await run_in_threadpool(plan, *args)
    return Synthesis(model.scheduler, p, s.options.request_timeout_s)


@router.post("/v1/audio/speech")
async def speech(req: Speech, request: Request):
    s = served(request)
    syn = None
    try:
        syn = await start(s, req, "speech")
        chunks = syn.chunks(request.is_disconnected)
        first = await anext(chunks)
    except Exception as exc:
        if syn is not None:
            syn.close()
        return s.fail("speech", exc)
    if req.stream_format is None:
        try:
            rest = [first] + [c async for c in chunks]
            made = syn.plan.provenance
            if syn.judge is not None:
                made = made | {"heard": await run_in_threadpool(settle, syn, rest)}
            done = await s.post(finish, syn.engine, syn.plan, rest, syn.judge)
            sr = syn.engine.sample_rate
            body = await s.post(encode, done.audio, sr, syn.plan.fmt, provenance_tags(made))
        except Exception as exc:
            return s.fail("speech", exc)
        finally:
            syn.close()
        s.metrics.done("speech", syn.stats())
        headers = {PROVENANCE_HEADER: json.dumps(made, sort_keys=True, separators=(",", ":"))}
        if req.timestamps:
            return JSONResponse(timed_reply(body, syn.plan.fmt, sr, done.segments), headers=headers)
        return Response(body, media_type=RESPONSE_FORMATS[syn.plan.fmt], headers=headers)
    sse = req.stream_format == "sse"
    kind = "text/event-stream" if sse else RESPONSE_FORMATS[syn.plan.fmt]
    return StreamingResponse(streamed(s, syn, first, chunks, sse), media_type=kind)


def timed_reply(body: bytes, fmt: str, sr: int, segments) -> dict:
    """`timestamps: true`, buffered: the audio (base64, as asked) and when each group is said."""
    return {
        "audio": base64.b64encode(body).decode(),
        "format": fmt,
        "sample_rate": sr,
        "segments": [seg.to_dict() for seg in segments],
    }


def timestamps_event(segment) -> bytes:
    """SSE, `timestamps: true`: when the group whose audio was just sent is said."""
    event = {"type": "timestamps", "segment": segment.to_dict()}
    return f"data: {json.dumps(event)}\n\n".encode()


def late_error(s: Served, route: str, exc: Exception) -> bytes:
    """An error after the reply started: counted, and as the SSE `error` event to send."""
    status, kind = status_of(exc)
    s.metrics.failed(route, status)
    event = {"type": "error", "error": {"message": message_of(exc), "type": kind}}
    return f"data: {json.dumps(event)}\n\n".encode()


def sse_event(data: bytes) -> bytes:
    """Stream bytes as OpenAI's `speech.audio.delta` event (base64)."""
    event = {"type": "speech.audio.delta", "audio": base64.b64encode(data).decode()}
    return f"data: {json.dumps(event)}\n\n".encode()


async def streamed(s: Served, syn: Synthesis, first, chunks, sse: bool):
    """Pieces of audio as their groups are made; SSE wraps them as OpenAI's
    `speech.audio.delta` events (base64) and ends with `speech.audio.done` and stats."""

    sr = syn.engine.sample_rate
    leveler = StreamLeveler(sr, syn.plan.groups, syn.plan.opts, syn.engine.watermarker)
    enc = StreamEncoder(syn.plan.fmt, sr)

    def wrap(data: bytes) -> bytes:
        return sse_event(data) if sse else data

    try:
        chunk = first
        while chunk is not None:
            data = await s.post(level, leveler, enc, chunk)
            if data:
                yield wrap(data)
            if sse and syn.plan.timestamps and leveler.placed is not None:
                yield timestamps_event(leveler.placed)
            chunk = await anext(chunks, None)
        tail = enc.close()
        if tail:
            yield wrap(tail)
        stats = syn.stats()
        if syn.judge is not None:
            stats["heard"] = await heard(syn, syn.chunks_seen)
        s.metrics.done("speech", stats)
        if sse:
            done = {"type": "speech.audio.done", "stats": stats}
            yield f"data: {json.dumps(done)}\n\n".encode()
    except Exception as exc:  # after the status line: SSE says so, audio ends early
        event = late_error(s, "speech", exc)
        if sse:
            yield event
    finally:
        if len(syn.chunks_seen) < len(syn.plan.jobs):
            syn.cancel()
        syn.close()
