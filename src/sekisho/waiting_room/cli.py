"""``sekisho waiting-room``: hold, open and look at the room from a shell.

The room must be shared for this to reach it, i.e. in Redis (``SEKISHO_REDIS_URL``); the
in-process room of a single ``serve`` lives inside that process, reached through
``/api/v1/admin/waiting-room``.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo

import typer

from sekisho.settings import Settings

room_app = typer.Typer(help="Hold and open the waiting room (needs SEKISHO_REDIS_URL).",
                       no_args_is_help=True)


def _run(action: str, *args: datetime | None) -> None:
    from sekisho.context import RequestContext
    from sekisho.core import build_core
    from sekisho.events.models import OK, EventKind
    from sekisho.waiting_room.service import WaitingRoom

    settings = Settings()
    if not settings.redis_url:
        raise typer.BadParameter(
            "SEKISHO_REDIS_URL is not set: the room lives inside `sekisho serve`; "
            "use PUT /api/v1/admin/waiting-room instead")

    async def work() -> dict[str, object]:
        core = build_core(settings)
        room = WaitingRoom.build(settings, core.clock, core.tokens)
        try:
            view = await (getattr(room, action)(*args))
            if action != "status":
                async with core.db.transaction() as db:
                    await core.events.record(
                        db, kind=EventKind.ACCOUNT_ADMIN, outcome=OK, ctx=RequestContext(),
                        detail={"action": f"waiting_room_{action}", "via": "cli",
                                "opens_at": args[0].isoformat() if args and args[0] else None})
            return view.as_json()  # type: ignore[no-any-return]
        finally:
            await room.close()
            await core.close()

    typer.echo(json.dumps(asyncio.run(work()), ensure_ascii=False, indent=2))


@room_app.command("status")
def status() -> None:
    """Show the mode, the queue and the slots in use."""
    _run("status")


@room_app.command("hold")
def hold(opens_at: Annotated[str | None, typer.Option(
        help="When to open, ISO 8601 (2026-12-01T10:00; without an offset, in the display "
             "time zone). Omit to hold until `open`.")] = None) -> None:
    """Queue everyone; at the opening, everyone waiting gets a place drawn at random."""
    moment = None
    if opens_at:
        moment = datetime.fromisoformat(opens_at)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=ZoneInfo(Settings().display_timezone))
    _run("hold", moment)


@room_app.command("open")
def open_now() -> None:
    """Open now: draw the places of everyone waiting, then admit in that order."""
    _run("open")
