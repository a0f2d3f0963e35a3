"""Recording and reading auth events."""

from __future__ import annotations

import hashlib
import hmac
from collections import Counter
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from sekisho.clock import Clock, TokenSource, normalise_reference
from sekisho.context import RequestContext
from sekisho.events.models import AuthEvent, EventKind


class EventLog:
    """Writes one :class:`AuthEvent` per thing that happened, each with a support reference."""

    def __init__(self, clock: Clock, tokens: TokenSource, secret: bytes) -> None:
        self._clock = clock
        self._tokens = tokens
        self._key = hmac.new(secret, b"identifier-hash", hashlib.sha256).digest()
        self.tally: Counter[tuple[str, str]] = Counter()
        """Events prepared by this process, by (kind, outcome): the metrics' login outcomes."""

    def identifier_hash(self, normalised_value: str) -> str:
        """Keyed, so the log cannot be reversed with a list of emails or card numbers."""
        return hmac.new(self._key, normalised_value.encode(), hashlib.sha256).hexdigest()

    async def record(self, session: AsyncSession, *, kind: EventKind, outcome: str,
                     ctx: RequestContext, account_id: int | None = None,
                     identifier: str | None = None, detail: dict[str, Any] | None = None,
                     reference: str | None = None) -> AuthEvent:
        event = AuthEvent(**self.values(kind=kind, outcome=outcome, ctx=ctx,
                                        account_id=account_id, identifier=identifier,
                                        detail=detail, reference=reference))
        session.add(event)
        return event

    def values(self, *, kind: EventKind, outcome: str, ctx: RequestContext,
               account_id: int | None = None, identifier: str | None = None,
               detail: dict[str, Any] | None = None,
               reference: str | None = None) -> dict[str, Any]:
        """The columns of one event, for :meth:`record` or a Core ``INSERT`` (hot paths)."""
        self.tally[(str(kind), outcome)] += 1
        return {
            "occurred_at": self._clock.now(), "kind": kind, "outcome": outcome,
            "account_id": account_id,
            "identifier_hash": self.identifier_hash(identifier) if identifier else None,
            "ip": ctx.ip, "user_agent": ctx.short_user_agent, "device_id": ctx.device_id,
            "request_id": ctx.request_id, "reference": reference or self._tokens.reference(),
            "detail": detail or {},
        }

    async def by_reference(self, session: AsyncSession, reference: str) -> list[AuthEvent]:
        """Events behind a reference as support hears it (any case, with or without hyphens)."""
        rows = await session.scalars(
            select(AuthEvent).where(AuthEvent.reference == normalise_reference(reference))
            .order_by(AuthEvent.id.desc())
        )
        return list(rows)

    async def for_account(self, session: AsyncSession, account_id: int,
                          limit: int = 50) -> list[AuthEvent]:
        """The account's events, newest first (index ``ix_auth_events_account_time``)."""
        rows = await session.scalars(
            select(AuthEvent).where(AuthEvent.account_id == account_id)
            .order_by(AuthEvent.occurred_at.desc(), AuthEvent.id.desc()).limit(limit)
        )
        return list(rows)
