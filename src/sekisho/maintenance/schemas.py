"""JSON bodies of the admin maintenance API."""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field

from sekisho.maintenance.models import Recurrence
from sekisho.maintenance.spec import (
    NOTE_MAX_CHARS,
    WindowSpec,
    parse_clock,
    parse_components,
    parse_weekday,
)


class WindowIn(BaseModel):
    """``once``: ``starts_at``, ``ends_at`` (ISO 8601; without an offset, in the maintenance
    time zone). ``weekly``: ``weekday`` (``mon``..``sun``), ``start_time`` (``HH:MM``),
    ``duration_minutes``. ``yearly``: ``month``, ``day``, ``start_time``,
    ``duration_minutes``. ``components`` empty or absent: the whole service."""

    model_config = ConfigDict(extra="forbid")

    recurrence: Recurrence
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    weekday: str | None = Field(default=None, max_length=9)
    month: int | None = None
    day: int | None = None
    start_time: str | None = Field(default=None, max_length=5)
    duration_minutes: int | None = Field(default=None, ge=0, le=366 * 24 * 60)
    components: list[str] = Field(default_factory=list, max_length=16)
    note_ja: str | None = Field(default=None, max_length=NOTE_MAX_CHARS)
    note_en: str | None = Field(default=None, max_length=NOTE_MAX_CHARS)

    def spec(self) -> WindowSpec:
        """The same spec the CLI builds; :meth:`WindowSpec.checked` validates it."""
        return WindowSpec(
            self.recurrence, starts_at=self.starts_at, ends_at=self.ends_at,
            weekday=parse_weekday(self.weekday) if self.weekday is not None else None,
            month=self.month, day=self.day,
            start_time=parse_clock(self.start_time) if self.start_time is not None else None,
            duration=timedelta(minutes=self.duration_minutes)
            if self.duration_minutes is not None else None,
            components=parse_components(self.components),
            note_ja=self.note_ja, note_en=self.note_en)
