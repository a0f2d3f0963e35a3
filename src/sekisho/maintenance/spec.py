"""What an operator asks for: a window spec, read from CLI text or JSON, checked in one place.

The CLI (``--weekly MON 00:00 --duration 7h``) and the admin API (typed JSON) both end in a
:class:`WindowSpec`; :meth:`WindowSpec.checked` is the only validation, and it raises the
catalogue's ``request.invalid`` (with ``field`` and ``reason``) like every other input error.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sekisho.errors import SekishoError
from sekisho.maintenance.models import Recurrence
from sekisho.status.components import Component

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""Index = ``datetime.weekday()``, as stored in ``MaintenanceWindow.weekday``."""
_WEEKDAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MIN_DURATION = timedelta(minutes=1)
MAX_DURATION = {Recurrence.WEEKLY: timedelta(days=7), Recurrence.YEARLY: timedelta(days=365)}
"""A recurring window must end before its next start, or it would never end."""
NOTE_MAX_CHARS = 200  # the column width of note_ja / note_en
_DURATION = re.compile(r"^(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m(?:in)?)?$")
_CLOCK = re.compile(r"^(?P<h>\d{1,2}):(?P<m>\d{2})$")
_MONTH_DAY = re.compile(r"^(?P<m>\d{1,2})[-/](?P<d>\d{1,2})$")


def invalid(field_name: str, reason: str) -> SekishoError:
    return SekishoError("request.invalid", field=field_name, params={"reason": reason})


@dataclass(frozen=True, slots=True)
class WindowSpec:
    """A window before it is stored. Times of recurring windows are wall-clock times in the
    maintenance time zone; ``duration`` is wall-clock too (see :mod:`.timetable`)."""

    recurrence: Recurrence
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    weekday: int | None = None
    month: int | None = None
    day: int | None = None
    start_time: time | None = None
    duration: timedelta | None = None
    components: tuple[Component, ...] = field(default=())
    """Empty: the whole service."""
    note_ja: str | None = None
    note_en: str | None = None

    def checked(self, zone: ZoneInfo) -> WindowSpec:
        """This spec made complete and consistent, or ``request.invalid`` naming the field.

        Naive one-off times are read in ``zone`` (and all are returned in UTC); components
        are deduplicated and sorted.
        """
        spec = replace(self, components=tuple(sorted(set(self.components))))
        for name, note in (("note_ja", spec.note_ja), ("note_en", spec.note_en)):
            if note is not None and len(note) > NOTE_MAX_CHARS:
                raise invalid(name, "too_long")
        spec = replace(spec, note_ja=_blank_is_none(spec.note_ja),
                       note_en=_blank_is_none(spec.note_en))
        if spec.recurrence == Recurrence.ONCE:
            return spec._checked_once(zone)
        if spec.start_time is None:
            raise invalid("start_time", "missing")
        if spec.duration is None:
            raise invalid("duration", "missing")
        if not MIN_DURATION <= spec.duration < MAX_DURATION[spec.recurrence]:
            raise invalid("duration", "out_of_range")
        if spec.recurrence == Recurrence.WEEKLY:
            if spec.weekday is None:
                raise invalid("weekday", "missing")
            if not 0 <= spec.weekday <= 6:
                raise invalid("weekday", "out_of_range")
            return replace(spec, month=None, day=None, starts_at=None, ends_at=None)
        if spec.month is None or spec.day is None:
            raise invalid("month" if spec.month is None else "day", "missing")
        try:
            date(2028, spec.month, spec.day)  # a leap year: 02-29 is a valid yearly date
        except ValueError:
            raise invalid("day", "out_of_range") from None
        return replace(spec, weekday=None, starts_at=None, ends_at=None)

    def _checked_once(self, zone: ZoneInfo) -> WindowSpec:
        if self.starts_at is None:
            raise invalid("starts_at", "missing")
        if self.ends_at is None:
            raise invalid("ends_at", "missing")
        starts_at = aware(self.starts_at, zone).astimezone(UTC)
        ends_at = aware(self.ends_at, zone).astimezone(UTC)
        if ends_at <= starts_at:
            raise invalid("ends_at", "ends_before_start")
        return replace(self, starts_at=starts_at, ends_at=ends_at, weekday=None, month=None,
                       day=None, start_time=None, duration=None)


def _blank_is_none(text: str | None) -> str | None:
    return (text or "").strip() or None


def aware(moment: datetime, zone: ZoneInfo) -> datetime:
    """A naive time is a wall-clock time in ``zone`` (operators type local times)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)


# --- text as operators type it (CLI) -----------------------------------------------------


def parse_duration(text: str, field_name: str = "duration") -> timedelta:
    """``7h``, ``4d``, ``90m``, ``1d12h``, ``1h30m``."""
    found = _DURATION.match(text.strip().lower().replace(" ", ""))
    if not text.strip() or found is None or not any(found.groupdict().values()):
        raise invalid(field_name, "wrong_type")
    parts = {k: int(v or 0) for k, v in found.groupdict().items()}
    return timedelta(days=parts["d"], hours=parts["h"], minutes=parts["m"])


def format_duration(duration: timedelta) -> str:
    """The inverse of :func:`parse_duration`: ``timedelta(hours=31)`` -> ``1d7h``."""
    minutes = int(duration.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    text = "".join(f"{n}{unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "m")) if n)
    return text or "0m"


def parse_weekday(text: str) -> int:
    """``MON``, ``mon``, ``Monday`` -> 0."""
    key = text.strip().lower()
    for index, name in enumerate(_WEEKDAY_NAMES):
        if key in (name, name[:3]):
            return index
    raise invalid("weekday", "wrong_type")


def parse_clock(text: str) -> time:
    """``00:00`` .. ``23:59`` (``7:00`` too)."""
    found = _CLOCK.match(text.strip())
    if found is None:
        raise invalid("start_time", "wrong_type")
    hour, minute = int(found["h"]), int(found["m"])
    if hour > 23 or minute > 59:
        raise invalid("start_time", "out_of_range")
    return time(hour, minute)


def format_clock(moment: time) -> str:
    return moment.strftime("%H:%M")


def parse_month_day(text: str) -> tuple[int, int]:
    """``12-31`` or ``12/31`` -> ``(12, 31)``; checked by :meth:`WindowSpec.checked`."""
    found = _MONTH_DAY.match(text.strip())
    if found is None:
        raise invalid("day", "wrong_type")
    return int(found["m"]), int(found["d"])


def parse_moment(text: str, field_name: str) -> datetime:
    """ISO 8601 (``2026-12-31T22:00``, ``2026-12-31 22:00``, with or without an offset)."""
    try:
        return datetime.fromisoformat(text.strip())
    except ValueError:
        raise invalid(field_name, "wrong_type") from None


def parse_components(values: Iterable[str]) -> tuple[Component, ...]:
    try:
        return tuple(Component(value.strip().lower()) for value in values)
    except ValueError:
        raise invalid("components", "unknown_component") from None


def from_cli(*, once: tuple[str, str] | None, weekly: tuple[str, str] | None,
             yearly: tuple[str, str] | None, duration: str | None, components: Iterable[str],
             note_ja: str | None, note_en: str | None) -> WindowSpec:
    """The spec behind ``sekisho maintenance add``: exactly one of once/weekly/yearly."""
    given = [kind for kind, value in (("once", once), ("weekly", weekly), ("yearly", yearly))
             if value is not None]
    if len(given) != 1:
        raise invalid("recurrence", "missing" if not given else "wrong_type")
    base = WindowSpec(Recurrence.ONCE, components=parse_components(components),
                      note_ja=note_ja, note_en=note_en,
                      duration=parse_duration(duration) if duration is not None else None)
    if once is not None:
        if duration is not None:
            raise invalid("duration", "wrong_type")  # a one-off window has an end instead
        return replace(base, starts_at=parse_moment(once[0], "starts_at"),
                       ends_at=parse_moment(once[1], "ends_at"))
    if weekly is not None:
        return replace(base, recurrence=Recurrence.WEEKLY, weekday=parse_weekday(weekly[0]),
                       start_time=parse_clock(weekly[1]))
    assert yearly is not None
    month, day = parse_month_day(yearly[0])
    return replace(base, recurrence=Recurrence.YEARLY, month=month, day=day,
                   start_time=parse_clock(yearly[1]))
