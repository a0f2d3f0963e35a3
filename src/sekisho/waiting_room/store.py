"""Room state: the queue, the slots and the admission budget, and the in-process store.

Both stores implement the same operations with the same results, each atomically: the
in-process one because its methods never await (one event loop, no interleaving), the Redis
one because each operation is one Lua script (``redis_store.py``). The tests run the same
cases against both.
"""

from __future__ import annotations

import bisect
import hashlib
import heapq
import secrets
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class RoomMode(StrEnum):
    OPEN = "open"
    """Admit while slots and the admission budget allow; FIFO beyond that."""
    HOLD = "hold"
    """Queue everyone until ``opens_at`` (or until opened by hand), then draw their order."""


@dataclass(frozen=True, slots=True)
class Limits:
    capacity: int
    """Slots: passes held plus called visitors not yet back."""
    rate: float
    """Admissions per second (the budget refills at this rate)."""
    burst: float
    """The most the budget holds after a quiet spell."""
    pass_seconds: float
    claim_seconds: float
    """How long a called visitor's slot is kept for them."""
    keep_missed_seconds: float
    """How long a missed visitor can still come back to their place."""


@dataclass(frozen=True, slots=True)
class Visit:
    """What one visit came to: a pass (``admitted``) or a place in the queue."""

    admitted: bool
    generation: str
    slot: str | None = None
    expires_at: float = 0.0
    number: int | None = None
    """The ticket number (order of first arrival)."""
    position: int | None = None
    """1 = next in line; None while the room holds (places are drawn at the opening)."""
    opens_at: float | None = None
    new_ticket: bool = False
    called_total: int = 0
    """How many the room has let in so far, called from the line or straight in: how far
    the line has moved."""


@dataclass(frozen=True, slots=True)
class RoomStatus:
    mode: RoomMode
    opens_at: float | None
    waiting: int
    called: int
    active: int
    missed: int
    admitted_total: int
    tickets_issued: int


class RoomStore(Protocol):
    async def visit(self, now: float, ticket: tuple[str, int] | None, limits: Limits,
                    seed: str) -> Visit:
        """Run the pump, then settle the visitor presenting ``ticket`` (generation, number)
        or, without a ticket of this room, a newcomer. ``seed`` keys the draw at a fair
        start, if this visit is the first after the opening."""
        ...

    async def release(self, slot: str) -> None: ...

    async def hold(self, opens_at: float | None) -> None: ...

    async def open(self, now: float, seed: str) -> None: ...

    async def status(self, now: float) -> RoomStatus: ...

    async def close(self) -> None: ...


def draw_key(seed: str, number: int) -> str:
    """Sort key of a ticket in the fair-start draw: a keyed hash, so the order is uniformly
    random and cannot be predicted without the seed (the Redis script uses the same)."""
    return hashlib.sha1(f"{seed}:{number}".encode()).hexdigest()


class _Expiring:
    """Keys with a deadline, oldest first, dropped lazily (a heap plus the live values)."""

    def __init__(self) -> None:
        self.live: dict[str, float] = {}
        self._heap: list[tuple[float, str]] = []

    def put(self, key: str, deadline: float) -> None:
        self.live[key] = deadline
        heapq.heappush(self._heap, (deadline, key))

    def pop_due(self, now: float, limit: int | None = None) -> list[str]:
        due: list[str] = []
        while self._heap and self._heap[0][0] <= now and (limit is None or len(due) < limit):
            deadline, key = heapq.heappop(self._heap)
            if self.live.get(key) == deadline:
                del self.live[key]
                due.append(key)
        return due


class MemoryRoomStore:
    """The room of a single ``serve`` process."""

    def __init__(self, generation: str | None = None) -> None:
        self.generation = generation or secrets.token_urlsafe(6)
        self._issued = 0
        self._slots = 0
        self._queue: list[tuple[int, int]] = []  # (place, number), sorted by place
        self._waiting: dict[int, int] = {}  # number -> place
        self._drawn: dict[int, int] = {}  # number -> place drawn at a fair start
        self._called = _Expiring()  # number -> claim deadline
        self._active = _Expiring()  # slot -> pass expiry
        self._missed = _Expiring()  # number -> when it stops being kept
        self._tokens: float | None = None
        self._refilled_at = 0.0
        self._mode = RoomMode.OPEN
        self._opens_at: float | None = None
        self._admitted_total = 0

    async def visit(self, now: float, ticket: tuple[str, int] | None, limits: Limits,
                    seed: str) -> Visit:
        holding = self._holding(now, seed)
        self._expire(now, limits)
        if not holding:
            self._admit(now, limits)
        if ticket is not None and ticket[0] == self.generation:
            found = self._resolve(ticket[1], now, limits, holding)
            if found is not None:
                return found
        if not holding and not self._queue and self._has_room(now, limits):
            self._slots += 1
            slot = f"d{self._slots}"
            self._take(1)
            self._active.put(slot, now + limits.pass_seconds)
            return Visit(True, self.generation, slot=slot, expires_at=now + limits.pass_seconds)
        self._issued += 1
        self._enqueue(self._issued, self._issued)
        return self._queued(self._issued, holding, new=True)

    async def release(self, slot: str) -> None:
        self._active.live.pop(slot, None)

    async def hold(self, opens_at: float | None) -> None:
        self._mode, self._opens_at = RoomMode.HOLD, opens_at

    async def open(self, now: float, seed: str) -> None:
        if self._mode == RoomMode.HOLD:
            self._opens_at = now
            self._holding(now, seed)

    async def status(self, now: float) -> RoomStatus:
        return RoomStatus(
            self._mode, self._opens_at, len(self._queue),
            sum(1 for d in self._called.live.values() if d > now),
            sum(1 for d in self._active.live.values() if d > now),
            len(self._missed.live), self._admitted_total, self._issued)

    async def close(self) -> None:
        pass

    # --- the steps of a visit, as in the Lua script -------------------------------------------

    def _holding(self, now: float, seed: str) -> bool:
        if self._mode != RoomMode.HOLD:
            return False
        if self._opens_at is None or now < self._opens_at:
            return True
        # The first visit after the opening: everyone waiting gets a place drawn from the
        # places they hold between them; later arrivals keep queueing behind.
        places = [place for place, _ in self._queue]
        numbers = sorted((n for _, n in self._queue), key=lambda n: draw_key(seed, n))
        self._queue = list(zip(places, numbers, strict=True))
        self._waiting = {n: place for place, n in self._queue}
        self._drawn.update(self._waiting)
        self._mode, self._opens_at = RoomMode.OPEN, None
        return False

    def _expire(self, now: float, limits: Limits) -> None:
        self._active.pop_due(now)
        for key in self._called.pop_due(now):
            self._missed.put(key, now + limits.keep_missed_seconds)
        for key in self._missed.pop_due(now, limit=100):
            self._drawn.pop(int(key), None)

    def _admit(self, now: float, limits: Limits) -> None:
        """The pump: call the head of the queue as far as slots and the budget allow."""
        count = min(self._free(limits), int(self._refill(now, limits)), len(self._queue))
        if count <= 0:
            return
        called, self._queue = self._queue[:count], self._queue[count:]
        for _, number in called:
            del self._waiting[number]
            self._called.put(str(number), now + limits.claim_seconds)
        self._take(count)

    def _resolve(self, number: int, now: float, limits: Limits, holding: bool) -> Visit | None:
        key = str(number)
        if key in self._active.live:  # claimed already, by another tab of the same browser
            return Visit(True, self.generation, slot=key, expires_at=self._active.live[key])
        if key in self._called.live:
            del self._called.live[key]
            self._drawn.pop(number, None)
            self._active.put(key, now + limits.pass_seconds)
            return Visit(True, self.generation, slot=key, expires_at=now + limits.pass_seconds)
        if number in self._waiting:
            return self._queued(number, holding)
        if key in self._missed.live:
            del self._missed.live[key]
            self._enqueue(number, self._drawn.get(number, number))
            if not holding:
                self._admit(now, limits)
            return self._resolve(number, now, limits, holding)
        return None  # served and gone, or forgotten: a newcomer again

    def _enqueue(self, number: int, place: int) -> None:
        bisect.insort(self._queue, (place, number))
        self._waiting[number] = place

    def _queued(self, number: int, holding: bool, *, new: bool = False) -> Visit:
        position = None
        if not holding:
            position = bisect.bisect_left(self._queue, (self._waiting[number], number)) + 1
        return Visit(False, self.generation, number=number, position=position,
                     opens_at=self._opens_at if holding else None, new_ticket=new,
                     called_total=self._admitted_total)

    def _free(self, limits: Limits) -> int:
        return limits.capacity - len(self._active.live) - len(self._called.live)

    def _has_room(self, now: float, limits: Limits) -> bool:
        return self._free(limits) >= 1 and self._refill(now, limits) >= 1

    def _refill(self, now: float, limits: Limits) -> float:
        if self._tokens is None:
            self._tokens = limits.burst
        else:
            elapsed = max(0.0, now - self._refilled_at)
            self._tokens = min(limits.burst, self._tokens + elapsed * limits.rate)
        self._refilled_at = now
        return self._tokens

    def _take(self, count: int) -> None:
        assert self._tokens is not None
        self._tokens -= count
        self._admitted_total += count
