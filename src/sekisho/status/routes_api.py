"""The admin incident API under ``/api/v1/admin/incidents`` (staff with the admin role).

| method and path | body | success |
| --- | --- | --- |
| ``GET /api/v1/admin/incidents?resolved=true&limit=50`` | – | ``200 {"incidents": [...]}`` |
| ``POST /api/v1/admin/incidents`` | :class:`IncidentOpenIn` | ``201 {"incident": {...}}`` |
| ``GET /api/v1/admin/incidents/{id}`` | – | ``200 {"incident": {...}}`` |
| ``POST /api/v1/admin/incidents/{id}/updates`` | :class:`IncidentUpdateIn` | ``201 {"incident"}`` |
| ``POST /api/v1/admin/incidents/{id}/resolve`` | :class:`IncidentResolveIn` | ``200 {"incident"}`` |

Incident objects are those of ``/status.json`` plus ``posted_by`` on each update
(:mod:`sekisho.status.views`). No session: ``401 auth.required``; a member: ``403
auth.forbidden``; unknown id: ``404 incident.not_found``; updating a resolved incident:
``409 incident.resolved``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request

from sekisho.sessions.service import ActiveSession
from sekisho.status.models import Incident
from sekisho.status.routes import status_board
from sekisho.status.schemas import IncidentOpenIn, IncidentResolveIn, IncidentUpdateIn
from sekisho.status.service import IncidentService
from sekisho.status.views import incident_view
from sekisho.web.deps import require_admin, require_json

router = APIRouter(prefix="/api/v1/admin/incidents", tags=["admin: status"],
                   dependencies=[Depends(require_json), Depends(require_admin)])


def _service(request: Request) -> IncidentService:
    return status_board(request).incidents


def _one(request: Request, incident: Incident) -> dict[str, Any]:
    return {"incident": incident_view(incident, request.app.state.core.settings.base_url,
                                      staff=True)}


@router.get("")
async def list_incidents(request: Request,
                         resolved: bool = Query(True, description="Include resolved ones."),
                         limit: int = Query(50, ge=1, le=200)) -> dict[str, Any]:
    """Every incident, open first, newest first (resolved ones however old)."""
    service = _service(request)
    if resolved:
        incidents = await service.newest(limit=limit)
    else:
        incidents = [i for i in await service.newest(limit=limit) if i.is_open]
    base_url = request.app.state.core.settings.base_url
    return {"incidents": [incident_view(i, base_url, staff=True) for i in incidents]}


@router.post("", status_code=201)
async def open_incident(body: IncidentOpenIn, request: Request,
                        admin: ActiveSession = Depends(require_admin)) -> dict[str, Any]:
    incident = await _service(request).open(
        title=body.title.text(), body=body.message.text(), components=body.components,
        impact=body.impact, state=body.state, posted_by=admin.account.id)
    return _one(request, incident)


@router.get("/{incident_id}")
async def get_incident(incident_id: int, request: Request) -> dict[str, Any]:
    return _one(request, await _service(request).get(incident_id))


@router.post("/{incident_id}/updates", status_code=201)
async def post_update(incident_id: int, body: IncidentUpdateIn, request: Request,
                      admin: ActiveSession = Depends(require_admin)) -> dict[str, Any]:
    incident = await _service(request).update(
        incident_id, state=body.state, body=body.message.text(), impact=body.impact,
        posted_by=admin.account.id)
    return _one(request, incident)


@router.post("/{incident_id}/resolve")
async def resolve_incident(incident_id: int, request: Request,
                           body: IncidentResolveIn | None = None,
                           admin: ActiveSession = Depends(require_admin)) -> dict[str, Any]:
    incident = await _service(request).resolve(
        incident_id, body=body.message.text() if body and body.message else None,
        posted_by=admin.account.id)
    return _one(request, incident)
