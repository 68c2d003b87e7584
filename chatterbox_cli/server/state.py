"""What every route reads from `app.state.served`: the models (`models.py`, each with its engine,
voices and scheduler) and the server's shared parts, one set per app (schedulers and the
post-processing thread live as long as the app's lifespan)."""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import Any

from chatterbox_cli.server.errors import message_of, status_of


@dataclass(frozen=True)
class ServeOptions:
    max_text_chars: int = 4096
    api_token: str | None = None
    max_queue: int = 64
    request_timeout_s: float | None = 600.0
    max_upload_bytes: int = 10 * 1024 * 1024
    max_upload_s: float = 60.0
    """Longest voice clip an upload may hold."""
    max_convert_s: float = 600.0
    """Longest recording `/v1/audio/conversions` converts (checked by decoding, not by the
    header, which can lie)."""
    batch_size: int | None = None
    lexicon: Any = None
    """`--lexicon`, loaded: applied to every request's input."""
    asr: dict = field(default_factory=dict)
    """Model id -> the recognizer folder (`serve --asr`) that hears that model's replies."""


@dataclass
class Served:
    models: Any
    """`models.Models`: every model, loaded or not, the first the default."""
    options: ServeOptions
    metrics: Any = None
    """`metrics.Metrics`: this app's Prometheus registry."""
    post: Any = None
    """`session.PostThread`, from the lifespan's start to its end."""

    @property
    def depth(self) -> int:
        return self.models.depth

    def authorized(self, header: str | None) -> bool:
        token = self.options.api_token
        return not token or hmac.compare_digest(header or "", f"Bearer {token}")

    def fail(self, route: str, exc: BaseException):
        """The JSON error reply for `exc` (4xx for bad input, 5xx only for a fault of ours),
        counted in the metrics."""
        status, kind = status_of(exc)
        self.metrics.failed(route, status)
        headers = {"Retry-After": "1"} if status == 429 else None
        return error(status, message_of(exc), kind, headers)


def error(status: int, message: str, kind: str = "invalid_request_error", headers=None):
    from fastapi.responses import JSONResponse

    body = {"error": {"message": message, "type": kind}}
    return JSONResponse(body, status_code=status, headers=headers)


def served(request) -> Served:
    """The app's `Served` for a request or a WebSocket."""
    return request.app.state.served
