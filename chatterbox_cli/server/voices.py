"""`GET /v1/audio/voices` and `POST /v1/voices`: the server's cached voices, and a reference clip
uploaded as a new one (checked and prepared as `chatterbox voice cache` does)."""

import tempfile
from pathlib import Path

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from chatterbox_cli.models.voices import (
    AUDIO_SUFFIXES,
    VoiceMeta,
    cached_path,
    inspect_reference,
    list_voices,
    make_voice,
    now_iso,
)
from chatterbox_cli.runtime.atomic import disk_full, space_error
from chatterbox_cli.runtime.errors import BadInput
from chatterbox_cli.server.session import Exists, TooLong
from chatterbox_cli.server.state import served

router = APIRouter()


@router.get("/v1/audio/voices")
async def voices_list(request: Request, model: str | None = None):
    """The voices a model (`?model=`; the default one otherwise) can speak with."""
    s = served(request)
    try:
        family = s.models.known(model).source.family if model else s.models.default.source.family
    except Exception as exc:
        return s.fail("voices", exc)
    return {"object": "list", "data": await run_in_threadpool(voice_entries, family)}


def voice_entries(family) -> list[dict]:
    """`default` (the server's voice) and every cached voice this family reads."""
    kind = family.name
    found = [{"voice_id": "default", "name": "default", "model": kind, "builtin": True}]
    found += [
        {
            "voice_id": e.name,
            "name": e.name,
            "model": e.model,
            "builtin": False,
            "duration_s": e.duration_s,
            "created": e.created,
        }  # fmt: skip
        for e in list_voices()
        if family.reads_voices_of(e.model)
    ]
    return found


@router.post("/v1/voices", status_code=201)
async def voices_add(
    request: Request,
    name: str = Form(...),
    file: UploadFile = File(...),
    overwrite: bool = Form(False),
    model: str | None = Form(None),
):
    """A clip as a voice for `model` (the default one otherwise)."""
    s = served(request)
    options = s.options
    try:
        data = await file.read(options.max_upload_bytes + 1)
        if len(data) > options.max_upload_bytes:
            raise TooLong(upload_limit(options))
        suffix = Path(file.filename or "clip.wav").suffix.lower() or ".wav"
        target = s.models.get(model)
        args = (target.engine, name, data, suffix, overwrite, options, target.scheduler.lock)
        record = await run_in_threadpool(cache_voice, *args)
    except Exception as exc:
        return s.fail("voices", exc)
    return JSONResponse(record, status_code=201)


def upload_limit(options) -> str:
    return f"the clip is larger than {options.max_upload_bytes // (1024 * 1024)} MB"


def cache_voice(engine, name: str, data: bytes, suffix: str, overwrite: bool, options, lock):
    """Check the clip, prepare its conditionals between batches, save NAME.pt atomically."""
    import hashlib

    target = cached_path(name)
    if suffix not in AUDIO_SUFFIXES:
        raise BadInput(f"{suffix} is not an audio file; upload WAV, FLAC or MP3")
    if target.exists() and not overwrite:
        raise Exists(f"voice {name!r} exists; send overwrite=true to replace it")
    with tempfile.TemporaryDirectory(prefix="chatterbox-voice-") as tmp:
        clip = Path(tmp) / f"upload{suffix}"
        try:
            clip.write_bytes(data)
        except OSError as exc:
            cause = space_error(exc)
            if cause is None:
                raise
            raise disk_full(clip, cause, len(data)) from None
        info = inspect_reference(clip)
        if info.duration_s > options.max_upload_s or not info.whole:
            raise TooLong(
                f"the clip is {'at least ' if not info.whole else ''}{info.duration_s:.0f} s; send "
                f"at most {options.max_upload_s:.0f} s (5-10 s of one clean speaker is best)"
            )
        meta = VoiceMeta(
            name=name,
            model=engine.source.family.name,
            source_file=f"upload{suffix}",
            source_sha256=hashlib.sha256(data).hexdigest(),
            duration_s=round(info.duration_s, 3),
            created=now_iso(),
        )
        make_voice(engine, clip, target, meta, lock)
    return {"voice_id": name, "name": name, "model": meta.model, "duration_s": meta.duration_s,
            "created": meta.created}  # fmt: skip
