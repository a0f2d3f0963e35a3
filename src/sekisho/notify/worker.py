"""Deliver outbox messages: claim one, send it outside any transaction, record the result.

```mermaid
stateDiagram-v2
    [*] --> pending: Notifier.email / Notifier.sms (caller's transaction)
    pending --> pending: claimed (lease), or failed attempt (backoff)
    pending --> sent: transport accepted it
    pending --> failed: outbox_max_attempts used up
```

Nothing is lost: a claim only moves ``next_attempt_at`` a lease into the future, so a
message whose worker died mid-send becomes due again when the lease runs out. The price is
at-least-once delivery: such a message may arrive twice (mail carries a stable Message-ID).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select, select

from sekisho.clock import Clock
from sekisho.db import Database
from sekisho.notify.models import MEMBER_CHANNELS, Channel, DeliveryState, OutboxMessage
from sekisho.notify.transports import DeliveryError, Transport, transports_from_settings
from sekisho.settings import Settings
from sekisho.status.delivery import ChannelHealth, DeliveryPolicy, SharedDeliveryHealth

logger = logging.getLogger(__name__)

LEASE_SECONDS = 120.0
"""How long a claimed message is hidden from other workers. Many times the transports'
10 s timeout, so a slow send is never claimed twice; short enough that a crashed worker's
message waits only two minutes."""

_ERROR_MAX_CHARS = 1000


@dataclass(frozen=True, slots=True)
class _Claim:
    message: OutboxMessage
    lease_until: datetime


class OutboxWorker:
    """Sends due outbox messages through one transport per channel.

    Several workers (processes or hosts) may run against one PostgreSQL database: claims
    use ``SELECT ... FOR UPDATE SKIP LOCKED``, so no two claim the same message. On SQLite
    every transaction begins ``IMMEDIATE`` (see :mod:`sekisho.db`), which serialises claims.
    """

    def __init__(
        self,
        database: Database,
        settings: Settings,
        clock: Clock,
        transports: dict[Channel, Transport] | None = None,
        *,
        lease_seconds: float = LEASE_SECONDS,
        held: Callable[[datetime], Awaitable[frozenset[Channel]]] | None = None,
    ) -> None:
        self._db = database
        self._settings = settings
        self._clock = clock
        self.transports = (
            transports if transports is not None else transports_from_settings(settings, clock)
        )
        self.health: dict[Channel, ChannelHealth] = {ch: ChannelHealth() for ch in MEMBER_CHANNELS}
        """This process's delivery streaks per channel (``/status`` reads them)."""
        self.failed_attempts: Counter[Channel] = Counter()
        """Attempts this process's worker made that failed, per channel (``/metrics``)."""
        self._policy = DeliveryPolicy.from_settings(settings)
        self.shared_health: SharedDeliveryHealth | None = (
            SharedDeliveryHealth(settings.redis_url, self._policy) if settings.redis_url else None
        )
        """The same streaks counted by every worker process, when Redis is configured."""
        self._lease = timedelta(seconds=lease_seconds)
        self._held = held
        """The channels to hold now: a maintenance window is on their delivery
        (``MaintenanceSchedule.held_channels``)."""
        self._wakeup = asyncio.Event()

    # --- one pass ---------------------------------------------------------------------------

    async def run_once(self, limit: int = 50) -> int:
        """Attempt up to ``limit`` due messages, longest-due first; return how many.

        Each message is claimed in its own short transaction, sent with no transaction
        open (a slow mail server must not hold database locks), then its outcome is
        recorded in another short transaction.
        """
        attempted = 0
        while attempted < limit:
            claim = await self._claim_next()
            if claim is None:
                break
            attempted += 1
            error = await self._send(claim.message)
            await self._record(claim, error)
        return attempted

    def _due(self, now: datetime,
             held: frozenset[Channel] = frozenset()) -> Select[tuple[OutboxMessage]]:
        query = (
            select(OutboxMessage)
            .where(OutboxMessage.state == DeliveryState.PENDING)
            .where(OutboxMessage.next_attempt_at <= now)
            .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
            .limit(1)
        )
        if held:
            # Held messages stay pending and due: they go out, oldest first, once the
            # window ends, without spending attempts on a gateway down on purpose.
            query = query.where(OutboxMessage.channel.not_in(sorted(held)))
        if self._db.dialect == "postgresql":
            # Another worker's claim in flight is skipped, not waited for or duplicated.
            query = query.with_for_update(skip_locked=True)
        return query

    async def _claim_next(self) -> _Claim | None:
        now = self._clock.now()
        held = await self._held(now) if self._held is not None else frozenset()
        async with self._db.transaction() as session:
            while (message := (await session.scalars(self._due(now, held))).first()) is not None:
                if message.attempts >= self._settings.outbox_max_attempts:
                    # Every attempt was claimed but never recorded (the worker died each
                    # time). Give up like any exhausted message instead of looping forever.
                    message.state = DeliveryState.FAILED
                    message.last_error = message.last_error or "delivery attempts interrupted"
                    await session.flush()
                    continue
                # Attempts are counted when claimed, not when recorded, so a message that
                # kills its worker still runs out of attempts.
                message.attempts += 1
                message.next_attempt_at = now + self._lease
                return _Claim(message, message.next_attempt_at)
        return None

    async def _send(self, message: OutboxMessage) -> str | None:
        """Hand the message to its transport; the error text on failure, else ``None``."""
        transport = self.transports.get(Channel(message.channel))
        if transport is None:
            return f"no transport for channel {message.channel}"
        try:
            await transport.send(message)
        except DeliveryError as exc:
            return str(exc) or type(exc).__name__
        except Exception as exc:  # a transport bug must not strand the message in its lease
            logger.exception("outbox transport crashed on message %s", message.id)
            return f"{type(exc).__name__}: {exc}"
        return None

    async def _record(self, claim: _Claim, error: str | None) -> None:
        now = self._clock.now()
        settings = self._settings
        channel = Channel(claim.message.channel)
        if error is not None:
            self.failed_attempts[channel] += 1
        query = select(OutboxMessage).where(OutboxMessage.id == claim.message.id)
        if self._db.dialect == "postgresql":
            query = query.with_for_update()
        async with self._db.transaction() as session:
            message = (await session.scalars(query)).first()
            if message is None:  # deleted meanwhile (account erased); nothing to record
                return
            # After the lease ran out another worker may have re-claimed it; then it is theirs.
            ours = (
                message.state == DeliveryState.PENDING
                and message.next_attempt_at == claim.lease_until
            )
            if error is None:
                # Recorded even if our lease ran out and another worker re-claimed it: it
                # was delivered, and marking it sent spares the member a second copy.
                message.state = DeliveryState.SENT
                message.sent_at = now
                message.last_error = None
                if settings.outbox_scrub_after_delivery:
                    # Bodies hold codes and links; once delivered nobody needs them here.
                    message.body_text = None
                    message.body_html = None
            elif ours:
                message.last_error = error[:_ERROR_MAX_CHARS]
                if message.attempts >= settings.outbox_max_attempts:
                    message.state = DeliveryState.FAILED
                else:
                    message.next_attempt_at = now + backoff(settings, message.attempts)
        if channel in MEMBER_CHANNELS:
            self._note_health(channel, now, error, claim.message.id)
            await self._share_health(channel, now, error is None)
        elif error is not None:
            logger.warning("outbox %s message %s not delivered: %s", channel,
                           claim.message.id, error)

    def _note_health(
        self, channel: Channel, now: datetime, error: str | None, message_id: int
    ) -> None:
        health = self.health[channel]
        was_delayed = health.delayed
        if error is None:
            health.note_success(now, self._policy)
        else:
            health.note_failure(now, error[:_ERROR_MAX_CHARS], self._policy)
            # Id and error only: recipients and bodies are personal data and secrets.
            logger.warning("outbox %s message %s not delivered: %s", channel, message_id, error)
        if health.delayed and not was_delayed:
            logger.error("outbox %s failed %d times in a row: shown as delayed on /status",
                         channel, health.consecutive_failures)
        elif was_delayed and not health.delayed:
            logger.warning("outbox %s delivers again: no longer shown as delayed", channel)

    async def _share_health(self, channel: Channel, now: datetime, ok: bool) -> None:
        if self.shared_health is None:
            return
        try:
            await self.shared_health.record(channel, now, ok)
        except Exception:  # Redis down must not stop deliveries
            logger.warning("could not share %s delivery health through Redis", channel,
                           exc_info=True)

    async def close(self) -> None:
        """Release the Redis connection of the shared health, if any (app shutdown)."""
        if self.shared_health is not None:
            await self.shared_health.close()

    # --- the loop ---------------------------------------------------------------------------

    async def run_forever(self, stop: asyncio.Event, limit: int = 50) -> None:
        """Run passes until ``stop`` is set, idling ``outbox_poll_seconds`` between them.

        A full pass (``limit`` messages) is followed at once by another. Errors in a pass
        (the database restarting, say) are logged and the loop carries on.
        """
        while not stop.is_set():
            # Cleared before the pass, so a wake() that arrives during it is not lost.
            self._wakeup.clear()
            busy = False
            try:
                busy = await self.run_once(limit) >= limit
            except Exception:
                logger.exception("outbox pass failed; retrying after the poll interval")
            if not busy:
                await self._idle(stop)

    async def _idle(self, stop: asyncio.Event) -> None:
        waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wakeup.wait())]
        try:
            await asyncio.wait(
                waiters,
                timeout=self._settings.outbox_poll_seconds,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            for waiter in waiters:
                waiter.cancel()

    def wake(self) -> None:
        """Cut the current idle short (``Notifier.on_enqueue``). Call from the event loop."""
        self._wakeup.set()


def backoff(settings: Settings, attempts: int) -> timedelta:
    """Delay after the ``attempts``-th failure: ``base * 2**(attempts-1)``, capped at max."""
    exponent = min(max(attempts - 1, 0), 32)  # 2**32 * base is far past any sane cap
    seconds = settings.outbox_backoff_base_seconds * 2**exponent
    return timedelta(seconds=min(seconds, settings.outbox_backoff_max_seconds))
