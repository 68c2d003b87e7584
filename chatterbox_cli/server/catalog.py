"""`GET /v1/models` (OpenAI's models API, plus family, languages, device and load state),
`GET /v1/models/{id}`, and loading and unloading at run time: `POST /v1/models/{id}/load`,
`DELETE /v1/models/{id}` (each on a worker thread, so other models go on serving)."""

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from chatterbox_cli.server.state import served

router = APIRouter()


@router.get("/v1/models")
async def listed(request: Request):
    return {"object": "list", "data": [m.describe() for m in served(request).models]}


@router.get("/v1/models/{model_id}")
async def one(model_id: str, request: Request):
    s = served(request)
    try:
        return s.models.known(model_id).describe()
    except Exception as exc:
        return s.fail("models", exc)


@router.post("/v1/models/{model_id}/load")
async def load(model_id: str, request: Request):
    s = served(request)
    try:
        return await run_in_threadpool(s.models.known(model_id).load)
    except Exception as exc:
        return s.fail("models", exc)


@router.delete("/v1/models/{model_id}")
async def unload(model_id: str, request: Request):
    """Waits for the model's requests in flight; new ones get a 409 meanwhile."""
    s = served(request)
    try:
        return await run_in_threadpool(s.models.known(model_id).unload)
    except Exception as exc:
        return s.fail("models", exc)
