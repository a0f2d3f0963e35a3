"""Lockout lanes: guessing is slowed per identifier without locking the owner out.

This is the OWASP "device cookie" design (``docs/guard.md``). Failed logins are counted in
lanes keyed by the normalised identifier, never by account rows, so an identifier that
belongs to nobody behaves exactly like one that does:

* a request carrying a valid device cookie for the account counts in that cookie's own lane;
* every other request counts in the identifier's one shared "untrusted" lane.

A lane that collects ``threshold`` failures within ``window`` is locked, for a duration that
doubles with each lock in an escalation period (15 min, 30 min, 1 h, ... up to 24 h). While a
lane is locked the password is not checked at all. Attempts in flight count against the
threshold too, so a burst of concurrent guesses cannot slip past it while argon2 runs.

Lane state lives in process on the embedded default and in Redis when ``SEKISHO_REDIS_URL``
is set, so that every process of a deployment sees the same lanes.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Protocol, TypeVar

from redis.asyncio import Redis
from redis.exceptions import WatchError

from sekisho.clock import Clock
from sekisho.errors import SekishoError

R = TypeVar("R")

# An attempt whose process died between admission and verdict stops counting after this.
_PENDING_SECONDS = 60.0


@dataclass(slots=True)
class LaneState:
    failures: list[float] = field(default_factory=list)
    """When recent failures happened (epoch seconds), oldest first; at most ``threshold``."""
    pending: list[float] = field(default_factory=list)
    """Admission times of attempts whose verdict is not in yet."""
    locked_until: float = 0.0
    locks: int = 0
    """Locks in the current escalation period; the next lock lasts twice as long."""


@dataclass(frozen=True, slots=True)
class LockoutPolicy:
    threshold: int
    window: float
    base_duration: float
    max_duration: float
    escalation_reset: float

    def duration(self, locks: int) -> float:
        return min(self.base_duration * 2 ** max(0, locks - 1), self.max_duration)


@dataclass(frozen=True, slots=True)
class Attempt:
    """An admitted attempt: report its verdict with :meth:`LockoutGuard.failed` or
    :meth:`LockoutGuard.succeeded`."""

    lane: str
    admitted_at: float
    account_id: int | None


@dataclass(frozen=True, slots=True)
class Lock:
    """A lane that has just been locked by a failure."""

    until: float
    failures: int
    level: int
    """1 for the first lock of an escalation period: the one the owner is mailed about."""


class LaneStore(Protocol):
    async def update(self, key: str, change: Callable[[LaneState], R], ttl: float) -> R:
        """Apply ``change`` to the lane's state atomically and keep the result ``ttl`` s."""
        ...

    async def delete(self, keys: list[str]) -> None: ...

    async def remember(self, group: str, key: str, ttl: float) -> None:
        """Add ``key`` to ``group`` (the lanes of one account), for :meth:`forget_group`."""
        ...

    async def forget_group(self, group: str) -> list[str]:
        """The keys in ``group``, removing the group."""
        ...

    async def close(self) -> None: ...


class MemoryLaneStore:
    """In-process lanes for a single ``serve`` process. Expired lanes are dropped lazily."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lanes: dict[str, tuple[float, LaneState]] = {}
        self._groups: dict[str, set[str]] = {}
        self._lock = asyncio.Lock()

    async def update(self, key: str, change: Callable[[LaneState], R], ttl: float) -> R:
        async with self._lock:
            now = self._clock.now().timestamp()
            expires, state = self._lanes.get(key, (0.0, None))  # type: ignore[arg-type]
            if state is None or expires <= now:
                state = LaneState()
            result = change(state)
            self._lanes[key] = (now + ttl, state)
            if len(self._lanes) > 100_000:
                self._sweep(now)
            return result

    def _sweep(self, now: float) -> None:
        for key in [k for k, (expires, _) in self._lanes.items() if expires <= now]:
            del self._lanes[key]

    async def delete(self, keys: list[str]) -> None:
        for key in keys:
            self._lanes.pop(key, None)

    async def remember(self, group: str, key: str, ttl: float) -> None:
        self._groups.setdefault(group, set()).add(key)

    async def forget_group(self, group: str) -> list[str]:
        return sorted(self._groups.pop(group, set()))

    async def close(self) -> None:
        pass


class RedisLaneStore:
    """Lanes shared by every process through Redis; updates are optimistic transactions."""

    def __init__(self, url: str, prefix: str = "sekisho:lane:") -> None:
        self.redis: Redis = Redis.from_url(url)
        self._prefix = prefix

    async def update(self, key: str, change: Callable[[LaneState], R], ttl: float) -> R:
        name = self._prefix + key
        async with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(name)
                    raw = await pipe.get(name)
                    state = LaneState(**json.loads(raw)) if raw else LaneState()
                    result = change(state)
                    pipe.multi()
                    pipe.set(name, json.dumps(asdict(state)), px=max(1, int(ttl * 1000)))
                    await pipe.execute()
                    return result
                except WatchError:
                    continue  # another process changed the lane meanwhile: decide again

    async def delete(self, keys: list[str]) -> None:
        if keys:
            await self.redis.delete(*(self._prefix + k for k in keys))

    async def remember(self, group: str, key: str, ttl: float) -> None:
        name = self._prefix + group
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.sadd(name, key)
            pipe.expire(name, max(1, int(ttl)))
            await pipe.execute()

    async def forget_group(self, group: str) -> list[str]:
        name = self._prefix + group
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.smembers(name)
            pipe.delete(name)
            members, _ = await pipe.execute()
        return sorted(m.decode() for m in members)

    async def close(self) -> None:
        await self.redis.aclose()


class LockoutGuard:
    """Admits, counts and locks login attempts per lane (see the module docstring)."""

    def __init__(self, policy: LockoutPolicy, store: LaneStore, clock: Clock) -> None:
        self.policy = policy
        self.store = store
        self._clock = clock
        # A lane is kept as long as it can still matter for escalation.
        self._ttl = max(policy.window, policy.max_duration) + policy.escalation_reset

    @staticmethod
    def untrusted_lane(identifier_hash: str) -> str:
        return f"id:{identifier_hash}"

    @staticmethod
    def device_lane(nonce: str) -> str:
        return f"dev:{nonce}"

    async def admit(self, lane: str, account_id: int | None = None) -> Attempt:
        """Let one attempt through, or raise ``login.throttled`` without checking anything."""
        policy = self.policy

        def change(state: LaneState) -> tuple[float, float]:
            now = self._now()
            _prune(state, now, policy.window)
            if state.locked_until > now:
                return state.locked_until - now, now
            if len(state.failures) + len(state.pending) >= policy.threshold:
                # Enough guesses are in flight to lock the lane if they all fail: wait for them.
                return 1.0, now
            state.pending.append(now)
            return 0.0, now

        wait, now = await self.store.update(lane, change, self._ttl)
        if wait > 0:
            raise throttled(wait)
        return Attempt(lane, now, account_id)

    async def failed(self, attempt: Attempt) -> Lock | None:
        """Count a failure; return the :class:`Lock` if this failure locked the lane."""
        policy = self.policy

        def change(state: LaneState) -> Lock | None:
            now = self._now()
            _forget_pending(state, attempt.admitted_at)
            _prune(state, now, policy.window)
            state.failures.append(now)
            if len(state.failures) < policy.threshold or state.locked_until > now:
                return None
            if now - state.locked_until > policy.escalation_reset:
                state.locks = 0  # quiet long enough since the last lock ended: start over
            state.locks += 1
            state.locked_until = now + policy.duration(state.locks)
            count, state.failures = len(state.failures), []
            return Lock(state.locked_until, count, state.locks)

        lock = await self.store.update(attempt.lane, change, self._ttl)
        if attempt.account_id is not None and attempt.lane.startswith("dev:"):
            # Only a device lane holding failures needs finding again (by :meth:`clear`);
            # successful logins write nothing here.
            await self.store.remember(_group(attempt.account_id), attempt.lane, self._ttl)
        return lock

    async def succeeded(self, attempt: Attempt) -> None:
        """The attempt was right: it no longer counts as in flight.

        Earlier failures stay counted (a success in between must not hand a guesser a fresh
        allowance); a device lane is dropped, as the browser gets a fresh cookie and lane.
        """
        if attempt.lane.startswith("dev:"):
            await self.store.delete([attempt.lane])
            return
        await self.store.update(
            attempt.lane, lambda s: _forget_pending(s, attempt.admitted_at), self._ttl)

    async def abandon(self, attempt: Attempt) -> None:
        """The attempt ended without a verdict (busy, error): it does not count at all."""
        await self.store.update(
            attempt.lane, lambda s: _forget_pending(s, attempt.admitted_at), self._ttl)

    async def clear(self, account_id: int, identifier_hashes: list[str]) -> None:
        """Unlock every lane of an account: its identifiers' and its device cookies'."""
        lanes = [self.untrusted_lane(h) for h in identifier_hashes]
        lanes += await self.store.forget_group(_group(account_id))
        await self.store.delete(lanes)

    def _now(self) -> float:
        return self._clock.now().timestamp()


def throttled(wait: float) -> SekishoError:
    seconds = max(1, math.ceil(wait))
    return SekishoError("login.throttled", retry_after=seconds,
                        params={"retry_minutes": max(1, math.ceil(seconds / 60))})


def _group(account_id: int) -> str:
    return f"acct:{account_id}"


def _prune(state: LaneState, now: float, window: float) -> None:
    state.failures = [t for t in state.failures if now - t < window]
    state.pending = [t for t in state.pending if now - t < _PENDING_SECONDS]


def _forget_pending(state: LaneState, admitted_at: float) -> None:
    if admitted_at in state.pending:
        state.pending.remove(admitted_at)
