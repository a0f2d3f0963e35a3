"""Helpers of the waiting-room tests: the app with its room, and visitors who knock, wait
and log in."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from conftest import make_client
from fastapi import FastAPI

from sekisho.app import create_app
from sekisho.clock import FrozenClock
from sekisho.settings import Settings

# The crowd tests' room: 20 slots, 100 admissions a minute.
CROWD_ROOM = {"waiting_room_enabled": True, "waiting_room_capacity": 20,
              "waiting_room_admissions_per_minute": 100, "waiting_room_pass_seconds": 120}
POSITION = re.compile(r'data-position="(\d*)"')
MEMBERS = 100
PASSWORD = "kaede tsuki hoshi"


def room_app(settings: Settings, clock: FrozenClock | None,
             overrides: dict[str, Any]) -> FastAPI:
    """An app whose room follows ``overrides`` (``waiting_room_*`` settings)."""
    room = {k: v for k, v in overrides.items() if k.startswith("waiting_room_")}
    return create_app(settings.model_copy(update=room), clock=clock)


def member_email(n: int) -> str:
    return f"crowd{n % MEMBERS}@example.jp"


@dataclass
class Visitor:
    """One browser (``page``: opens /login) or app (POSTs /api/v1/login), with its cookies.

    It comes back when ``Retry-After`` says (``next_visit``, seconds on the test's clock),
    as the waiting page and a well-behaved app do.
    """

    index: int
    client: httpx.AsyncClient
    page: bool
    positions: list[int | None] = field(default_factory=list)
    waited_in: list[int] = field(default_factory=list)
    """The rounds in which this visitor was told to wait."""
    tickets: set[str] = field(default_factory=set)
    """Every ticket this visitor was shown (refreshes show the same one)."""
    next_visit: float = 0.0
    admitted_in: int | None = None
    """The round in which this visitor got through."""
    logged_in: bool = False

    async def knock(self) -> httpx.Response:
        """Open the guarded page, or send the login: what a refresh does too."""
        if self.page:
            return await self.client.get("/login", headers={"Accept": "text/html"})
        return await self.login()

    async def login(self) -> httpx.Response:
        return await self.client.post("/api/v1/login", json={
            "identifier": member_email(self.index), "password": PASSWORD})

    async def visit(self, round_: int, now: float = 0.0) -> httpx.Response:
        """Knock. An app's knock is its login; a browser let through shows the form, to
        be sent later (:meth:`finish`): its slot stays taken meanwhile."""
        answer = await self.knock()
        check_answer(answer)
        if answer.status_code == 429:
            self.positions.append(position_of(answer))
            self.tickets.add(answer.headers["Sekisho-Waiting-Room"])
            self.waited_in.append(round_)
            self.next_visit = now + int(answer.headers["Retry-After"])
            return answer
        self.admitted_in = round_
        assert answer.status_code == 200, answer.text
        if not self.page:
            self.logged_in = True
        return answer

    async def finish(self) -> None:
        """Send the login form (through the pass): the session frees the slot."""
        answer = await self.login()
        assert answer.status_code == 200, answer.text
        self.logged_in = True

    @property
    def number(self) -> int:
        """The ticket number (order of first arrival); one ticket per visitor."""
        numbers = {int(ticket.split(".")[2]) for ticket in self.tickets}
        assert len(numbers) == 1, numbers
        return numbers.pop()

    @property
    def holds_slot(self) -> bool:
        return self.admitted_in is not None and not self.logged_in


async def let_everyone_in(visitors: list[Visitor], clock: FrozenClock, *, first_round: int = 1,
                          step: float = 2.0, linger: int = 15, capacity: int = 20,
                          refresh_every: int = 0) -> int:
    """Rounds of ``step`` seconds until everyone is through: browsers let through send the
    form ``linger`` rounds later; visitors come back when told. Returns the most slots held
    at once (never more than ``capacity``). With ``refresh_every``, everyone due also
    reloads at once every so many rounds (:func:`refresh`)."""
    origin = clock.now()
    round_, most = first_round - 1, 0
    while waiting := [v for v in visitors if v.admitted_in is None]:
        round_ += 1
        assert round_ < first_round + 500, f"{len(waiting)} still waiting"
        await asyncio.gather(*(v.finish() for v in visitors
                               if v.holds_slot and round_ - (v.admitted_in or 0) >= linger))
        clock.advance(step)
        now = (clock.now() - origin).total_seconds()
        due = [v for v in waiting if v.next_visit <= now]
        await asyncio.gather(*(v.visit(round_, now) for v in due))
        if refresh_every and round_ % refresh_every == 0:
            await refresh(round_, now, [v for v in due if v.admitted_in is None])
        most = max(most, sum(v.holds_slot for v in visitors))
        assert most <= capacity
    await asyncio.gather(*(v.finish() for v in visitors if v.holds_slot))
    return most


async def refresh(round_: int, now: float, waiting: list[Visitor]) -> None:
    """Reloading (or opening a second tab, which shares the cookie) right away neither loses
    nor improves a place: those let through meanwhile (slots freed by logins since) were
    ahead of everyone still waiting, whose places only move up, in the same order."""
    before = {v.index: v.positions[-1] or 0 for v in waiting}
    await asyncio.gather(*(v.visit(round_, now) for v in waiting))
    through = [before[v.index] for v in waiting if v.admitted_in is not None]
    still = sorted((v for v in waiting if v.admitted_in is None), key=lambda v: before[v.index])
    assert max(through, default=0) < min((before[v.index] for v in still), default=10**9)
    after = [v.positions[-1] or 0 for v in still]
    assert after == sorted(after) and len(set(after)) == len(after)
    assert all(0 < v.positions[-1] <= before[v.index] for v in still)  # type: ignore[operator]


def fifo_violations(visitors: list[Visitor], order: Callable[[Visitor], Any]) -> list[int]:
    """Visitors told to wait in a round after someone later in ``order`` had got through
    (within one round, answers run concurrently: no order among them)."""
    ranked = sorted((v for v in visitors if v.tickets), key=order)
    first_later = [10**9] * (len(ranked) + 1)  # earliest round anyone later got through
    for i in range(len(ranked) - 1, -1, -1):
        first_later[i] = min(first_later[i + 1], ranked[i].admitted_in or 10**9)
    return [v.index for i, v in enumerate(ranked)
            if any(r > first_later[i + 1] for r in v.waited_in)]


def position_of(answer: httpx.Response) -> int | None:
    if answer.headers["content-type"].startswith("application/json"):
        return answer.json()["error"]["position"]  # type: ignore[no-any-return]
    found = POSITION.search(answer.text)
    assert found, answer.text
    return int(found.group(1)) if found.group(1) else None


def check_answer(answer: httpx.Response) -> None:
    """Every answer a visitor gets: through (200), or waiting with the whole envelope."""
    assert answer.status_code in (200, 429), (answer.status_code, answer.text[:500])
    if answer.status_code != 429:
        return
    assert answer.headers["Retry-After"].isdigit()
    assert answer.headers["Sekisho-Waiting-Room"].startswith("t.")
    if answer.headers["content-type"].startswith("application/json"):
        error = answer.json()["error"]
        assert error["code"] == "service.queue"
        assert error["message"] and error["remedy"] and error["reference"].startswith("R-")
        assert error["retry_after"] == int(answer.headers["Retry-After"]) > 0
        assert "position" in error and "eta_seconds" in error and error["ticket"]
    else:
        assert 'data-waiting-room' in answer.text
        assert answer.headers["Refresh"].startswith(answer.headers["Retry-After"] + "; url=/")


def visitors_of(apps: list[FastAPI], count: int) -> list[Visitor]:
    """``count`` visitors spread over ``apps`` and client addresses, half pages, half apps."""
    return [Visitor(n, make_client(apps[n % len(apps)], ip=f"10.{n // 250}.{n % 250}.1"),
                    page=n % 2 == 0) for n in range(count)]
