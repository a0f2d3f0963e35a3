"""The maintenance schedule: windows stored in the database, asked about on every request.

Every request asks "is this under maintenance now?", so the answer comes from an in-memory
:class:`~sekisho.maintenance.timetable.Timetable` reloaded at most every
``reload_seconds`` (one query per process per interval, not per request). Changes made
through this service take effect in this process at once; other processes see them within
the interval.
"""

from __future__ import annotations

import asyncio
import logging
import time as _time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, select

from sekisho.context import RequestContext
from sekisho.db import Database
from sekisho.events.models import OK, EventKind
from sekisho.maintenance.models import MaintenanceWindow, Recurrence
from sekisho.maintenance.spec import WEEKDAYS, WindowSpec, format_clock, format_duration
from sekisho.maintenance.timetable import ActiveWindow, Occurrence, Rule, Timetable
from sekisho.notify.models import Channel
from sekisho.settings import Settings
from sekisho.status.components import LABELS, Component
from sekisho.web.i18n import N_, translations

if TYPE_CHECKING:
    from sekisho.clock import Clock
    from sekisho.core import Core
    from sekisho.events.service import EventLog

log = logging.getLogger("sekisho.maintenance")

_CHANNELS = {Component.EMAIL: Channel.EMAIL, Component.SMS: Channel.SMS}

_NOTICE_WHEN = N_("Maintenance is planned from {start} to {end}.")
_NOTICE_ALL = N_("The whole service will be unavailable during this time.")
_NOTICE_SOME = N_("During this time these will be unavailable: {components}.")


@dataclass(frozen=True, slots=True)
class Notice:
    """An upcoming window as the login page announces it, in one locale."""

    starts_at: datetime
    ends_at: datetime
    text: str
    note: str | None
    components: tuple[str, ...]
    """Component names (empty: the whole service), for ``data-`` attributes."""


def component_labels(components: frozenset[Component], locale: str) -> str:
    """Component names as people read them (``ログイン、SMS配信``), in declaration order."""
    gettext = translations(locale).gettext
    labels = [gettext(LABELS[c]) for c in Component if c in components]
    return ("、" if locale == "ja" else ", ").join(labels)


class MaintenanceSchedule:
    """Windows: stored, listed, removed, and asked about (``active``, ``upcoming``)."""

    def __init__(self, database: Database, clock: Clock, settings: Settings, *,
                 events: EventLog | None = None,
                 local_time: Callable[[datetime], str] | None = None,
                 monotonic: Callable[[], float] = _time.monotonic) -> None:
        self._db = database
        self.clock = clock
        self._events = events
        self._local_time = local_time or (lambda moment: moment.strftime("%Y-%m-%d %H:%M UTC"))
        self._monotonic = monotonic
        self.zone = ZoneInfo(settings.maintenance_timezone)
        self.notice_window = timedelta(hours=settings.maintenance_notice_hours)
        self.reload_seconds = settings.maintenance_reload_seconds
        self._timetable: Timetable | None = None
        self._loaded_at = 0.0
        self._lock = asyncio.Lock()

    @classmethod
    def from_core(cls, core: Core) -> MaintenanceSchedule:
        return cls(core.db, core.clock, core.settings, events=core.events,
                   local_time=core.local_time)

    # --- the hot path ------------------------------------------------------------------------

    async def timetable(self) -> Timetable:
        """The cached snapshot, reloaded when older than ``reload_seconds``.

        While one request reloads, the others keep using the previous snapshot instead of
        queueing behind the query. If the database cannot be read, the previous snapshot
        (or none: no maintenance) stays in use until the next interval: enforcement must
        not turn a database hiccup into an outage of its own.
        """
        current = self._timetable
        if current is not None and (self._monotonic() - self._loaded_at < self.reload_seconds
                                    or self._lock.locked()):
            return current
        async with self._lock:
            if self._timetable is not None and \
                    self._monotonic() - self._loaded_at < self.reload_seconds:
                return self._timetable
            try:
                rules = await self._db.run(_load_rules)
                self._timetable = Timetable(rules, self.zone)
            except Exception:
                log.exception("could not load maintenance windows; keeping the last known")
                self._timetable = self._timetable or Timetable((), self.zone)
            self._loaded_at = self._monotonic()
            return self._timetable

    def invalidate(self) -> None:
        """Reload on the next question (after a change made through this process)."""
        self._loaded_at = float("-inf")

    async def active(self, now: datetime, *components: Component) -> ActiveWindow | None:
        """See :meth:`Timetable.active` (no component: whole-service windows only)."""
        return (await self.timetable()).active(now, *components)

    async def upcoming(self, now: datetime, within: timedelta) -> list[Occurrence]:
        return (await self.timetable()).upcoming(now, within)

    async def upcoming_notices(self, now: datetime, locale: str) -> list[Notice]:
        """Windows starting within ``maintenance_notice_hours``, worded for the login page."""
        return self.notices(await self.timetable(), now, locale)

    def notices(self, timetable: Timetable, now: datetime, locale: str) -> list[Notice]:
        """:meth:`upcoming_notices` on a snapshot already in hand."""
        gettext = translations(locale).gettext
        found = []
        for occurrence in timetable.upcoming(now, self.notice_window):
            when = gettext(_NOTICE_WHEN).format(start=self._local_time(occurrence.starts_at),
                                                end=self._local_time(occurrence.ends_at))
            scope = gettext(_NOTICE_ALL) if occurrence.whole_service else \
                gettext(_NOTICE_SOME).format(
                    components=component_labels(occurrence.components, locale))
            found.append(Notice(occurrence.starts_at, occurrence.ends_at,
                                when + ("" if locale == "ja" else " ") + scope,
                                occurrence.note(locale),
                                tuple(c.value for c in Component if c in occurrence.components)))
        return found

    async def components_in_maintenance(self, now: datetime) -> dict[Component, ActiveWindow]:
        """Each component under maintenance at ``now``, with the window covering it (its
        ``ends_at``, ``note_ja``, ``note_en``): the hook :class:`sekisho.status.board.StatusBoard`
        asks for. A whole-service window lists every component."""
        timetable = await self.timetable()
        found = {component: timetable.active(now, component) for component in Component}
        return {component: window for component, window in found.items() if window}

    async def held_channels(self, now: datetime) -> frozenset[Channel]:
        """Outbox channels to hold at ``now``: their delivery component is under maintenance
        (a whole-service window holds every member channel; back-channel logout notices to
        relying parties keep going). Held messages stay pending and go out
        when the window ends."""
        down = (await self.timetable()).down(now)
        return frozenset(channel for component, channel in _CHANNELS.items() if component in down)

    # --- management (CLI and admin API) ------------------------------------------------------

    async def windows(self) -> list[Rule]:
        """Every stored window, oldest first (read fresh, not from the cache)."""
        return await self._db.run(_load_rules)

    async def add(self, spec: WindowSpec, *, ctx: RequestContext | None = None,
                  actor_id: int | None = None) -> Rule:
        """Store a window (``request.invalid`` if the spec does not hold together)."""
        spec = spec.checked(self.zone)
        now = self.clock.now()
        async with self._db.transaction() as db:
            row = MaintenanceWindow(
                recurrence=spec.recurrence, starts_at=spec.starts_at, ends_at=spec.ends_at,
                weekday=spec.weekday, month=spec.month, day=spec.day,
                start_time=format_clock(spec.start_time) if spec.start_time else None,
                duration_minutes=int(spec.duration.total_seconds() // 60)
                if spec.duration else None,
                components=[c.value for c in spec.components], note_ja=spec.note_ja,
                note_en=spec.note_en, created_at=now)
            db.add(row)
            await db.flush()
            rule = Rule.from_row({c.name: getattr(row, c.name)
                                  for c in MaintenanceWindow.__table__.columns})
            await self._audit(db, "maintenance_added", rule, ctx, actor_id)
        self.invalidate()
        return rule

    async def remove(self, window_id: int, *, ctx: RequestContext | None = None,
                     actor_id: int | None = None) -> bool:
        """Delete a window; False if there was none with this id."""
        async with self._db.transaction() as db:
            row = await db.get(MaintenanceWindow, window_id)
            if row is None:
                return False
            rule = Rule.from_row({c.name: getattr(row, c.name)
                                  for c in MaintenanceWindow.__table__.columns})
            await db.delete(row)
            await self._audit(db, "maintenance_removed", rule, ctx, actor_id)
        self.invalidate()
        return True

    async def _audit(self, db: Any, action: str, rule: Rule, ctx: RequestContext | None,
                     actor_id: int | None) -> None:
        if self._events is None:
            return
        # The staff member goes in ``detail``, not ``account_id``: that column names whose
        # history an event belongs to, and a schedule change is nobody's login history.
        await self._events.record(db, kind=EventKind.MAINTENANCE, outcome=OK, ctx=ctx or RequestContext(),
                                  detail={"action": action, "window_id": rule.id, "by": actor_id,
                                          "summary": summary(rule, self.zone)})

    def view(self, rule: Rule, now: datetime) -> dict[str, Any]:
        """A window as the admin API shows it, with its current or next occurrence."""
        upcoming = rule.next_occurrence(self.zone, now)
        return {
            "id": rule.id, "recurrence": rule.recurrence.value,
            "starts_at": utc_iso(rule.starts_at), "ends_at": utc_iso(rule.ends_at),
            "weekday": WEEKDAYS[rule.weekday] if rule.weekday is not None else None,
            "month": rule.month, "day": rule.day,
            "start_time": format_clock(rule.start_time) if rule.start_time else None,
            "duration_minutes": int(rule.duration.total_seconds() // 60)
            if rule.duration else None,
            "timezone": self.zone.key,
            "components": sorted(c.value for c in rule.components),
            "note_ja": rule.note_ja, "note_en": rule.note_en,
            "summary": summary(rule, self.zone),
            "next": {"starts_at": utc_iso(upcoming.starts_at),
                     "ends_at": utc_iso(upcoming.ends_at),
                     "active": upcoming.starts_at <= now} if upcoming else None,
            "created_at": utc_iso(rule.created_at),
        }


def summary(rule: Rule, zone: ZoneInfo) -> str:
    """One line for people: ``weekly sun 23:00 for 8h (Asia/Tokyo): all``."""
    if rule.recurrence == Recurrence.ONCE:
        assert rule.starts_at is not None and rule.ends_at is not None
        when = (f"once {rule.starts_at.astimezone(zone):%Y-%m-%d %H:%M} to "
                f"{rule.ends_at.astimezone(zone):%Y-%m-%d %H:%M}")
    else:
        assert rule.start_time is not None and rule.duration is not None
        day = WEEKDAYS[rule.weekday] if rule.recurrence == Recurrence.WEEKLY and \
            rule.weekday is not None else f"{rule.month:02d}-{rule.day:02d}"
        when = (f"{rule.recurrence.value} {day} {format_clock(rule.start_time)} "
                f"for {format_duration(rule.duration)}")
    scope = ",".join(sorted(c.value for c in rule.components)) or "all"
    return f"{when} ({zone.key}): {scope}"


def utc_iso(moment: datetime | None) -> str | None:
    """``2026-01-11T14:00:00Z`` (RFC 3339, UTC), as the API writes instants."""
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def _load_rules(conn: Connection) -> list[Rule]:
    table = MaintenanceWindow.__table__
    rows = conn.execute(select(table).order_by(table.c.id)).mappings().all()
    return [Rule.from_row(row) for row in rows]
