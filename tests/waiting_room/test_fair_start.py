"""The operator's switch: hold the room before a sale, open it at a set time.

Everyone who arrives before the opening gets a place drawn at random at the opening;
later arrivals queue behind them, first come first served.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import httpx
from asgi_lifespan import LifespanManager
from conftest import make_client
from fastapi import FastAPI
from sqlalchemy import select
from support.factories import seed_members
from waiting_room.room_support import (
    MEMBERS,
    PASSWORD,
    Visitor,
    fifo_violations,
    let_everyone_in,
    member_email,
    room_app,
    visitors_of,
)

from sekisho.clock import FrozenClock
from sekisho.events.models import AuthEvent, EventKind
from sekisho.identity.models import Role

EARLY, LATE = 100, 20
SWITCH = "/api/v1/admin/waiting-room"


@asynccontextmanager
async def signed_in(app: FastAPI, email: str, password: str) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(app, ip="198.51.100.1") as client:
        answer = await client.post("/api/v1/login",
                                   json={"identifier": email, "password": password})
        assert answer.status_code == 200, answer.text
        yield client


async def test_only_admins_use_the_switch(app, factory, client, core, clock):
    assert (await client.get(SWITCH)).json()["error"]["code"] == "auth.required"
    member = await factory.member(email="room-member@example.jp")
    async with signed_in(app, member.email, member.password) as someone:
        answer = await someone.put(SWITCH, json={"mode": "hold"})
        assert (answer.status_code, answer.json()["error"]["code"]) == (403, "auth.forbidden")
    admin = await factory.member(email="room-boss@example.jp", role=Role.ADMIN)
    async with signed_in(app, admin.email, admin.password) as staff:
        shown = (await staff.get(SWITCH)).json()
        assert {k: shown[k] for k in ("enabled", "mode", "opens_at", "waiting", "capacity",
                                      "admissions_per_minute")} == \
            {"enabled": True, "mode": "open", "opens_at": None, "waiting": 0, "capacity": 20,
             "admissions_per_minute": 100}
        naive = await staff.put(SWITCH, json={"mode": "hold", "opens_at": "2026-01-05T12:00"})
        assert naive.json()["error"]["code"] == "request.invalid"
        both = await staff.put(SWITCH, json={"mode": "open", "opens_at": "2026-01-05T12:00Z"})
        assert both.json()["error"]["code"] == "request.invalid"
        opens = clock.now() + timedelta(hours=1)
        held = await staff.put(SWITCH, json={"mode": "hold", "opens_at": opens.isoformat()})
        assert (held.json()["mode"], held.json()["opens_at"]) == ("hold", opens.isoformat())
        opened = await staff.put(SWITCH, json={"mode": "open"})
        assert (opened.json()["mode"], opened.json()["opens_at"]) == ("open", None)
    async with core.db.read() as db:
        changes = (await db.scalars(select(AuthEvent).where(
            AuthEvent.kind == EventKind.ACCOUNT_ADMIN).order_by(AuthEvent.id))).all()
    assert [(e.account_id, e.detail["action"]) for e in changes] == \
        [(admin.account_id, "waiting_room_hold"), (admin.account_id, "waiting_room_open")]


def spearman(xs: list[int], ys: list[int]) -> float:
    n = len(xs)
    rank_x = {x: r for r, x in enumerate(sorted(xs))}
    rank_y = {y: r for r, y in enumerate(sorted(ys))}
    d2 = sum((rank_x[x] - rank_y[y]) ** 2 for x, y in zip(xs, ys, strict=True))
    return 1 - 6 * d2 / (n * (n * n - 1))


async def sale(apps: list[FastAPI], clock: FrozenClock, staff: httpx.AsyncClient) -> None:
    opens = clock.now() + timedelta(minutes=5)
    held = await staff.put(SWITCH, json={"mode": "hold", "opens_at": opens.isoformat()})
    assert held.status_code == 200, held.text
    visitors = visitors_of(apps, EARLY + LATE)
    early, late = visitors[:EARLY], visitors[EARLY:]
    try:
        async with asyncio.timeout(120):
            # Before the opening, in any order and as often as they like: no place yet.
            for _ in range(2):
                await asyncio.gather(*(v.visit(0) for v in early))
            assert {v.admitted_in for v in early} == {None}
            assert {p for v in early for p in v.positions} == {None}
            told = (await early[1].knock()).json()["error"]
            assert (told["position"], told["eta_seconds"], told["opens_at"]) == \
                (None, 300, opens.isoformat())
            clock.set(opens)
            # Arriving after the opening, one after another: each behind everyone before
            # (of whom the first 3, the budget's burst, were called at the opening).
            for v in late:
                await v.visit(1)
            assert [v.positions[0] for v in late] == list(range(EARLY - 2, EARLY + LATE - 2))
            await asyncio.gather(*(v.visit(1) for v in early))
            await let_everyone_in(visitors, clock, first_round=2)
    finally:
        for v in visitors:
            await v.client.aclose()
    # The other 97 early arrivals hold the places 1-97 between them, in an order that owes
    # nothing to when they arrived.
    assert sum(v.admitted_in == 1 for v in early) == 3
    drawn = sorted((v for v in early if v.admitted_in != 1), key=lambda v: v.positions[2] or 0)
    assert [v.positions[2] for v in drawn] == list(range(1, EARLY - 2))
    assert abs(spearman([v.index for v in drawn], list(range(len(drawn))))) < 0.5
    # Then let through in the drawn order, every early arrival before any late one, and the
    # late ones first come, first served.
    def order(v: Visitor) -> tuple[int, int]:
        if v in late:
            return 1, v.number
        return 0, 0 if v.admitted_in == 1 else v.positions[2] or 0

    # (Let through in order of their calls, not of their rounds: a visitor called while
    # away comes back when their page refreshes, and may find someone later through.)
    assert fifo_violations(visitors, order=order) == []


async def test_a_fair_start_in_one_process(app, factory, settings, clock):
    await seed_members(settings, [member_email(n) for n in range(MEMBERS)], PASSWORD)
    admin = await factory.member(email="room-boss@example.jp", role=Role.ADMIN)
    async with signed_in(app, admin.email, admin.password) as staff:
        await sale([app], clock, staff)


async def test_a_fair_start_on_two_instances_sharing_redis(settings, clock, redis_url,
                                                           settings_overrides, factory):
    shared = settings.model_copy(update={"redis_url": redis_url})
    await seed_members(shared, [member_email(n) for n in range(MEMBERS)], PASSWORD)
    admin = await factory.member(email="room-boss@example.jp", role=Role.ADMIN)  # same db
    one = room_app(shared, clock, settings_overrides)
    two = room_app(shared, clock, settings_overrides)
    async with LifespanManager(one), LifespanManager(two), \
            signed_in(one, admin.email, admin.password) as staff:
        await sale([one, two], clock, staff)
