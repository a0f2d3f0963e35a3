"""``/healthz`` (liveness) and ``/status`` (what members see): the page, ``/status.json`` and
the Atom feed ``/status.atom``. The admin incident API is in ``routes_api.py``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from sekisho.status.board import (
    STATE_LABELS,
    StatusBoard,
    components_for_path,
)
from sekisho.status.components import LABELS
from sekisho.status.feed import INCIDENT_STATE_LABELS, status_feed
from sekisho.status.service import resolved_days
from sekisho.status.views import status_view
from sekisho.web.i18n import N_, translations
from sekisho.web.templating import Pages

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
    pages: Pages = request.app.state.pages
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


_KNOWN_PROBLEM = N_("We know of a problem that may be behind this: %(title)s")
_COMPONENT_STATE = N_("%(component)s: %(state)s")


async def status_notice(request: Request) -> dict[str, Any] | None:
    """For error pages: what ``/status`` says about the components this request needs, or
    ``None`` when they are all operational. Never raises.

    ``{"state": "outage", "component": "login", "text": "…", "href": "/status#incident-12",
    "incident": 12 | None}``, ``text`` in the request's language.
    """
    components = components_for_path(request.url.path)
    if not components:
        return None
    notice = await status_board(request).notice_for(components)
    if notice is None:
        return None
    locale = request.state.facts.locale
    gettext = translations(locale).gettext
    if notice.incident is not None:
        title = notice.incident.title_en if locale == "en" else notice.incident.title_ja
        text = gettext(_KNOWN_PROBLEM) % {"title": title}
    elif notice.message is not None:
        text = gettext(notice.message)
    else:
        text = gettext(_COMPONENT_STATE) % {"component": gettext(LABELS[notice.component]),
                                            "state": gettext(STATE_LABELS[notice.state])}
    return {"state": notice.state, "component": notice.component, "text": text,
            "href": f"/status?lang={locale}#{notice.anchor}",
            "incident": notice.incident.id if notice.incident else None}
