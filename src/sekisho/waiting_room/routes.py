"""``/api/v1/admin/waiting-room``: the operator's switch (admin role only).

``GET`` shows the room; ``PUT {"mode": "hold", "opens_at": "2026-12-01T10:00:00+09:00"}``
queues everyone until ``opens_at`` (omit it to hold until opened by hand), and
``PUT {"mode": "open"}`` opens now. Both answer with the room as ``GET`` shows it. Every
change is recorded as an ``account_admin`` event naming the staff account.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import AwareDatetime, BaseModel, ConfigDict

from sekisho.context import RequestContext
from sekisho.errors import SekishoError
from sekisho.events.models import OK, EventKind
from sekisho.sessions.service import ActiveSession
from sekisho.waiting_room.service import WaitingRoom
from sekisho.web.deps import ctx, require_admin, require_json

router = APIRouter(prefix="/api/v1/admin", dependencies=[Depends(require_json)],
                   tags=["admin"])


class RoomChangeIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    mode: Literal["hold", "open"]
    opens_at: AwareDatetime | None = None
    """With ``hold``: when the room opens (with a time zone). Omitted: until ``open``."""


def _room(request: Request) -> WaitingRoom:
    return request.app.state.waiting_room  # type: ignore[no-any-return]


@router.get("/waiting-room")
async def room_status(request: Request,
                      _admin: ActiveSession = Depends(require_admin)) -> dict[str, Any]:
    return (await _room(request).status()).as_json()


@router.put("/waiting-room")
async def room_change(body: RoomChangeIn, request: Request,
                      admin: ActiveSession = Depends(require_admin),
                      context: RequestContext = Depends(ctx)) -> dict[str, Any]:
    if body.mode == "open" and body.opens_at is not None:
        raise SekishoError("request.invalid", field="opens_at", params={"reason": "wrong_type"})
    room = _room(request)
    view = await (room.hold(body.opens_at) if body.mode == "hold" else room.open())
    core = request.app.state.core
    async with core.db.transaction() as db:
        await core.events.record(
            db, kind=EventKind.ACCOUNT_ADMIN, outcome=OK, ctx=context, account_id=admin.account.id,
            detail={"action": f"waiting_room_{body.mode}",
                    "opens_at": body.opens_at.isoformat() if body.opens_at else None})
    return view.as_json()
