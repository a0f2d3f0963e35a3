"""Creating, resolving and ending sessions (ASVS V7, NIST SP 800-63B §7)."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from sekisho.clock import Clock, TokenSource
from sekisho.context import RequestContext
from sekisho.db import Database
from sekisho.errors import SekishoError
from sekisho.identity.models import Account, AccountStatus
from sekisho.identity.service import load_account
from sekisho.sessions.models import Session
from sekisho.settings import Settings


def token_hash(token: str) -> str:
    """Tokens carry 256 random bits, so a plain SHA-256 is enough to store them (ASVS 6.5.2)."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ActiveSession:
    session: Session
    account: Account


SessionsEnded = Callable[[AsyncSession, int, list[int], str], Awaitable[None]]
"""Called in the transaction that ended sessions: the account, their ids and the reason."""


class SessionService:
    def __init__(self, settings: Settings, clock: Clock, tokens: TokenSource) -> None:
        self._settings = settings
        self._clock = clock
        self._tokens = tokens
        self.on_end: list[SessionsEnded] = []
        """What else ends with a session: the OpenID provider's tokens and logout notices."""

    def new(self, account_id: int, ctx: RequestContext, *, second_factor: bool = False
            ) -> tuple[str, dict[str, Any]]:
        """A fresh token (never reused: no fixation, ASVS 7.2.4) and the row to insert."""
        now = self._clock.now()
        token = self._tokens.token(32)
        return token, {
            "account_id": account_id, "token_hash": token_hash(token), "created_at": now,
            "authenticated_at": now, "last_seen_at": now,
            "second_factor_at": now if second_factor else None,
            "expires_at": now + timedelta(seconds=self._settings.session_absolute_timeout_seconds),
            "ip": ctx.ip, "user_agent": ctx.short_user_agent, "device_id": ctx.device_id,
        }

    async def resolve(self, database: Database, token: str) -> ActiveSession | None:
        """The live session behind ``token``, or None if unknown, ended, idle or too old.

        Runs on every signed-in request, so it only reads, as one hot-path unit of plain
        statements; it writes just to end a dead session or, at most once per touch
        interval, to move ``last_seen_at``.
        """
        hashed = token_hash(token)
        sessions = Session.__table__

        def load(conn: Connection) -> ActiveSession | None:
            row = conn.execute(select(sessions).where(sessions.c.token_hash == hashed)
                               ).mappings().first()
            if row is None or row["ended_at"] is not None:
                return None
            account = load_account(conn, row["account_id"])
            return ActiveSession(Session(**row), account) if account else None

        found = await database.run(load)
        if found is None:
            return None
        session, account = found.session, found.account
        now = self._clock.now()
        idle_limit = timedelta(seconds=self._settings.session_idle_timeout_seconds)
        end_reason = None
        if now >= session.expires_at or now - session.last_seen_at >= idle_limit:
            end_reason = "expired"
        elif account.status == AccountStatus.SUSPENDED:
            end_reason = "account_suspended"
        if end_reason is not None:
            await database.run(lambda conn: conn.execute(
                update(sessions).where(sessions.c.id == session.id, sessions.c.ended_at.is_(None))
                .values(ended_at=now, end_reason=end_reason)), write=True)
            return None
        if now - session.last_seen_at >= timedelta(
                seconds=self._settings.session_touch_interval_seconds):
            await database.run(lambda conn: conn.execute(
                update(sessions).where(sessions.c.id == session.id).values(last_seen_at=now)),
                write=True)
            session.last_seen_at = now
        return found

    def require_recent(self, session: Session, max_age: int | None = None) -> None:
        """Sensitive changes need a password entered within ``max_age`` seconds (default
        ``step_up_max_age_seconds``; ASVS 6.2.3): a stolen session cookie alone must not
        take over the account."""
        age = self._clock.now() - session.authenticated_at
        if age > timedelta(seconds=max_age or self._settings.step_up_max_age_seconds):
            raise SekishoError("auth.step_up_required", extra={
                "methods": ["password"], "reauthenticate": "/api/v1/session/reauthenticate"})

    def reauthenticated(self, conn: Connection, session_id: int) -> None:
        """The member entered their password again in this session."""
        sessions = Session.__table__
        conn.execute(update(sessions).where(sessions.c.id == session_id)
                     .values(authenticated_at=self._clock.now()))

    async def end(self, db: AsyncSession, session: Session, reason: str) -> None:
        await self._end(db, session.account_id, [session.id], reason)

    async def end_all(self, db: AsyncSession, account_id: int, reason: str,
                      keep: int | None = None) -> int:
        """End every live session of the account (but ``keep``); returns how many ended."""
        query = select(Session.id).where(Session.account_id == account_id,
                                         Session.ended_at.is_(None))
        if keep is not None:
            query = query.where(Session.id != keep)
        ids = list(await db.scalars(query))
        await self._end(db, account_id, ids, reason)
        return len(ids)

    async def _end(self, db: AsyncSession, account_id: int, ids: list[int], reason: str) -> None:
        if ids:
            await db.execute(update(Session).where(Session.id.in_(ids), Session.ended_at.is_(None))
                             .values(ended_at=self._clock.now(), end_reason=reason))
        for hook in self.on_end:
            await hook(db, account_id, ids, reason)
