"""`chatterbox serve` (imported only by that command): the engine behind HTTP.

Routes (one `APIRouter` per module, reading the engine from `app.state.served`): OpenAI-style
`POST /v1/audio/speech` (buffered, or streamed as audio or SSE),
`GET /v1/audio/voices`, `POST /v1/voices`, `GET /health`, `GET /metrics`, and the WebSocket
`/v1/audio/stream` (`ws.py`). Every request goes through one scheduler (`scheduler.py`)
whose batched T3 decode all requests share; every response is leveled and watermarked as
`say`'s files are. Errors are JSON with a 4xx status (5xx only for a fault of ours), never
a traceback.
"""

from chatterbox_cli.server import health, speech, voices, ws
from chatterbox_cli.server.metrics import Metrics
from chatterbox_cli.server.scheduler import Scheduler
from chatterbox_cli.server.session import PostThread, Voices
from chatterbox_cli.server.state import Served, ServeOptions, error, served

__all__ = ["ServeOptions", "create_app"]


def create_app(engine, options: ServeOptions = ServeOptions(), default_voice=None):
    """A FastAPI app around a loaded engine, with its scheduler and post-processing thread
    started and stopped by the app's lifespan. `default_voice` (a resolved VoiceSpec) answers
    `voice: default`."""
    import contextlib

    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError

    @contextlib.asynccontextmanager
    async def lifespan(app):
        s = app.state.served
        s.scheduler = Scheduler(
            engine, options.max_queue, options.batch_size, s.metrics.cancelled.inc
        )
        s.post = PostThread()
        yield
        s.scheduler.close()
        s.post.close()

    app = FastAPI(title="chatterbox-cli", docs_url=None, redoc_url=None, lifespan=lifespan)
    s = Served(engine, options, Voices(engine, default_voice), None)
    s.metrics = Metrics(lambda: s.depth)
    app.state.served = s

    @app.exception_handler(RequestValidationError)
    async def bad_request(_request, exc):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return error(400, f"{where or 'body'}: {first.get('msg', 'invalid request')}")

    @app.exception_handler(Exception)
    async def unexpected(request, exc):
        return served(request).fail("any", exc)

    @app.middleware("http")
    async def auth(request: Request, call_next):
        if request.url.path != "/health" and not s.authorized(request.headers.get("authorization")):
            return error(401, "missing or wrong bearer token", "authentication_error")
        return await call_next(request)

    for module in (health, speech, voices, ws):
        app.include_router(module.router)
    return app
