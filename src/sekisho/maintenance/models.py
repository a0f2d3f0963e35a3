"""Planned maintenance windows: one-off, weekly, or yearly, in the operator's time zone."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from sekisho.db import Base, BigId, UTCDateTime


class Recurrence(StrEnum):
    ONCE = "once"
    """``starts_at`` to ``ends_at`` (UTC instants)."""
    WEEKLY = "weekly"
    """Every ``weekday`` (0 = Monday) at ``start_time`` for ``duration_minutes``."""
    YEARLY = "yearly"
    """Every year on ``month``/``day`` at ``start_time`` for ``duration_minutes``."""


class MaintenanceWindow(Base):
    """A window during which some components (``components``; empty = all) are down on
    purpose. Recurring windows are read in ``maintenance_timezone`` and may run past midnight
    or into the new year: they are a start and a duration, not a start and an end time."""

    __tablename__ = "maintenance_windows"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    recurrence: Mapped[Recurrence] = mapped_column(String(8))
    starts_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    weekday: Mapped[int | None] = mapped_column(Integer)
    month: Mapped[int | None] = mapped_column(Integer)
    day: Mapped[int | None] = mapped_column(Integer)
    start_time: Mapped[str | None] = mapped_column(String(5))
    """``HH:MM`` in the maintenance time zone, for recurring windows."""
    duration_minutes: Mapped[int | None] = mapped_column(Integer)
    components: Mapped[list[str]] = mapped_column(JSON, default=list)
    note_ja: Mapped[str | None] = mapped_column(String(200))
    note_en: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
