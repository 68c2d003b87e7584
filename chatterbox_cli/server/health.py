"""`GET /health` (no token needed: load balancers probe it) and `GET /metrics` (Prometheus)."""

from fastapi import APIRouter, Request
from fastapi.responses import Response

from chatterbox_cli.server.models import rss_mb
from chatterbox_cli.server.state import served

router = APIRouter()


@router.get("/health")
async def health(request: Request):
    s = served(request)
    default = s.models.default
    models = [
        {k: m[k] for k in ("id", "loaded", "state", "weights_mb", "rss_at_load_mb", "queue")}
        for m in (slot.describe() for slot in s.models)
    ]
    return {"status": "ok", "model": default.id, "device": default.device, "queue": s.depth,
            "rss_mb": rss_mb(), "models": models}  # fmt: skip


@router.get("/metrics")
async def prometheus(request: Request):
    body, kind = served(request).metrics.render()
    return Response(body, media_type=kind)
