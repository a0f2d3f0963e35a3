"""What error pages say about the service's state: the notice for the components a request
needs, from the same board ``/status`` shows."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from sekisho.status.board import STATE_LABELS, components_for_path
from sekisho.status.components import LABELS
from sekisho.web.i18n import N_, translations

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
    notice = await request.app.state.status.notice_for(components)
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
