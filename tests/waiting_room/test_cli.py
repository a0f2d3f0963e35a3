"""``sekisho waiting-room`` from a shell: hold the shared room before a sale, open it."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

from asgi_lifespan import LifespanManager
from conftest import make_client
from sqlalchemy import select
from support import live
from waiting_room.room_support import CROWD_ROOM, room_app

from sekisho.events.models import AuthEvent, EventKind


async def sekisho(settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEKISHO_")}
    env.update(live.settings_env(settings.model_dump()))
    return await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "sekisho", "waiting-room", *args], env=env,
        capture_output=True, text=True, timeout=60, check=False)


async def room(settings, *args: str) -> dict:
    done = await sekisho(settings, *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


async def test_hold_then_open_from_the_shell(settings, redis_url, core):
    shared = settings.model_copy(update={"redis_url": redis_url, **CROWD_ROOM})
    assert (await room(shared, "hold"))["mode"] == "hold"
    app = room_app(shared, None, CROWD_ROOM)
    async with LifespanManager(app), make_client(app) as visitor:
        held = await visitor.get("/login", headers={"Accept": "application/json"})
        assert held.status_code in (429, 503) and held.json()["error"]["position"] is None
        shown = await room(shared, "status")
        assert (shown["mode"], shown["waiting"]) == ("hold", 1)
        assert (await room(shared, "open"))["mode"] == "open"
        assert (await visitor.get("/login")).status_code == 200
    async with core.db.read() as db:
        actions = [e.detail["action"] for e in await db.scalars(
            select(AuthEvent).where(AuthEvent.kind == EventKind.ACCOUNT_ADMIN)
            .order_by(AuthEvent.id))]
    assert actions == ["waiting_room_hold", "waiting_room_open"]


async def test_without_redis_it_says_where_the_room_is(settings):
    done = await sekisho(settings, "status")
    assert done.returncode != 0
    assert "SEKISHO_REDIS_URL" in done.stderr and "/api/v1/admin/waiting-room" in done.stderr
