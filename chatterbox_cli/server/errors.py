"""The server's one error-mapping layer: an exception -> HTTP status, error type and a one-line
message (HTTP routes and the WebSocket both answer with it); and the OpenAPI document made to
say what the server really answers: every error in that JSON shape (400 where FastAPI would
document its 422, which we never send, and each status a route can give), audio replies as
audio. Clients and the schema fuzzer in the tests hold every reply against it."""

import logging

from chatterbox_cli.runtime.errors import ChatterboxError, DiskFull
from chatterbox_cli.runtime.recordings import TooLong as LongRecording
from chatterbox_cli.server.models import NotLoaded, Unknown
from chatterbox_cli.server.page import TYPES, NoPage
from chatterbox_cli.server.scheduler import Cancelled, QueueFull
from chatterbox_cli.server.session import RESPONSE_FORMATS, Exists, Timeout, TooLong

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


ERRORS = {
    "400": "The request is invalid (a field, the text, a voice, a file).",
    "401": "A bearer token is required and was missing or wrong.",
    "404": "No such model, voice or page.",
    "408": "The request body stalled.",
    "409": "The model is not loaded, or the name is taken.",
    "413": "The text, body, upload or recording is over the server's limit.",
    "429": "The queue is full; retry after `Retry-After`.",
    "503": "Cancelled, or the server is over its connection limit.",
    "504": "The request ran past the server's timeout.",
    "507": "The server's disk is full.",
}
AUDIO = [*RESPONSE_FORMATS.values(), "text/event-stream", "application/json"]
BODIES = {
    "/v1/audio/speech": AUDIO,
    "/v1/audio/conversions": AUDIO,
    "/metrics": ["text/plain"],
    "/web/{name}": list(TYPES.values()),
}
"""What a 200 holds where it is not JSON."""
ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type"],
            "properties": {"message": {"type": "string"}, "type": {"type": "string"}},
        }
    },
}


def document(app) -> None:
    """Replace `app.openapi` with FastAPI's document, corrected as the module says."""
    from fastapi.openapi.utils import get_openapi

    def build() -> dict:
        if app.openapi_schema:
            return app.openapi_schema
        doc = get_openapi(title=app.title, version=app.version, routes=app.routes)
        doc.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
        error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
        for path, operations in doc.get("paths", {}).items():
            for op in operations.values():
                responses = op.setdefault("responses", {})
                responses.pop("422", None)
                for code, why in ERRORS.items():
                    responses.setdefault(code, {"description": why, "content": error})
                if path in BODIES and "200" in responses:
                    responses["200"]["content"] = {kind: {} for kind in BODIES[path]}
        app.openapi_schema = doc
        return doc

    app.openapi = build
