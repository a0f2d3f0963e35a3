"""Delivery health per channel: the outbox worker reports each attempt, ``/status`` and the
pages that wait for a code read whether mail or SMS is currently delayed.

A channel turns *delayed* after ``delivery_degraded_after_failures`` failed attempts in a
row and clears after ``delivery_recovered_after_successes`` successes in a row. Both are
streaks of attempts, not of messages: one message retried three times against a dead SMTP
server is three failures, which is the point (members are waiting for it).

Every process keeps its own worker's streaks in memory (:class:`ChannelHealth`). With
``redis_url`` set, the worker also counts into Redis (:class:`SharedDeliveryHealth`), so a web
process that runs no worker, or runs one that happened to be idle, still tells members
the truth.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis

from sekisho.clock import Clock
from sekisho.notify.models import MEMBER_CHANNELS, Channel
from sekisho.settings import Settings

log = logging.getLogger(__name__)

DEGRADED_AFTER_FAILURES = 3
RECOVERED_AFTER_SUCCESSES = 1


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    degraded_after_failures: int = DEGRADED_AFTER_FAILURES
    recovered_after_successes: int = RECOVERED_AFTER_SUCCESSES

    @classmethod
    def from_settings(cls, settings: Settings) -> DeliveryPolicy:
        return cls(settings.delivery_degraded_after_failures,
                   settings.delivery_recovered_after_successes)


@dataclass(slots=True)
class ChannelHealth:
    """Delivery health of one channel, for "SMS codes are delayed" style notices."""

    consecutive_failures: int = 0
    consecutive_successes: int = 0
    last_success_at: datetime | None = None
    last_failure_at: datetime | None = None
    last_error: str | None = None
    """Kept in this process only (it may name hosts); never shown to members."""
    degraded_since: datetime | None = None
    """Set when the failure streak reached the policy's threshold; cleared by recovery."""

    @property
    def delayed(self) -> bool:
        return self.degraded_since is not None

    def note_success(self, now: datetime, policy: DeliveryPolicy) -> None:
        self.consecutive_failures = 0
        self.consecutive_successes += 1
        self.last_success_at = now
        if self.consecutive_successes >= policy.recovered_after_successes:
            self.degraded_since = None

    def note_failure(self, now: datetime, error: str, policy: DeliveryPolicy) -> None:
        self.consecutive_successes = 0
        self.consecutive_failures += 1
        self.last_failure_at = now
        self.last_error = error
        if self.consecutive_failures >= policy.degraded_after_failures and not self.delayed:
            self.degraded_since = now


# One round trip per attempt, atomic across processes: two workers failing at once both
# count, and the channel turns delayed exactly once (its ``degraded_since`` stays the first).
_RECORD = """
local key, ok, now, threshold = KEYS[1], ARGV[1] == '1', ARGV[2], tonumber(ARGV[3])
if ok then
  local streak = redis.call('HINCRBY', key, 'successes', 1)
  redis.call('HSET', key, 'failures', 0, 'last_success_at', now)
  if streak >= threshold then redis.call('HDEL', key, 'degraded_since') end
else
  local streak = redis.call('HINCRBY', key, 'failures', 1)
  redis.call('HSET', key, 'successes', 0, 'last_failure_at', now)
  if streak >= threshold then redis.call('HSETNX', key, 'degraded_since', now) end
end
"""


def _instant(raw: bytes | None) -> datetime | None:
    return datetime.fromtimestamp(float(raw), UTC) if raw else None


class SharedDeliveryHealth:
    """The same streaks, counted in Redis by every worker process (one hash per channel)."""

    def __init__(self, url: str, policy: DeliveryPolicy,
                 prefix: str = "sekisho:delivery:") -> None:
        self.redis: Redis = Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
        self._policy = policy
        self._prefix = prefix
        self._script = self.redis.register_script(_RECORD)

    async def record(self, channel: Channel, now: datetime, ok: bool) -> None:
        threshold = (self._policy.recovered_after_successes if ok
                     else self._policy.degraded_after_failures)
        await self._script(keys=[self._prefix + channel.value],
                           args=["1" if ok else "0", repr(now.timestamp()), threshold])

    async def read(self) -> dict[Channel, ChannelHealth]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for channel in MEMBER_CHANNELS:
                pipe.hgetall(self._prefix + channel.value)
            rows = await pipe.execute()
        return {channel: _from_hash(row) for channel, row in zip(MEMBER_CHANNELS, rows, strict=True)}

    async def clear(self) -> None:
        """Forget every streak (tests; an operator after moving to a new provider)."""
        await self.redis.delete(*(self._prefix + channel.value for channel in MEMBER_CHANNELS))

    async def close(self) -> None:
        await self.redis.aclose()


def _from_hash(row: Mapping[bytes, bytes]) -> ChannelHealth:
    return ChannelHealth(
        consecutive_failures=int(row.get(b"failures", 0)),
        consecutive_successes=int(row.get(b"successes", 0)),
        last_success_at=_instant(row.get(b"last_success_at")),
        last_failure_at=_instant(row.get(b"last_failure_at")),
        degraded_since=_instant(row.get(b"degraded_since")),
    )


SNAPSHOT_SECONDS = 5.0
"""How old a copy of the shared streaks may be when a page asks synchronously (a template):
older, it is refreshed in the background and the page uses what it has."""


class DeliveryMonitor:
    """What the status side knows about delivery.

    :meth:`current` (async) is always fresh. :meth:`delayed` is synchronous, for templates:
    it answers from the last copy and, when that copy is older than ``SNAPSHOT_SECONDS``,
    starts a refresh for the next page (stale-while-revalidate), so rendering never waits
    on Redis.
    """

    def __init__(self, local: Mapping[Channel, ChannelHealth],
                 shared: SharedDeliveryHealth | None, clock: Clock) -> None:
        self._local = local
        self._shared = shared
        self._clock = clock
        self._copy: dict[Channel, ChannelHealth] | None = None
        self._copied_at: datetime | None = None
        self._refreshing: asyncio.Task[None] | None = None

    async def current(self) -> dict[Channel, ChannelHealth]:
        if self._shared is not None:
            await self._refresh()
            if self._copy is not None:
                return dict(self._copy)
        return {channel: replace(self._local[channel]) for channel in MEMBER_CHANNELS}

    def delayed(self, channel: Channel) -> bool:
        if self._shared is None:
            return self._local[channel].delayed
        self._refresh_soon()
        if self._copy is not None:
            return self._copy[channel].delayed
        return self._local[channel].delayed

    async def _refresh(self) -> None:
        assert self._shared is not None
        try:
            self._copy = await self._shared.read()
            self._copied_at = self._clock.now()
        except Exception:  # Redis down: fall back to this process's worker
            log.warning("delivery health: Redis unreachable, using this process's view",
                        exc_info=True)
            self._copy = None

    def _refresh_soon(self) -> None:
        fresh = self._copied_at is not None and \
            self._clock.now() - self._copied_at < timedelta(seconds=SNAPSHOT_SECONDS)
        if fresh or (self._refreshing is not None and not self._refreshing.done()):
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # called outside the event loop: nothing to schedule on
            return
        self._refreshing = loop.create_task(self._refresh(), name="sekisho-delivery-health")
