"""When windows happen: pure recurrence arithmetic on an immutable snapshot of the windows.

Recurring windows are wall-clock rules in the maintenance time zone (:mod:`zoneinfo`):
the window runs from the local date and ``start_time`` to that plus ``duration`` counted
in calendar/wall-clock time, so "every Monday 00:00 for 7h" ends at 07:00 on the wall clock
even on the nights the clocks change (the window is then 6 or 8 hours long). Each end of
the span becomes the first instant at which the wall clock reads that time or later: in
the repeated hour of autumn, its first pass; inside the hour skipped in spring, the moment
the clocks jump (a window never silently gains the skipped hour, nor moves to another day).

Every instant handed out is an aware UTC ``datetime``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sekisho.clock import as_utc
from sekisho.maintenance.models import Recurrence
from sekisho.status.components import Component

_CHAIN_LIMIT = 16
"""Back-to-back windows are merged into one end time; this bounds the walk (windows tiling
the whole week would otherwise never end)."""
_INSTANT = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One concrete stretch of maintenance. ``components`` empty means the whole service."""

    window_ids: tuple[int, ...]
    starts_at: datetime
    ends_at: datetime
    components: frozenset[Component]
    note_ja: str | None = None
    note_en: str | None = None

    @property
    def whole_service(self) -> bool:
        return not self.components

    def note(self, locale: str) -> str | None:
        """The note in ``locale``, else the other one: some explanation beats none."""
        first, second = (self.note_en, self.note_ja) if locale == "en" else \
            (self.note_ja, self.note_en)
        return first or second


ActiveWindow = Occurrence
"""What :meth:`Timetable.active` returns: an occurrence whose end includes any window that
continues it without a gap."""


@dataclass(frozen=True, slots=True)
class Rule:
    """One stored window, as plain values (the hot path never touches ORM objects)."""

    id: int
    recurrence: Recurrence
    components: frozenset[Component]
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    weekday: int | None = None
    month: int | None = None
    day: int | None = None
    start_time: time | None = None
    duration: timedelta | None = None
    note_ja: str | None = None
    note_en: str | None = None
    created_at: datetime | None = None

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> Rule:
        known = set(Component)
        start_time = None
        if row["start_time"]:
            hour, minute = row["start_time"].split(":")
            start_time = time(int(hour), int(minute))
        minutes = row["duration_minutes"]
        return cls(
            id=row["id"], recurrence=Recurrence(row["recurrence"]),
            # A component name this version does not know (a newer release wrote it) is
            # ignored rather than widening the window to the whole service.
            components=frozenset(Component(c) for c in row["components"] or () if c in known),
            starts_at=as_utc(row["starts_at"]) if row["starts_at"] else None,
            ends_at=as_utc(row["ends_at"]) if row["ends_at"] else None,
            weekday=row["weekday"], month=row["month"], day=row["day"],
            start_time=start_time,
            duration=timedelta(minutes=minutes) if minutes is not None else None,
            note_ja=row["note_ja"], note_en=row["note_en"],
            created_at=as_utc(row["created_at"]) if row["created_at"] else None)

    def covers(self, components: Iterable[Component]) -> bool:
        """Whole-service windows cover everything; others cover the components they name.
        Asked about no component in particular, only a whole-service window counts."""
        return not self.components or not self.components.isdisjoint(components)

    def occurrences(self, zone: ZoneInfo, start: datetime, end: datetime) -> Iterator[Occurrence]:
        """Occurrences overlapping ``[start, end)``, in start order."""
        if self.recurrence == Recurrence.ONCE:
            assert self.starts_at is not None and self.ends_at is not None
            if self.starts_at < end and self.ends_at > start:
                yield self._occurrence(self.starts_at, self.ends_at)
            return
        assert self.duration is not None
        # Local dates from which an occurrence could still reach ``start``, to ``end``'s.
        first = (start.astimezone(zone).replace(tzinfo=None) - self.duration).date()
        last = end.astimezone(zone).date()
        for local_start in self._local_starts(first - timedelta(days=1), last):
            begins = _localise(local_start, zone)
            ends = _localise(local_start + self.duration, zone)
            if begins < end and ends > start:
                yield self._occurrence(begins, ends)

    def _local_starts(self, first: date, last: date) -> Iterator[datetime]:
        assert self.start_time is not None
        if self.recurrence == Recurrence.WEEKLY:
            assert self.weekday is not None
            day = first + timedelta(days=(self.weekday - first.weekday()) % 7)
            while day <= last:
                yield datetime.combine(day, self.start_time)
                day += timedelta(days=7)
            return
        assert self.month is not None and self.day is not None
        for year in range(first.year, last.year + 1):
            try:
                day = date(year, self.month, self.day)
            except ValueError:  # 02-29 happens in leap years only
                continue
            if first <= day <= last:
                yield datetime.combine(day, self.start_time)

    def next_occurrence(self, zone: ZoneInfo, now: datetime) -> Occurrence | None:
        """The occurrence running at ``now``, else the next one; None if there is none."""
        horizon = timedelta(days=8) if self.recurrence == Recurrence.WEEKLY else \
            timedelta(days=8 * 366)  # 02-29 may be eight years away (2096 -> 2104)
        return next(self.occurrences(zone, now, now + horizon), None)

    def _occurrence(self, starts_at: datetime, ends_at: datetime) -> Occurrence:
        return Occurrence((self.id,), starts_at, ends_at, self.components, self.note_ja,
                          self.note_en)


def _localise(local: datetime, zone: ZoneInfo) -> datetime:
    """The first instant at which the wall clock in ``zone`` reads ``local`` or later."""
    instant = local.replace(tzinfo=zone).astimezone(UTC)  # fold=0: the first pass, if twice
    if instant.astimezone(zone).replace(tzinfo=None) == local:
        return instant
    # ``local`` was skipped (clocks jumped forward over it): find the jump, to the second,
    # between its reading with the later offset (before the jump) and the earlier (after).
    before = int(local.replace(tzinfo=zone, fold=1).astimezone(UTC).timestamp())
    after = int(instant.timestamp())
    while after - before > 1:
        middle = (before + after) // 2
        shows = datetime.fromtimestamp(middle, zone).replace(tzinfo=None)
        before, after = (before, middle) if shows >= local else (middle, after)
    return datetime.fromtimestamp(after, UTC)


class Timetable:
    """An immutable snapshot of every window, asked about instants. No I/O."""

    def __init__(self, rules: Iterable[Rule], zone: ZoneInfo) -> None:
        self.rules = tuple(rules)
        self.zone = zone

    def active(self, now: datetime, *components: Component) -> ActiveWindow | None:
        """The maintenance in force at ``now`` for ``components`` (any of them), or None.

        With no component, only a whole-service window counts. The end runs on through
        windows that start before (or when) the previous one ends, so ``Retry-After`` does
        not send people back into the next window.
        """
        rules = [rule for rule in self.rules if rule.covers(components)]
        if not rules:
            return None
        running = self._at(rules, now)
        if not running:
            return None
        ends_at = max(o.ends_at for o in running)
        for _ in range(_CHAIN_LIMIT):
            following = [o for o in self._at(rules, ends_at) if o.ends_at > ends_at]
            if not following:
                break
            ends_at = max(o.ends_at for o in following)
        scopes = [o.components for o in running]
        first = min(running, key=lambda o: o.starts_at)
        return Occurrence(
            window_ids=tuple(sorted({i for o in running for i in o.window_ids})),
            starts_at=first.starts_at, ends_at=ends_at,
            components=frozenset() if any(not s for s in scopes) else frozenset().union(*scopes),
            note_ja=next((o.note_ja for o in running if o.note_ja), None),
            note_en=next((o.note_en for o in running if o.note_en), None))

    def upcoming(self, now: datetime, within: timedelta) -> list[Occurrence]:
        """Occurrences starting after ``now`` and no later than ``now + within``, by start."""
        found = [o for rule in self.rules
                 for o in rule.occurrences(self.zone, now, now + within + _INSTANT)
                 if now < o.starts_at <= now + within]
        return sorted(found, key=lambda o: (o.starts_at, o.window_ids))

    def down(self, now: datetime) -> frozenset[Component]:
        """Every component under maintenance at ``now`` (all of them in a whole-service window)."""
        down: set[Component] = set()
        for occurrence in self._at(self.rules, now):
            down |= occurrence.components or set(Component)
        return frozenset(down)

    def _at(self, rules: Iterable[Rule], moment: datetime) -> list[Occurrence]:
        return [o for rule in rules for o in rule.occurrences(self.zone, moment, moment + _INSTANT)]
