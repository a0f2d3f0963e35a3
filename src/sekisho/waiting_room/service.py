"""The waiting room service: who may pass, who waits where, and the operator's switch.

No FastAPI here: the middleware turns an :class:`Admission` or a :class:`Place` into an
answer, the admin API and the CLI call :meth:`WaitingRoom.hold`, :meth:`WaitingRoom.open`
and :meth:`WaitingRoom.status`.
"""

from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sekisho.clock import Clock, TokenSource
from sekisho.settings import Settings
from sekisho.waiting_room.passes import Pass, RoomTokens, Ticket
from sekisho.waiting_room.store import Limits, MemoryRoomStore, RoomMode, RoomStore

DEFAULT_PATHS = ("/login", "/register", "/api/v1/login", "/api/v1/registrations")
EXEMPT_PATHS = ("/healthz", "/readyz", "/metrics", "/static", "/api/v1/admin/waiting-room")
"""Never queued, whatever ``waiting_room_paths`` says, nor paced (``web/pacing.py``):
probes, styles for the waiting page itself, and the operator's switch."""

BURST_SECONDS = 2
"""The admission budget holds two seconds' worth: a quiet room lets a small burst straight
in, but no more logins at once than the hashers clear well within
``hash_queue_timeout_seconds`` (a bigger burst turned into ``service.busy`` answers in
bench/flash_crowd.py)."""
MIN_REFRESH_SECONDS = 2
MAX_REFRESH_SECONDS = 30
"""Waiting pages refresh (and API clients are told to retry) every 2-30 s, sooner near the
head of the line: 5,000 people at the back (told 23-30 s) cost under 220 requests a second."""
RETURN_SHARE = 0.8
"""Visitors are told to look again after four fifths of their estimated wait: the line moves
no faster than the admission rate the estimate assumes, so they come back shortly before
their turn. Every request a waiting visitor makes is CPU the logins do not get: in
bench/flash_crowd.py, looking again after half the wait (within 2-20 s) took 7.6 requests a
visitor and logins ran at 62% of the capacity; after four fifths (within 2-30 s), 4.2 and
77%."""
CLAIM_SECONDS = MAX_REFRESH_SECONDS + 5
"""A called visitor's slot is kept this long: anyone still on the waiting page is back
within its longest refresh (plus a slow network); someone who left keeps the slot from the
next in line no longer. (With a minute, a crowd where some closed the tab had most slots
held for nobody: in bench/flash_crowd.py, 91 of 109 slots, and logins fell to 39-44%.)"""
KEEP_MISSED_SECONDS = 30 * 60
"""A visitor who was called while away (phone locked, tab asleep) gets the original place
back on returning within this time."""
TICKET_SECONDS = 24 * 60 * 60
"""A ticket outlives the longest wait a sale could cause."""
PACE_SECONDS = 20
"""Estimated waits divide the position by how fast the line moved over the last 20 s (never
faster than the admission rate). The rate alone is only an upper bound: when logins take
longer than the room's slots assume, slots free up more slowly, the line moves slower, and an
estimate from the rate brought people back too early, each return a request the logins paid
for (in bench/flash_crowd.py the line moved at 70-80% of the rate)."""
SPREAD = 4
"""When to look again is drawn from a range a quarter as wide (at least a second): visitors
answered together would otherwise come back together, wave after wave, and in
bench/flash_crowd.py the last of each wave of a few hundred waited 200-300 ms."""


@dataclass(frozen=True, slots=True)
class WaitingRoomConfig:
    """The ``waiting_room_*`` settings (see settings.py for the reasons of the defaults)."""

    enabled: bool = True
    capacity: int = 5000
    admissions_per_minute: int = 6000
    pass_seconds: int = 10 * 60
    paths: tuple[str, ...] = DEFAULT_PATHS

    @classmethod
    def from_settings(cls, settings: Settings) -> WaitingRoomConfig:
        return cls(enabled=settings.waiting_room_enabled,
                   capacity=settings.waiting_room_capacity,
                   admissions_per_minute=settings.waiting_room_admissions_per_minute,
                   pass_seconds=settings.waiting_room_pass_seconds,
                   paths=tuple(settings.waiting_room_paths))

    def limits(self) -> Limits:
        per_second = self.admissions_per_minute / 60
        return Limits(self.capacity, per_second, max(1.0, per_second * BURST_SECONDS),
                      self.pass_seconds, CLAIM_SECONDS, KEEP_MISSED_SECONDS)


@dataclass(frozen=True, slots=True)
class Admission:
    token: str
    """The pass to hand out (cookie and header)."""
    slot: str
    expires_at: float


@dataclass(frozen=True, slots=True)
class Place:
    token: str
    """The ticket: the one presented, or a new one (``new``)."""
    new: bool
    number: int
    position: int | None
    """1 = next; None while the room holds before a fair start."""
    eta_seconds: int | None
    retry_after: int
    reference: str
    opens_at: datetime | None


@dataclass(frozen=True, slots=True)
class RoomView:
    """What the operator sees (admin API, CLI)."""

    enabled: bool
    mode: RoomMode
    opens_at: datetime | None
    waiting: int
    called: int
    active: int
    missed: int
    admitted_total: int
    tickets_issued: int
    capacity: int
    admissions_per_minute: int
    pass_seconds: int
    paths: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        return {"enabled": self.enabled, "mode": str(self.mode),
                "opens_at": self.opens_at.isoformat() if self.opens_at else None,
                "waiting": self.waiting, "called": self.called, "active": self.active,
                "missed": self.missed, "admitted_total": self.admitted_total,
                "tickets_issued": self.tickets_issued, "capacity": self.capacity,
                "admissions_per_minute": self.admissions_per_minute,
                "pass_seconds": self.pass_seconds, "paths": list(self.paths)}


class WaitingRoom:
    def __init__(self, config: WaitingRoomConfig, store: RoomStore, tokens: RoomTokens,
                 clock: Clock, randomness: TokenSource) -> None:
        self.config = config
        self.store = store
        self.tokens = tokens
        self._clock = clock
        self._randomness = randomness
        self._jitter = random.Random()  # noqa: S311 - spreads refreshes; no secret
        self._limits = config.limits()
        self._pace = _Pace(self._limits.rate)
        self._paths = tuple(_prefix(p) for p in config.paths)

    @classmethod
    def build(cls, settings: Settings, clock: Clock, randomness: TokenSource,
              config: WaitingRoomConfig | None = None) -> WaitingRoom:
        """The room for an app: in Redis when ``redis_url`` is set, else in process."""
        store: RoomStore
        if settings.redis_url:
            from sekisho.waiting_room.redis_store import RedisRoomStore

            store = RedisRoomStore(settings.redis_url)
        else:
            store = MemoryRoomStore()
        return cls(config or WaitingRoomConfig.from_settings(settings), store,
                   RoomTokens(settings.resolved_secret_key()), clock, randomness)

    def guards(self, path: str) -> bool:
        """Whether a request for ``path`` needs a pass (a prefix match on whole segments)."""
        if not self.config.enabled:
            return False
        return not never_waits(path) and _matches(path, self._paths)

    def now(self) -> float:
        return self._clock.now().timestamp()

    def read(self, value: str | None) -> Pass | Ticket | None:
        return self.tokens.read(value, self.now())

    def staff_pass(self) -> tuple[str, float]:
        """A pass holding no slot, for staff (who must reach a full room to run it)."""
        expires_at = self.now() + self.config.pass_seconds
        return self.tokens.issue_pass(None, expires_at), expires_at

    async def enter(self, ticket: Ticket | None) -> Admission | Place:
        """A pass, or the place of the visitor holding ``ticket`` (a new place without one)."""
        now = self.now()
        visit = await self.store.visit(
            now, (ticket.generation, ticket.number) if ticket else None, self._limits,
            self._randomness.token(16))
        if visit.admitted:
            assert visit.slot is not None
            return Admission(self.tokens.issue_pass(visit.slot, visit.expires_at), visit.slot,
                             visit.expires_at)
        assert visit.number is not None
        same = ticket is not None and not visit.new_ticket
        if ticket is not None and same:
            reference, expires_at = ticket.reference, float(ticket.expires_at)
        else:
            reference, expires_at = self._randomness.reference(), now + TICKET_SECONDS
        token = self.tokens.issue_ticket(visit.generation, visit.number, reference, expires_at)
        self._pace.observe(now, visit.generation, visit.called_total)
        eta, retry = self._wait(visit.position, visit.opens_at, now)
        return Place(token, not same, visit.number, visit.position, eta, retry, reference,
                     datetime.fromtimestamp(visit.opens_at, UTC) if visit.opens_at else None)

    async def release(self, slot: str) -> None:
        """The visitor is done (logged in): the slot goes to the next in line."""
        await self.store.release(slot)

    async def hold(self, opens_at: datetime | None) -> RoomView:
        """Queue everyone from now on; at ``opens_at`` (or at :meth:`open`) everyone
        waiting gets a place drawn at random, and later arrivals queue behind them."""
        await self.store.hold(opens_at.timestamp() if opens_at else None)
        return await self.status()

    async def open(self) -> RoomView:
        """End a hold now (drawing the places of everyone waiting)."""
        await self.store.open(self.now(), self._randomness.token(16))
        return await self.status()

    async def status(self) -> RoomView:
        state = await self.store.status(self.now())
        config = self.config
        return RoomView(config.enabled, state.mode,
                        datetime.fromtimestamp(state.opens_at, UTC) if state.opens_at else None,
                        state.waiting, state.called, state.active, state.missed,
                        state.admitted_total, state.tickets_issued, config.capacity,
                        config.admissions_per_minute, config.pass_seconds, config.paths)

    async def close(self) -> None:
        await self.store.close()

    def _wait(self, position: int | None, opens_at: float | None,
              now: float) -> tuple[int | None, int]:
        """Estimated wait and when to look again. An estimate from the admission rate: the
        line also moves as people ahead leave, and slows if those let in stay long."""
        if position is None:  # holding: nothing moves before the opening
            if opens_at is None:
                return None, MAX_REFRESH_SECONDS
            until = max(0, math.ceil(opens_at - now))
            return until, _clamp(until)
        eta = math.ceil(position / self._pace.rate())
        return eta, self._spread(math.ceil(eta * RETURN_SHARE))

    def _spread(self, seconds: int) -> int:
        """A moment drawn from the quarter (at least a second) up to ``seconds``, within
        the bounds."""
        seconds = _clamp(seconds)
        width = max(1, seconds // SPREAD)
        earliest = max(MIN_REFRESH_SECONDS, seconds - width)
        return self._jitter.randint(earliest, min(MAX_REFRESH_SECONDS, earliest + width))


class _Pace:
    """How fast the line moves: the store's count of calls, sampled once a second at most
    over the last :data:`PACE_SECONDS` (each process samples the visits it sees; with Redis
    the count is the shared one)."""

    _MIN_SPAN = 5.0
    """Until the samples span this long, the estimate uses the admission rate."""
    _QUIET = 3.0
    """A gap this long between queued visits starts the samples again."""
    _FLOOR = 0.1
    """A line that stood still meanwhile (everyone let in still logging in) is estimated at a
    tenth of the rate, not as never moving."""

    def __init__(self, rate: float) -> None:
        self._rate = rate
        self._samples: deque[tuple[float, int]] = deque()
        self._generation = ""

    def observe(self, now: float, generation: str, called_total: int) -> None:
        samples = self._samples
        if generation != self._generation or (samples and called_total < samples[-1][1]):
            samples.clear()  # a new room (or a new store): its count starts again
            self._generation = generation
        elif samples and now - samples[-1][0] > self._QUIET:
            samples.clear()  # nobody waited meanwhile: the line was not slow, it was empty
        if samples and now - samples[-1][0] < 1:
            return
        samples.append((now, called_total))
        while now - samples[0][0] > PACE_SECONDS:
            samples.popleft()

    def rate(self) -> float:
        """Calls per second lately, within a tenth of the admission rate and the rate."""
        samples = self._samples
        if not samples or samples[-1][0] - samples[0][0] < self._MIN_SPAN:
            return self._rate
        (start, first), (end, last) = samples[0], samples[-1]
        return max(self._rate * self._FLOOR, min(self._rate, (last - first) / (end - start)))


def _clamp(seconds: int) -> int:
    return max(MIN_REFRESH_SECONDS, min(MAX_REFRESH_SECONDS, seconds))


def never_waits(path: str) -> bool:
    """Whether ``path`` is one of :data:`EXEMPT_PATHS` (a prefix match on whole segments)."""
    return _matches(path, EXEMPT_PATHS)


def _prefix(path: str) -> str:
    return "/" + path.strip("/")


def _matches(path: str, prefixes: tuple[str, ...]) -> bool:
    for prefix in prefixes:
        if prefix == "/" or path == prefix or path.startswith(prefix + "/"):
            return True
    return False
