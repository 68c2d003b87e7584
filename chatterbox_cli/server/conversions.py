"""`POST /v1/audio/conversions`: voice conversion (`chatterbox convert`'s engine) over HTTP.

Multipart: `file` (the source recording), `voice` (a saved voice name, or `default`), `model`
(a loaded Standard, Turbo or Nano: conversion uses its S3Gen alone), `response_format`,
`stream_format` (`audio` or `sse`, as speech), `seed`. Buffered, the reply is what `convert`
writes (whole-file loudness, watermark, provenance inside and in the header); streamed, each
piece leaves as it is converted, leveled (gain fixed by the first) and watermarked. Each piece
runs under the model's lock, between its speech batches.
"""

import hashlib
import json

import numpy as np
from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from chatterbox_cli.runtime.errors import BadInput
from chatterbox_cli.server.session import RESPONSE_FORMATS, TooLong
from chatterbox_cli.server.speech import PROVENANCE_HEADER, late_error, sse_event
from chatterbox_cli.server.state import served
from chatterbox_cli.sinks.provenance import convert_record
from chatterbox_cli.sinks.provenance import tags as provenance_tags
from chatterbox_cli.sinks.stream import StreamEncoder, encode

router = APIRouter()


@router.post("/v1/audio/conversions")
async def conversions(
    request: Request,
    file: UploadFile = File(...),
    voice: str = Form("default"),
    model: str | None = Form(None),
    response_format: str = Form("wav"),
    stream_format: str | None = Form(None),
    seed: int | None = Form(None),
):
    s = served(request)
    s.metrics.requests.labels("conversions").inc()
    try:
        fmt = response_format.lower()
        if fmt not in RESPONSE_FORMATS:
            raise BadInput(f"response_format must be one of: {', '.join(RESPONSE_FORMATS)}")
        if stream_format not in (None, "audio", "sse"):
            raise BadInput("stream_format must be audio or sse")
        data = await file.read(s.options.max_upload_bytes + 1)
        if len(data) > s.options.max_upload_bytes:
            raise TooLong(f"the file is larger than {s.options.max_upload_bytes // 2**20} MB")
        target = s.models.get(model)
        made, run = await run_in_threadpool(start, target, voice, data, seed, s.options)
    except Exception as exc:
        return s.fail("conversions", exc)
    lock, conv = target.scheduler.lock, run.converter
    step = locked(lock, run)
    if stream_format is None:
        try:
            parts = await run_in_threadpool(lambda: [p.audio for p in iter(step, None)])
            body = await s.post(finish, conv, parts, fmt, made)
        except Exception as exc:
            return s.fail("conversions", exc)
        s.metrics.success.labels("conversions").inc()
        headers = {PROVENANCE_HEADER: json.dumps(made, sort_keys=True, separators=(",", ":"))}
        return Response(body, media_type=RESPONSE_FORMATS[fmt], headers=headers)
    sse = stream_format == "sse"
    kind = "text/event-stream" if sse else RESPONSE_FORMATS[fmt]
    return StreamingResponse(streamed(s, conv, step, fmt, sse), media_type=kind)


class Run:
    """A conversion under way: its converter and its pieces (an iterator)."""

    def __init__(self, converter, pieces):
        self.converter, self.pieces = converter, pieces


def start(target, voice: str, data: bytes, seed, options):
    """Check the source (its length by decoding it, block by block) and the voice, and set the
    conversion up (nothing converted yet)."""
    from chatterbox_cli.synth.convert import from_engine, scan_source

    if target.converter is None:
        target.converter = from_engine(target.engine)
    conv = target.converter
    limit = f" (this server converts at most {options.max_convert_s:g} s)"
    plan = scan_source(data, "the uploaded file", max_s=options.max_convert_s, hint=limit)
    conds, voice_id = target.voices.get(voice, target.scheduler.lock)
    digest = hashlib.sha256(data).hexdigest()[:16]
    made = convert_record(conv, voice=voice_id, seed=seed, source_sha256=digest, cfm_steps=None)
    return made, Run(conv, conv.convert(plan, conds.gen, seed=seed))


def locked(lock, run: Run):
    """The next converted piece (None at the end), made under the model's lock."""

    def step():
        with lock:
            return next(run.pieces, None)

    return step


def finish(conv, parts: list, fmt: str, made: dict) -> bytes:
    from chatterbox_cli.post.audio import master

    cuts = np.cumsum([len(p) for p in parts])[:-1].tolist()  # Perth a piece at a time
    audio, _ = master(np.concatenate(parts), conv.sample_rate, conv.watermarker, cuts=cuts)
    return encode(audio, conv.sample_rate, fmt, provenance_tags(made))


async def streamed(s, conv, step, fmt: str, sse: bool):
    from chatterbox_cli.synth.pipeline import StreamLeveler
    from chatterbox_cli.synth.request import RenderOptions

    leveler = StreamLeveler(conv.sample_rate, [], RenderOptions(pause_s=0), conv.watermarker)
    enc = StreamEncoder(fmt, conv.sample_rate)
    try:
        while (piece := await run_in_threadpool(step)) is not None:
            data = await s.post(lambda a: enc.feed(leveler.level(a)), piece.audio)
            if data:
                yield sse_event(data) if sse else data
        tail = enc.close()
        if tail:
            yield sse_event(tail) if sse else tail
        s.metrics.success.labels("conversions").inc()
        if sse:
            yield f"data: {json.dumps({'type': 'speech.audio.done'})}\n\n".encode()
    except Exception as exc:  # after the status line: SSE says so, audio ends early
        event = late_error(s, "conversions", exc)
        if sse:
            yield event
