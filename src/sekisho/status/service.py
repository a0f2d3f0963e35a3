"""Incidents: opened, updated and resolved by staff (admin API, CLI), read by ``/status``.

The admin API and the ``sekisho status incident`` commands both call :class:`IncidentService`;
what members see is composed from it by :class:`sekisho.status.board.StatusBoard`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from sekisho.clock import Clock
from sekisho.db import Database
from sekisho.errors import SekishoError
from sekisho.settings import Settings
from sekisho.status.components import Component
from sekisho.status.models import Impact, Incident, IncidentState, IncidentUpdate

TITLE_MAX = 200
BODY_MAX = 4000


@dataclass(frozen=True, slots=True)
class Bilingual:
    """A text staff wrote in both page languages."""

    ja: str
    en: str

    def pick(self, locale: str) -> str:
        return self.en if locale == "en" else self.ja


RESOLVED_NOTE = Bilingual(ja="この障害は解決しました。", en="This incident has been resolved.")
"""The update :meth:`IncidentService.resolve` posts when staff write none."""


def resolved_days(settings: Settings) -> int:
    return settings.status_resolved_days


class IncidentService:
    """Open, update, resolve and list incidents. Each call is one short transaction."""

    def __init__(self, db: Database, clock: Clock, settings: Settings) -> None:
        self._db = db
        self._clock = clock
        self._settings = settings

    async def open(self, *, title: Bilingual, body: Bilingual, components: Sequence[Component],
                   impact: Impact, state: IncidentState = IncidentState.INVESTIGATING,
                   posted_by: int | None = None) -> Incident:
        """A new incident with its first update. ``state`` may skip ahead (a cause known at
        once is ``identified``) but an incident cannot be opened resolved."""
        if not state.is_open:
            raise SekishoError("request.invalid", field="state", params={"reason": "wrong_type"})
        if not components:
            raise SekishoError("request.invalid", field="components",
                               params={"reason": "missing"})
        _check(title, "title", TITLE_MAX)
        _check(body, "message", BODY_MAX)
        now = self._clock.now()
        incident = Incident(
            state=state, impact=impact,
            components=[Component(c).value for c in dict.fromkeys(components)],
            title_ja=title.ja.strip(), title_en=title.en.strip(),
            opened_at=now, updated_at=now, resolved_at=None,
        )
        incident.updates = [_update(state, body, now, posted_by)]
        async with self._db.transaction() as session:
            session.add(incident)
            await session.flush()
        return incident

    async def update(self, incident_id: int, *, state: IncidentState, body: Bilingual,
                     impact: Impact | None = None, posted_by: int | None = None) -> Incident:
        """Post an update, moving the incident to ``state`` (which may be the state it is
        in: a progress note). ``resolved`` closes it for good."""
        _check(body, "message", BODY_MAX)
        now = self._clock.now()
        async with self._db.transaction() as session:
            incident = await self._for_update(session, incident_id)
            if not incident.is_open:
                raise SekishoError("incident.resolved")
            incident.state = state
            incident.updated_at = now
            if impact is not None:
                incident.impact = impact
            if not state.is_open:
                incident.resolved_at = now
            incident.updates.insert(0, _update(state, body, now, posted_by))
            await session.flush()
        return incident

    async def resolve(self, incident_id: int, *, body: Bilingual | None = None,
                      posted_by: int | None = None) -> Incident:
        return await self.update(incident_id, state=IncidentState.RESOLVED,
                                 body=body or RESOLVED_NOTE, posted_by=posted_by)

    async def get(self, incident_id: int) -> Incident:
        async with self._db.read() as session:
            incident = await session.get(Incident, incident_id)
            if incident is None:
                raise SekishoError("incident.not_found")
            return incident

    async def newest(self, *, resolved_since: datetime | None = None,
                   limit: int = 100) -> list[Incident]:
        """Open incidents, then resolved ones, each group newest first.

        ``resolved_since`` drops incidents resolved before it (``None``: keep them all).
        """
        query = select(Incident)
        if resolved_since is not None:
            query = query.where(or_(Incident.resolved_at.is_(None),
                                    Incident.resolved_at >= resolved_since))
        query = query.order_by(Incident.resolved_at.is_not(None), Incident.opened_at.desc(),
                               Incident.id.desc()).limit(limit)
        async with self._db.read() as session:
            return list(await session.scalars(query))

    async def visible(self) -> list[Incident]:
        """What members see: every open incident and those resolved in the last
        ``status_resolved_days`` days."""
        cutoff = self._clock.now() - timedelta(days=resolved_days(self._settings))
        return await self.newest(resolved_since=cutoff)

    async def _for_update(self, session: AsyncSession, incident_id: int) -> Incident:
        query = select(Incident).where(Incident.id == incident_id)
        if self._db.dialect == "postgresql":
            query = query.with_for_update()  # two staff posting at once: one after the other
        incident = (await session.scalars(query)).first()
        if incident is None:
            raise SekishoError("incident.not_found")
        return incident


def _update(state: IncidentState, body: Bilingual, now: datetime,
            posted_by: int | None) -> IncidentUpdate:
    return IncidentUpdate(state=state, body_ja=body.ja.strip(), body_en=body.en.strip(),
                          posted_at=now, posted_by=posted_by)


def _check(text: Bilingual, field: str, limit: int) -> None:
    for value in (text.ja, text.en):
        if not value.strip():
            raise SekishoError("request.invalid", field=field, params={"reason": "missing"})
        if len(value) > limit:
            raise SekishoError("request.invalid", field=field, params={"reason": "too_long"})
