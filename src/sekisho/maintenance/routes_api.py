"""Admin JSON API for maintenance windows: ``/api/v1/admin/maintenance`` (staff only)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from sekisho.context import RequestContext
from sekisho.errors import SekishoError
from sekisho.maintenance.schemas import WindowIn
from sekisho.maintenance.service import MaintenanceSchedule
from sekisho.sessions.service import ActiveSession
from sekisho.web.deps import ctx, require_admin, require_json

router = APIRouter(prefix="/api/v1/admin/maintenance", tags=["admin"],
                   dependencies=[Depends(require_json)])


def _schedule(request: Request) -> MaintenanceSchedule:
    return request.app.state.maintenance  # type: ignore[no-any-return]


@router.get("")
async def list_windows(request: Request,
                       _: ActiveSession = Depends(require_admin)) -> dict[str, Any]:
    """Every window, each with its current or next occurrence (``next``)."""
    schedule = _schedule(request)
    now = schedule.clock.now()
    return {"timezone": schedule.zone.key,
            "windows": [schedule.view(rule, now) for rule in await schedule.windows()]}


@router.post("", status_code=201)
async def create_window(body: WindowIn, request: Request,
                        context: RequestContext = Depends(ctx),
                        admin: ActiveSession = Depends(require_admin)) -> dict[str, Any]:
    schedule = _schedule(request)
    rule = await schedule.add(body.spec(), ctx=context, actor_id=admin.account.id)
    return schedule.view(rule, schedule.clock.now())


@router.delete("/{window_id}", status_code=204)
async def delete_window(window_id: int, request: Request,
                        context: RequestContext = Depends(ctx),
                        admin: ActiveSession = Depends(require_admin)) -> Response:
    if not await _schedule(request).remove(window_id, ctx=context, actor_id=admin.account.id):
        raise SekishoError("request.not_found")
    return Response(status_code=204)
