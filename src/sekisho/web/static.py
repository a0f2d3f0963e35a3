"""The service's few static files (CSS, JS), read once at start and served from memory.

No disk access and no thread hop per request: pages keep their styles and scripts quickly
even while every core is busy hashing a login flood. Answers carry an ETag, and a
matching ``If-None-Match`` gets ``304``.
"""

from __future__ import annotations

import hashlib
import mimetypes
from importlib.resources import files

from fastapi import APIRouter
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

_CACHE_CONTROL = "public, max-age=3600"


def _load(package: str, directory: str) -> dict[str, tuple[bytes, str, str]]:
    """``name -> (body, etag, media type)`` for every file in the package directory."""
    loaded = {}
    for entry in (files(package) / directory).iterdir():
        if entry.is_file():
            body = entry.read_bytes()
            media = mimetypes.guess_type(entry.name)[0] or "application/octet-stream"
            if media.startswith("text/") or media.endswith("javascript"):
                media += "; charset=utf-8"
            loaded[entry.name] = (body, f'"{hashlib.sha256(body).hexdigest()[:20]}"', media)
    return loaded


def static_router(package: str = "sekisho", directory: str = "static") -> APIRouter:
    router = APIRouter(include_in_schema=False)
    assets = _load(package, directory)

    @router.get("/static/{name}")
    async def static_file(name: str, request: Request) -> Response:
        found = assets.get(name)
        if found is None:
            raise HTTPException(404)
        body, etag, media = found
        headers = {"ETag": etag, "Cache-Control": _CACHE_CONTROL}
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        return Response(body, media_type=media, headers=headers)

    return router
