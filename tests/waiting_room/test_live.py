"""500 visitors at once against a real server on loopback, in real time (a few seconds).

uvicorn serves the app (with its room) from a thread; each visitor has its own connection.
Nobody gets a 5xx or waits long for an answer; every waiting visitor has a ticket of their
own; nobody is let through before an earlier ticket that is still waiting. Then the same
against two ``sekisho serve`` processes sharing the room in Redis.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
from support import live
from support.factories import seed_members
from waiting_room.room_support import MEMBERS, PASSWORD, Visitor, member_email, room_app

from sekisho.settings import Settings

VISITORS = 500
ANSWER_WITHIN = 30.0  # seconds: generous, "no timeouts" means no client ever gives up
POLL_EVERY = 2.0  # the shortest retry_after
# Clients let an idle connection go before uvicorn does (5 s): a request sent on a connection
# the server is closing at that moment is reset, which browsers retry and httpx does not.
IDLE_CONNECTION = httpx.Limits(keepalive_expiry=1.0)


@contextmanager
def processes(settings: Settings, overrides: dict[str, Any], count: int,
              logs: Path) -> Iterator[list[str]]:
    """``count`` ``sekisho serve`` processes with the room of ``overrides``."""
    room = {k: v for k, v in overrides.items() if k.startswith("waiting_room_")}
    env = live.settings_env(settings.model_copy(update=room).model_dump())
    with ExitStack() as stack:
        yield [stack.enter_context(live.serve_process(env, log_dir=logs / str(n))).url
               for n in range(count)]


async def stampede(urls: list[str]) -> list[Visitor]:
    visitors = [Visitor(n, httpx.AsyncClient(base_url=urls[n % len(urls)],
                                             timeout=ANSWER_WITHIN, limits=IDLE_CONNECTION),
                        page=n % 2 == 0)
                for n in range(VISITORS)]
    try:
        async with asyncio.timeout(90):
            await asyncio.gather(*(v.visit(0) for v in visitors))
            for round_ in (1, 2):
                await asyncio.sleep(POLL_EVERY)
                await asyncio.gather(*(v.visit(round_) for v in visitors
                                       if v.admitted_in is None))
    finally:
        for visitor in visitors:
            await visitor.client.aclose()
    return visitors


def check(visitors: list[Visitor]) -> None:
    # Straight in at first: the budget's burst (3), plus what refilled meanwhile.
    direct = [v for v in visitors if v.admitted_in == 0]
    assert 3 <= len(direct) <= 10, len(direct)
    queued = [v for v in visitors if v.tickets]
    assert len(queued) == VISITORS - len(direct)
    numbers = sorted(v.number for v in queued)  # one ticket each, kept on every poll
    assert numbers == list(range(1, len(numbers) + 1))  # none lost, none given twice
    through = [v for v in queued if v.admitted_in is not None]
    waiting = [v for v in queued if v.admitted_in is None]
    assert through and waiting
    # First come, first served: whoever was still told to wait had not been passed by a
    # later ticket in an earlier round. (In a round every visitor knocks at once: one called
    # just after their own knock goes through on the next, and those called after them may
    # go through in that same round.)
    for late in waiting:
        passed = [(v.number, v.admitted_in) for v in through
                  if v.number > late.number and v.admitted_in < late.waited_in[-1]]
        assert not passed, (late.number, late.waited_in, passed)


async def test_a_stampede_on_a_real_server(settings, settings_overrides):
    await seed_members(settings, [member_email(n) for n in range(MEMBERS)], PASSWORD)
    with live.serve_in_thread(settings, app=room_app(settings, None, settings_overrides)) as s:
        check(await stampede([s.url]))


async def test_a_stampede_on_two_processes_sharing_redis(settings, settings_overrides,
                                                        redis_url, tmp_path):
    shared = settings.model_copy(update={"redis_url": redis_url})
    await seed_members(shared, [member_email(n) for n in range(MEMBERS)], PASSWORD)
    with processes(shared, settings_overrides, 2, tmp_path) as urls:
        check(await stampede(urls))
