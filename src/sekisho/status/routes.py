"""``/healthz`` (liveness) and ``/status`` (what members see): the page, ``/status.json`` and
the Atom feed ``/status.atom``. The admin incident API is in ``routes_api.py``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from sekisho.status.board import (
    STATE_LABELS,
    StatusBoard,
)
from sekisho.status.components import LABELS
from sekisho.status.feed import INCIDENT_STATE_LABELS, status_feed
from sekisho.status.service import resolved_days
from sekisho.status.views import status_view

router = APIRouter(include_in_schema=False)

# Status answers change when staff post or deliveries fail: caches must ask again each time.
_REVALIDATE = {"Cache-Control": "no-cache"}


@router.get("/healthz")
async def healthz() -> JSONResponse:
    """Liveness only: answers without touching the database, so it stays fast under load."""
    return JSONResponse({"status": "ok"})


def status_board(request: Request) -> StatusBoard:
    """The app's :class:`StatusBoard` (built by ``create_app``)."""
    return request.app.state.status  # type: ignore[no-any-return]


@router.get("/status")
async def status_page(request: Request) -> Response:
    core = request.app.state.core
    snapshot = await status_board(request).snapshot()
    pages = request.app.state.pages
    return pages.render(request, "status.html", {
        "snapshot": snapshot, "component_labels": LABELS, "state_labels": STATE_LABELS,
        "incident_state_labels": INCIDENT_STATE_LABELS, "local_time": core.local_time,
        "resolved_days": resolved_days(core.settings),
    })


@router.get("/status.json")
async def status_json(request: Request) -> JSONResponse:
    """Components and incidents, every text in Japanese and English (shape:
    :mod:`sekisho.status.views`)."""
    snapshot = await status_board(request).snapshot()
    body = status_view(snapshot, request.app.state.core.settings.base_url)
    return JSONResponse(body, headers=_REVALIDATE)


@router.get("/status.atom")
async def status_atom(request: Request) -> Response:
    """The incidents as Atom 1.0, in the request's language (``?lang=ja|en``)."""
    core = request.app.state.core
    snapshot = await status_board(request).snapshot()
    document = status_feed(snapshot, base_url=core.settings.base_url,
                           locale=request.state.facts.locale,
                           service_name=core.settings.service_name,
                           local_time=core.local_time)
    headers = {**_REVALIDATE, "Vary": "Accept-Language, Cookie"}
    return Response(document, media_type="application/atom+xml; charset=utf-8",
                    headers=headers)
