"""`GET /health` (no token needed: load balancers probe it) and `GET /metrics` (Prometheus)."""

from fastapi import APIRouter, Request
from fastapi.responses import Response

from chatterbox_cli.server.state import served

router = APIRouter()


@router.get("/health")
async def health(request: Request):
    s = served(request)
    return {"status": "ok", "model": s.engine.source.kind, "device": s.engine.device,
            "queue": s.depth}  # fmt: skip


@router.get("/metrics")
async def prometheus(request: Request):
    body, kind = served(request).metrics.render()
    return Response(body, media_type=kind)
