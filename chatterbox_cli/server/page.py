"""The web page at `/` (static files in the package: no build step, no CDN, works offline): a
person types text, picks model, voice and language from the API's lists, and hears it stream.
Open without a token (it holds no data); everything it fetches uses the page's token."""

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse

from chatterbox_cli.runtime.errors import ChatterboxError

router = APIRouter()
WEB = Path(__file__).with_name("web")
TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}


class NoPage(ChatterboxError):
    """A path under /web that is not one of the page's files (HTTP 404)."""


@router.get("/", response_class=HTMLResponse)
async def index():
    return FileResponse(WEB / "index.html", media_type="text/html")


@router.get("/web/{name}")
async def asset(name: str):
    path = WEB / name
    if "/" in name or path.suffix not in TYPES or not path.is_file():
        raise NoPage(f"no such file: /web/{name}")
    return FileResponse(path, media_type=TYPES[path.suffix])
