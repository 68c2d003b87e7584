"""The server's one error-mapping layer: an exception -> HTTP status, error type and a one-line
message (HTTP routes and the WebSocket both answer with it)."""

import logging

from chatterbox_cli.runtime.errors import ChatterboxError, DiskFull
from chatterbox_cli.runtime.recordings import TooLong as LongRecording
from chatterbox_cli.server.models import NotLoaded, Unknown
from chatterbox_cli.server.page import NoPage
from chatterbox_cli.server.scheduler import Cancelled, QueueFull
from chatterbox_cli.server.session import Exists, Timeout, TooLong

log = logging.getLogger("chatterbox.serve")


def status_of(exc: BaseException) -> tuple[int, str]:
    """The one error-mapping layer of the server: HTTP status and error type (the first
    matching class wins, so subclasses come before ChatterboxError)."""

    table = (
        (TooLong, 413, "invalid_request_error"),
        (LongRecording, 413, "invalid_request_error"),
        (DiskFull, 507, "insufficient_storage"),
        (Exists, 409, "invalid_request_error"),
        (NotLoaded, 409, "invalid_request_error"),
        (Unknown, 404, "not_found_error"),
        (NoPage, 404, "not_found_error"),
        (QueueFull, 429, "rate_limit_error"),
        (Timeout, 504, "timeout_error"),
        (Cancelled, 503, "cancelled"),
        (ChatterboxError, 400, "invalid_request_error"),
    )
    return next(((status, kind) for cls, status, kind in table if isinstance(exc, cls)),
                (500, "server_error"))  # fmt: skip


def message_of(exc: BaseException) -> str:
    if isinstance(exc, ChatterboxError) or status_of(exc)[0] < 500:
        return " ".join(str(exc).split())
    log.error("request failed: %s: %s", type(exc).__name__, exc)
    return f"internal error ({type(exc).__name__}); the server keeps running"
