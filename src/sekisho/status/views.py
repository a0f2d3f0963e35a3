"""``/status.json`` and the admin API's incident objects.

``GET /status.json`` (public, no authentication; every text in both languages)::

    {
      "updated": "2026-01-05T03:00:00Z",          // when this answer was composed (RFC 3339)
      "status": "degraded",                       // the worst component state
      "components": [
        {"id": "email",                           // sekisho.status.components.Component
         "name": {"ja": "メール配信", "en": "Email delivery"},
         "state": "degraded",                     // operational | degraded | maintenance | outage
         "message": {"ja": "…", "en": "Email is delayed"},   // or a maintenance note, or null
         "since": "2026-01-05T02:55:00Z",         // or null (operational, maintenance)
         "incidents": [12]}                       // ids of open incidents naming it
      ],
      "incidents": [                              // open first, then resolved in the last
        {"id": 12,                                //   status_resolved_days; newest first
         "state": "identified",                   // investigating | identified | monitoring
                                                  //   | resolved
         "impact": "outage",                      // degraded | outage
         "components": ["email"],
         "title": {"ja": "…", "en": "…"},
         "opened_at": "…", "updated_at": "…", "resolved_at": null,
         "url": "https://id.example.jp/status#incident-12",
         "updates": [                             // newest first
           {"state": "identified", "posted_at": "…", "message": {"ja": "…", "en": "…"}}]}
      ]
    }

The admin API answers with the same incident objects, each update also carrying
``posted_by`` (the staff account id, or null for the CLI).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sekisho.status.board import StatusSnapshot, WindowNote
from sekisho.status.components import LABELS
from sekisho.status.models import Incident
from sekisho.web.i18n import LOCALES, translations


def rfc3339(moment: datetime) -> str:
    """``2026-01-05T03:00:00Z``: RFC 3339 §5.6, always UTC, whole seconds."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _both(message_id: str) -> dict[str, str]:
    return {locale: translations(locale).gettext(message_id) for locale in LOCALES}


def _note(note: WindowNote | None) -> dict[str, str] | None:
    if note is None or not (note.note_ja or note.note_en):
        return None
    return {"ja": note.note_ja or note.note_en or "", "en": note.note_en or note.note_ja or ""}


def _maybe(moment: datetime | None) -> str | None:
    return rfc3339(moment) if moment is not None else None


def incident_url(base_url: str, incident_id: int) -> str:
    return f"{base_url.rstrip('/')}/status#incident-{incident_id}"


def incident_view(incident: Incident, base_url: str, *, staff: bool = False) -> dict[str, Any]:
    updates = []
    for update in incident.updates:
        item: dict[str, Any] = {"state": update.state, "posted_at": rfc3339(update.posted_at),
                                "message": {"ja": update.body_ja, "en": update.body_en}}
        if staff:
            item["posted_by"] = update.posted_by
        updates.append(item)
    return {
        "id": incident.id,
        "state": incident.state,
        "impact": incident.impact,
        "components": list(incident.components),
        "title": {"ja": incident.title_ja, "en": incident.title_en},
        "opened_at": rfc3339(incident.opened_at),
        "updated_at": rfc3339(incident.updated_at),
        "resolved_at": _maybe(incident.resolved_at),
        "url": incident_url(base_url, incident.id),
        "updates": updates,
    }


def status_view(snapshot: StatusSnapshot, base_url: str) -> dict[str, Any]:
    """The ``/status.json`` document (shape in the module docstring)."""
    return {
        "updated": rfc3339(snapshot.at),
        "status": snapshot.overall,
        "components": [
            {"id": c.component, "name": _both(LABELS[c.component]), "state": c.state,
             "message": _both(c.message) if c.message else _note(c.maintenance),
             "since": _maybe(c.since),
             "incidents": list(c.incident_ids)}
            for c in snapshot.components
        ],
        "incidents": [incident_view(i, base_url) for i in snapshot.incidents],
    }
