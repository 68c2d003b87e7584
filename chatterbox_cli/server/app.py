"""`chatterbox serve` (imported only by that command): the models behind HTTP.

Routes (one `APIRouter` per module, reading the models from `app.state.served`): OpenAI-style
`POST /v1/audio/speech` (buffered, or streamed as audio or SSE), `GET /v1/models` with
`POST /v1/models/{id}/load` and `DELETE /v1/models/{id}` (`catalog.py`),
`POST /v1/audio/conversions` (`conversions.py`), `GET /v1/audio/voices`, `POST /v1/voices`,
`GET /health`, `GET /metrics`, and the WebSocket `/v1/audio/stream` (`ws.py`). Each model has
one scheduler (`scheduler.py`) whose batched T3 decode all its requests share; every response
is leveled and watermarked as `say`'s files are. Errors are JSON with a 4xx status (5xx only
for a fault of ours), never a traceback.
"""

from chatterbox_cli.server import catalog, conversions, health, page, speech, voices, ws
from chatterbox_cli.server.errors import document
from chatterbox_cli.server.metrics import Metrics
from chatterbox_cli.server.models import Models, ModelSlot, runtime_of
from chatterbox_cli.server.scheduler import Scheduler
from chatterbox_cli.server.session import PostThread, Voices
from chatterbox_cli.server.state import Served, ServeOptions, error, served
from chatterbox_cli.server.transport import BodyLimit

__all__ = ["ServeOptions", "create_app"]


def create_app(engines, options: ServeOptions = ServeOptions(), default_voice=None):
    """A FastAPI app around loaded engines (one, or a list: the first is the default model),
    each with its scheduler, and the post-processing thread, started and stopped by the app's
    lifespan. `default_voice` (a resolved VoiceSpec, or one per model id) answers
    `voice: default`."""
    import contextlib

    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException as StarletteHTTPException

    engines = engines if isinstance(engines, list | tuple) else [engines]
    s = Served(None, options)
    s.metrics = Metrics(lambda: s.depth)

    def wire(engine, voice):
        scheduler = Scheduler(
            engine, options.max_queue, options.batch_size, s.metrics.cancelled.inc
        )
        heard_by = options.asr.get(engine.source.kind)
        if heard_by is not None:
            from chatterbox_cli.post.asr import Listener

            scheduler.listener = Listener(heard_by, engine.device)
        return Voices(engine, voice), scheduler

    def voice_for(kind: str):
        return default_voice.get(kind) if isinstance(default_voice, dict) else default_voice

    slots = [
        ModelSlot(e.source.kind, e.source, e.device, runtime_of(e), voice_for(e.source.kind), wire)
        for e in engines
    ]
    for slot, engine in zip(slots, engines, strict=True):
        slot.engine = engine  # held by the slot alone, so that an unload can free it
    s.models = Models(slots)
    del engines, engine

    @contextlib.asynccontextmanager
    async def lifespan(app):
        for slot in slots:
            slot.attach(slot.engine)
        s.post = PostThread()
        yield
        for slot in slots:
            if slot.scheduler is not None:
                slot.scheduler.close()
        s.post.close()

    app = FastAPI(title="chatterbox-cli", docs_url=None, redoc_url=None, lifespan=lifespan)
    app.state.served = s

    @app.exception_handler(RequestValidationError)
    async def bad_request(_request, exc):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return error(400, f"{where or 'body'}: {first.get('msg', 'invalid request')}")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request, exc):
        return error(exc.status_code, str(exc.detail))  # as every error: {"error": ...}

    @app.exception_handler(Exception)
    async def unexpected(request, exc):
        return served(request).fail("any", exc)

    @app.middleware("http")
    async def auth(request: Request, call_next):
        path = request.url.path
        public = path in ("/health", "/") or path.startswith("/web/")
        if not public and not s.authorized(request.headers.get("authorization")):
            return error(401, "missing or wrong bearer token", "authentication_error")
        return await call_next(request)

    for module in (catalog, conversions, health, page, speech, voices, ws):
        app.include_router(module.router)
    app.add_middleware(BodyLimit, upload_bytes=options.max_upload_bytes)
    document(app)
    return app
