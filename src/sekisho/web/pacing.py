"""Paced starts: at most a few requests begin their work in one turn of the event loop.

A burst of requests that arrive together (200 logins at once) is read in one turn of the
event loop, and the first stretch of each one's work (middleware, routing, the body, the
lockout check: 0.2-0.4 ms) then runs in the next turn, all of them back to back. For 50-100
ms nothing else is answered, ``/healthz`` included. Started a few per turn, in arrival
order, the same work spreads over many short turns; requests that never wait (probes,
static files: :func:`sekisho.waiting_room.service.never_waits`) are answered in between.
The total work, and so the throughput, stays the same.

The pacing sits inside the waiting room (and maintenance): their answers are cheap, and a
crowd arriving at the room must not queue behind the logins the room let in.
"""

from __future__ import annotations

import asyncio
from collections import deque

from starlette.types import ASGIApp, Receive, Scope, Send

from sekisho.waiting_room.service import never_waits

STARTS_PER_TURN = 16
"""With a burst of 200 logins (tests/guard/test_overload.py) the longest turn was 60-120 ms
unpaced, 25-45 ms with 2 to 32 starts per turn; what is left is the work before the pacer
(reading the requests, the edge, maintenance, the waiting room). With 8, the first second
of a flash crowd (bench/flash_crowd.py) built a line of starts that slowed every answer in
it (median 46-88 ms); with 16 and 32, 2-3 ms, as unpaced. 16 kept /healthz fastest."""


class StartPacer:
    """Lets ``per_turn`` requests start in each turn of the event loop; the rest wait their
    turn, first come first served. A saturated loop still does as much work per second:
    each turn carries fewer starts and is shorter."""

    def __init__(self, per_turn: int = STARTS_PER_TURN) -> None:
        if per_turn < 1:
            raise ValueError("per_turn must be at least 1")
        self.per_turn = per_turn
        self._loop: asyncio.AbstractEventLoop | None = None  # whose turns are counted
        self._started = 0  # in the current turn
        self._turn_ends = False  # a call to _next_turn is scheduled
        self._waiting: deque[asyncio.Future[None]] = deque()

    async def start(self) -> None:
        """Return when the calling request may start: at once while this turn has room and
        nobody is waiting, else in a later turn."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            # Served by another event loop now (a test client starts one each time): the end
            # of turn scheduled on the old one may never come.
            self._loop, self._started, self._turn_ends = loop, 0, False
            self._waiting = deque()
        if not self._waiting and self._started < self.per_turn:
            self._started += 1
            self._end_turn_soon()
            return
        waiter = loop.create_future()
        self._waiting.append(waiter)
        self._end_turn_soon()
        await waiter

    def _end_turn_soon(self) -> None:
        # A callback scheduled now runs in the loop's next turn, after what this turn runs.
        if not self._turn_ends:
            self._turn_ends = True
            assert self._loop is not None
            self._loop.call_soon(self._next_turn)

    def _next_turn(self) -> None:
        self._turn_ends = False
        self._started = 0
        while self._waiting and self._started < self.per_turn:
            waiter = self._waiting.popleft()
            if not waiter.done():  # not given up (a cancelled request)
                waiter.set_result(None)
                self._started += 1
        if self._started:
            self._end_turn_soon()


class PacingMiddleware:
    """Pure ASGI: every HTTP request but probes and static files starts in its turn."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.pacer = StartPacer()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not never_waits(scope["path"]):
            await self.pacer.start()
        await self.app(scope, receive, send)
