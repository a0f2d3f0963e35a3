"""A signed-in member's own sessions and login history: see them, end a session.

Listing one's live sessions and ending any or all of them is ASVS 7.5.2 (which at L2 also
asks for a fresh re-authentication first; not required here yet). The history of logins,
failed attempts and locks lets a member notice someone else trying (ASVS 6.3.5 asks that
they be told; this is where they can check). It is read from the auth event log, so it
shows exactly what was recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from sekisho.context import RequestContext, describe_user_agent
from sekisho.core import Core
from sekisho.errors import SekishoError
from sekisho.events.models import OK, AuthEvent, EventKind
from sekisho.sessions.models import Session
from sekisho.sessions.service import ActiveSession

END_REASON = "ended_by_member"
HISTORY_LIMIT = 100
"""At most this many history entries: enough to spot a guessing run, small enough to read."""

# Second-factor events join the history as soon as that kind exists (MFA plugs in as a
# login stage, so its events carry their own kind); the column is a plain string.
_HISTORY_KINDS = (EventKind.LOGIN.value, EventKind.REAUTHENTICATION.value, "second_factor")
_MAX_ID = 2**63 - 1  # BIGINT: a larger id from the URL matches nothing


@dataclass(frozen=True, slots=True)
class SessionEntry:
    id: int
    device: str
    ip: str | None
    created_at: datetime
    last_seen_at: datetime
    current: bool

    def view(self) -> dict[str, Any]:
        """As the JSON API shows it."""
        return {"id": self.id, "device": self.device, "ip": self.ip,
                "created_at": self.created_at.isoformat(),
                "last_seen_at": self.last_seen_at.isoformat(), "current": self.current}


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One recorded attempt; the routes put it into words in the member's language."""

    at: datetime
    kind: str
    outcome: str
    """``ok`` or the catalogue code the person was shown."""
    detail: dict[str, Any]
    """What the login flow recorded: ``correction``, ``method``, ``locked_until``..."""
    device: str
    ip: str | None


class AccountActivity:
    """Sessions and login history of the member who asks; never anyone else's."""

    def __init__(self, core: Core) -> None:
        self.core = core

    @property
    def history_days(self) -> int:
        return self.core.settings.login_history_days

    async def sessions(self, active: ActiveSession) -> list[SessionEntry]:
        """The member's live sessions, newest first; ``current`` marks the one asking."""
        async with self.core.db.read() as db:
            rows = await db.scalars(
                select(Session).where(*self._live(active.account.id))
                .order_by(Session.created_at.desc(), Session.id.desc()))
            sessions = list(rows)
        return [SessionEntry(
            id=row.id, device=describe_user_agent(row.user_agent), ip=row.ip,
            created_at=row.created_at, last_seen_at=row.last_seen_at,
            current=row.id == active.session.id) for row in sessions]

    async def end_session(self, active: ActiveSession, session_id: int,
                          ctx: RequestContext) -> bool:
        """End one of the member's own live sessions; True if it was the asking one.

        Another member's session, an unknown id and an already dead session all answer
        ``request.not_found`` alike: ids are sequential, so telling them apart would let a
        member count everyone else's sessions.
        """
        async with self.core.db.transaction() as db:
            session = None
            if 0 < session_id <= _MAX_ID:
                session = await db.scalar(select(Session).where(
                    Session.id == session_id, *self._live(active.account.id)))
            if session is None:
                raise SekishoError("request.not_found")
            await self._end(db, active, [session], ctx)
        return session.id == active.session.id

    async def end_others(self, active: ActiveSession, ctx: RequestContext) -> int:
        """"Log out everywhere else": end every live session but the asking one."""
        async with self.core.db.transaction() as db:
            others = list(await db.scalars(select(Session).where(
                *self._live(active.account.id), Session.id != active.session.id)))
            await self._end(db, active, others, ctx)
        return len(others)

    async def history(self, account_id: int) -> list[HistoryEntry]:
        """Logins, step-ups and refused attempts of the last ``login_history_days``, newest
        first, at most :data:`HISTORY_LIMIT`."""
        since = self.core.clock.now() - timedelta(days=self.history_days)
        async with self.core.db.read() as db:
            rows = await db.scalars(
                select(AuthEvent).where(AuthEvent.account_id == account_id,
                                        AuthEvent.kind.in_(_HISTORY_KINDS),
                                        AuthEvent.occurred_at >= since)
                .order_by(AuthEvent.occurred_at.desc(), AuthEvent.id.desc())
                .limit(HISTORY_LIMIT))
            events = list(rows)
        return [HistoryEntry(at=event.occurred_at, kind=str(event.kind), outcome=event.outcome,
                             detail=event.detail or {},
                             device=describe_user_agent(event.user_agent), ip=event.ip)
                for event in events]

    def _live(self, account_id: int) -> list[ColumnElement[bool]]:
        """The same liveness rule as :meth:`SessionService.resolve`: not ended, not past the
        absolute end, not idle for ``session_idle_timeout_seconds``."""
        now = self.core.clock.now()
        idle = timedelta(seconds=self.core.settings.session_idle_timeout_seconds)
        return [Session.account_id == account_id, Session.ended_at.is_(None),
                Session.expires_at > now, Session.last_seen_at > now - idle]

    async def _end(self, db: AsyncSession, active: ActiveSession, sessions: list[Session],
                   ctx: RequestContext) -> None:
        """End ``sessions`` and record a logout for each, naming the session that asked."""
        for session in sessions:
            await self.core.sessions.end(db, session, END_REASON)
            await self.core.events.record(
                db, kind=EventKind.LOGOUT, outcome=OK, ctx=ctx, account_id=active.account.id,
                detail={"by": "member", "session_id": session.id,
                        "from_session_id": active.session.id})
