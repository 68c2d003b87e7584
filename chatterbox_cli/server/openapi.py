"""The server's OpenAPI document says what it really answers: every error as the JSON body the
error layer writes (400 where FastAPI would document its 422, which we never send, and each
status a route can give), audio replies as audio. Clients and the schema fuzzer in the tests
hold every reply against it."""

from __future__ import annotations

from chatterbox_cli.server.page import TYPES
from chatterbox_cli.server.session import RESPONSE_FORMATS

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
