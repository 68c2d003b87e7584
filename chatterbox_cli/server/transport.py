"""The server against hostile clients, below the routes: request bodies capped (by their
Content-Length and as they arrive) and timed out when they stall, WebSocket frames capped,
connections that never finish their headers closed, and a ceiling on open connections. The
routes' own limits (text length, upload size, recording length) sit on top of these."""

from __future__ import annotations

import asyncio
import json

JSON_BODY_BYTES = 1024 * 1024
"""A speech request is a few kB of JSON (4096 characters of text by default)."""
MULTIPART_SLACK = 64 * 1024
"""Form fields and boundaries around an upload."""
UPLOAD_PATHS = ("/v1/voices", "/v1/audio/conversions")
BODY_STALL_S = 30.0
"""A request body that sends nothing for this long is answered 408."""
HEADER_TIMEOUT_S = 30.0
"""A connection whose request line and headers are not complete by then is closed."""
WS_MAX_FRAME = 1024 * 1024
"""Largest WebSocket message (uvicorn's default is 16 MB; ours are small JSON)."""
MAX_CONNECTIONS = 1000
"""Open connections at once; past this uvicorn answers 503."""


def cap_kb(n: int) -> str:
    return f"{n // 1024} kB"


class BodyLimit:
    """ASGI middleware: a request's body is read here first, whole, before its route sees it:
    413 as soon as it passes its route's cap (uploads: the upload limit plus form overhead;
    everything else: `JSON_BODY_BYTES`), whatever Content-Length said or if there was none;
    408 when it stalls for `BODY_STALL_S`. The route then reads it from memory."""

    def __init__(self, app, upload_bytes: int):
        self.app, self.upload_bytes = app, upload_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        if path in UPLOAD_PATHS:
            cap = self.upload_bytes + MULTIPART_SLACK
            too_big = f"the upload is larger than {self.upload_bytes / 2**20:g} MB"
        else:
            cap, too_big = (
                JSON_BODY_BYTES,
                f"the request body is larger than {cap_kb(JSON_BODY_BYTES)}",
            )
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > cap):
            return await _refuse(send, 413, too_big)
        parts, size = [], 0
        while True:
            try:
                message = await asyncio.wait_for(receive(), BODY_STALL_S)
            except TimeoutError:
                return await _refuse(send, 408, "the request body stalled; send it whole")
            if message["type"] == "http.disconnect":
                return None
            parts.append(message.get("body", b""))
            size += len(parts[-1])
            if size > cap:
                return await _refuse(send, 413, too_big)
            if not message.get("more_body"):
                break
        whole = {"type": "http.request", "body": b"".join(parts), "more_body": False}
        del parts

        async def replay():
            nonlocal whole
            if whole is not None:
                message, whole = whole, None
                return message
            return await receive()  # after the body: a disconnect, for streaming replies

        return await self.app(scope, replay, send)


async def _refuse(send, status: int, message: str) -> None:
    body = json.dumps({"error": {"message": message, "type": "invalid_request_error"}}).encode()
    headers = [(b"content-type", b"application/json"), (b"connection", b"close")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def protocol_class():
    """uvicorn's h11 protocol, closing a connection whose headers are not complete within
    `HEADER_TIMEOUT_S` of its opening (or of its last response): uvicorn waits forever, so a
    client trickling a header a byte at a time held its connection indefinitely."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class Protocol(H11Protocol):
        deadline: asyncio.TimerHandle | None = None

        def _arm(self) -> None:
            self._disarm()
            self.deadline = self.loop.call_later(HEADER_TIMEOUT_S, self._expire)

        def _disarm(self) -> None:
            if self.deadline is not None:
                self.deadline.cancel()
                self.deadline = None

        def _expire(self) -> None:
            if self.cycle is None or self.cycle.response_complete:
                self.transport.close()

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            upgraded = self.transport.get_protocol() is not self  # a WebSocket now
            if upgraded or (self.cycle is not None and not self.cycle.response_complete):
                self._disarm()  # headers complete: the request is the routes' now

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm()

        def connection_lost(self, exc) -> None:
            self._disarm()
            super().connection_lost(exc)

    return Protocol


def config(app, host: str, port: int, **kwargs):
    """The uvicorn config every served app runs under (`chatterbox serve` and the tests)."""
    import uvicorn

    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=protocol_class(),
        ws_max_size=WS_MAX_FRAME,
        limit_concurrency=MAX_CONNECTIONS,
        **kwargs,
    )
