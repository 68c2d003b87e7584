"""`chatterbox serve`, first slice (imported only by that command): the engine behind an
OpenAI-style `POST /v1/audio/speech` and `GET /health`. One synthesis at a time for now (a
lock around the engine); every response is the same leveled, watermarked audio `say` writes.
Errors are 4xx JSON, never tracebacks.
"""

from __future__ import annotations

import asyncio
import hmac
import io
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

from chatterbox_cli.errors import BadInput, ChatterboxError

RESPONSE_FORMATS = {"wav": "audio/wav", "mp3": "audio/mpeg", "opus": "audio/ogg",
                    "flac": "audio/flac", "pcm": "audio/pcm"}  # fmt: skip
"""OpenAI's formats; `pcm` is raw 16-bit little-endian mono at 24 kHz, as there."""


class Speech(BaseModel):
    model_config = ConfigDict(extra="forbid")
    input: str
    model: str | None = None
    voice: str | None = None
    response_format: str = "mp3"
    speed: float = 1.0
    language: str | None = None
    seed: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_new_tokens: int | None = None


@dataclass(frozen=True)
class ServeOptions:
    max_text_chars: int = 4096
    api_token: str | None = None


def encode(audio, sr: int, fmt: str) -> bytes:
    """The response body for `fmt`."""
    import soundfile as sf

    from chatterbox_cli.sinks import AudioFormat

    args = {"format": "RAW", "subtype": "PCM_16", "endian": "LITTLE"} if fmt == "pcm" else None
    buf = io.BytesIO()
    with sf.SoundFile(buf, "w", sr, 1, **(args or AudioFormat(fmt).check().soundfile_args())) as f:
        f.write(audio)  # pcm: libsndfile's own float -> int16, the same samples as wav
    return buf.getvalue()


def create_app(engine, options: ServeOptions = ServeOptions()):
    """A FastAPI app around a loaded engine."""
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, Response
    from starlette.concurrency import run_in_threadpool

    app = FastAPI(title="chatterbox-cli", docs_url=None, redoc_url=None)
    lock = asyncio.Lock()
    waiting = 0

    def error(status: int, message: str, kind: str = "invalid_request_error"):
        return JSONResponse({"error": {"message": message, "type": kind}}, status_code=status)

    @app.exception_handler(RequestValidationError)
    async def bad_request(_request, exc):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return error(400, f"{where or 'body'}: {first.get('msg', 'invalid request')}")

    @app.middleware("http")
    async def auth(request: Request, call_next):
        if options.api_token and request.url.path != "/health":
            given = request.headers.get("authorization", "")
            if not hmac.compare_digest(given, f"Bearer {options.api_token}"):
                return error(401, "missing or wrong bearer token", "authentication_error")
        return await call_next(request)

    @app.get("/health")
    async def health():
        return {"status": "ok", "model": engine.source.kind, "device": engine.device,
                "queue": waiting}  # fmt: skip

    @app.post("/v1/audio/speech")
    async def speech(req: Speech):
        nonlocal waiting
        fmt = req.response_format.lower()
        if fmt not in RESPONSE_FORMATS:
            return error(400, f"response_format must be one of: {', '.join(RESPONSE_FORMATS)}")
        if req.speed != 1.0:
            return error(400, "speed is not supported: Chatterbox has no speed control")
        if len(req.input) > options.max_text_chars:
            return error(413, f"input is longer than {options.max_text_chars} characters")
        if req.model not in (None, "", engine.source.kind, "chatterbox"):
            return error(400, f"model {req.model!r} is not loaded; this server runs "
                              f"{engine.source.kind!r}")  # fmt: skip
        waiting += 1
        try:
            async with lock:
                audio = await run_in_threadpool(synthesize, engine, req)
        except ChatterboxError as exc:
            return error(400, " ".join(str(exc).split()))
        finally:
            waiting -= 1
        body = await run_in_threadpool(encode, audio, engine.sample_rate, fmt)
        return Response(body, media_type=RESPONSE_FORMATS[fmt])

    return app


def synthesize(engine, req):
    """One request, exactly as `say` renders a file (groups, loudness, watermark)."""
    from dataclasses import replace

    from chatterbox_cli import voices
    from chatterbox_cli.pipeline import RenderOptions, conditionals, render
    from chatterbox_cli.text import split_groups

    family = engine.family
    lang = family.language(req.language)
    groups = split_groups(req.input, lang=lang)
    if not groups:
        raise BadInput("input is empty; give some words to speak")
    voice = None if req.voice in (None, "", "default", "builtin") else req.voice
    conds = conditionals(engine, voices.resolve(voice, engine.source.kind))
    knobs = {
        k: v for k, v in (("temperature", req.temperature), ("top_p", req.top_p)) if v is not None
    }
    sampling = replace(family.defaults, **knobs)
    opts = RenderOptions(
        sampling=sampling, seed=req.seed, max_new_tokens=req.max_new_tokens, retries=0
    ).check()
    return render(engine, groups, conds, opts).audio
