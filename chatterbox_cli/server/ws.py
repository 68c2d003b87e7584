"""`WS /v1/audio/stream`: speech for voice UIs, several requests on one socket.

Client -> server (JSON text frames):
  {"type": "say", "id": "r1", "input": "...", ...any /v1/audio/speech field}
  {"type": "cancel", "id": "r1"}
  {"type": "set_voice", "voice": "ann"}: this socket's voice for `say`s that name none
Server -> client:
  {"type": "ready", "models", "model", "device", "voices"} on connect (`GET /v1/models` and
    the default model's `GET /v1/audio/voices` entries)
  {"type": "voice", "voice"}: a `set_voice` taken
  {"type": "start", "id", "format", "sample_rate"}
  {"type": "chunk", "id", "seq", "bytes"}, then that many bytes as one binary frame
  {"type": "done", "id", "stats"} | {"type": "done", "id", "cancelled": true}
  {"type": "error", "id" (when known), "status", "message"}
Audio is `pcm` (16-bit, 24 kHz mono) unless `response_format` says otherwise; a request's
binary frames, concatenated, are one stream in that format. Bad frames get an error message
and the socket stays open. Auth: the bearer header, or `?token=` where a browser can't set it.
"""

import asyncio
import json

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from chatterbox_cli.runtime.errors import BadInput
from chatterbox_cli.server.errors import message_of, status_of
from chatterbox_cli.server.session import Speech, heard, level
from chatterbox_cli.server.speech import start
from chatterbox_cli.server.state import served
from chatterbox_cli.server.voices import voice_entries
from chatterbox_cli.sinks.stream import StreamEncoder
from chatterbox_cli.synth.pipeline import StreamLeveler

router = APIRouter()


@router.websocket("/v1/audio/stream")
async def stream(ws: WebSocket):
    s = served(ws)
    metrics = s.metrics
    token = ws.query_params.get("token")
    header = ws.headers.get("authorization") or (f"Bearer {token}" if token else None)
    if not s.authorized(header):
        await ws.close(code=1008, reason="missing or wrong bearer token")
        return
    await ws.accept()
    send_lock = asyncio.Lock()
    tasks: dict[str, asyncio.Task] = {}
    stopped: dict[str, dict] = {}
    default = s.models.default
    voice: str | None = None
    ready = {"type": "ready", "models": [m.describe() for m in s.models], "model": default.id,
             "device": default.device}  # fmt: skip
    ready["voices"] = await run_in_threadpool(voice_entries, default.source.family)
    await ws.send_text(json.dumps(ready))

    async def send(message: dict, data: bytes | None = None):
        async with send_lock:  # a chunk's header and its bytes stay adjacent
            await ws.send_text(json.dumps(message))
            if data is not None:
                await ws.send_bytes(data)

    async def refuse(rid, status: int, message: str):
        msg = {"type": "error", "status": status, "message": message}
        await send({**msg, "id": rid} if rid is not None else msg)

    async def failed(rid, exc):
        status = status_of(exc)[0]
        metrics.failed("ws", status)
        await refuse(rid, status, message_of(exc))

    async def say(rid: str, req: Speech):
        syn = None
        try:
            syn = await start(s, req, "ws", streaming=True)
            p, engine = syn.plan, syn.engine
            sr = engine.sample_rate
            leveler = StreamLeveler(sr, p.groups, p.opts, engine.watermarker)
            enc = StreamEncoder(p.fmt, sr)
            await send({"type": "start", "id": rid, "format": p.fmt, "sample_rate": sr})
            seq = 0
            async for chunk in syn.chunks():
                data = await s.post(level, leveler, enc, chunk)
                if data:
                    await send({"type": "chunk", "id": rid, "seq": seq, "bytes": len(data)}, data)
                    seq += 1
                if p.timestamps and leveler.placed is not None:
                    said = leveler.placed.to_dict()
                    await send({"type": "timestamps", "id": rid, "segment": said})
            tail = enc.close()
            if tail:
                await send({"type": "chunk", "id": rid, "seq": seq, "bytes": len(tail)}, tail)
            stats = syn.stats()
            if syn.judge is not None:
                stats["heard"] = await heard(syn, syn.chunks_seen)
            metrics.done("ws", stats)
            await send({"type": "done", "id": rid, "stats": stats})
        except asyncio.CancelledError:
            if syn is not None:
                syn.cancel()
                stopped[rid] = syn.stats()
            raise
        except WebSocketDisconnect:
            pass
        except Exception as exc:
            await failed(rid, exc)
        finally:
            tasks.pop(rid, None)
            if syn is not None:
                syn.close()

    async def cancel(rid: str):
        task = tasks.pop(rid, None)
        if task is None:
            await refuse(rid, 404, f"no request {rid!r} is running")
            return
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        stats = stopped.pop(rid, None)
        await send({"type": "done", "id": rid, "cancelled": True, "stats": stats})

    try:
        while True:
            frame = await ws.receive()
            if frame["type"] == "websocket.disconnect":
                break
            if frame.get("text") is None:
                await refuse(None, 400, "binary frames are not accepted; send JSON text")
                continue
            try:
                msg = json.loads(frame["text"])
                if not isinstance(msg, dict):
                    raise ValueError
            except ValueError:
                await refuse(None, 400, "messages are JSON objects with a 'type'")
                continue
            kind, rid = msg.pop("type", None), msg.pop("id", None)
            if kind == "set_voice":
                try:
                    voice = await run_in_threadpool(check_voice, s, msg)
                except Exception as exc:
                    status = status_of(exc)[0]
                    await refuse(rid, status, message_of(exc))
                    continue
                await send({"type": "voice", "voice": voice or "default"})
                continue
            if kind not in ("say", "cancel") or not isinstance(rid, str) or not rid:
                await refuse(rid, 400, "send {'type': 'say' or 'cancel', 'id': a string, ...}")
                continue
            if kind == "cancel":
                await cancel(rid)
                continue
            if rid in tasks:
                await refuse(rid, 409, f"request {rid!r} is already running")
                continue
            msg.setdefault("response_format", "pcm")
            if voice is not None:
                msg.setdefault("voice", voice)
            try:
                req = Speech(**msg)
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first.get("loc", ()))
                await refuse(rid, 400, f"{where}: {first.get('msg')}")
                continue
            tasks[rid] = asyncio.create_task(say(rid, req))
    except WebSocketDisconnect:
        pass
    finally:
        for task in list(tasks.values()):
            task.cancel()
        await asyncio.gather(*tasks.values(), return_exceptions=True)


def check_voice(s, msg: dict) -> str | None:
    """A `set_voice`'s voice, prepared once by the model it names (the default otherwise)."""
    name = msg.get("voice")
    if name is not None and not isinstance(name, str):
        raise BadInput("set_voice needs 'voice': a voice name")
    model = s.models.get(msg.get("model"))
    model.voices.get(name, model.scheduler.lock)
    return None if not name or name.lower() == "default" else name
