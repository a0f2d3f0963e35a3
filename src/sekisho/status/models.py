"""Incidents shown on ``/status``: what went wrong, for which components, and how it went.

```mermaid
stateDiagram-v2
    [*] --> investigating: open
    investigating --> identified: update
    identified --> monitoring: update
    monitoring --> identified: update (the fix did not hold)
    investigating --> resolved: resolve
    identified --> resolved: resolve
    monitoring --> resolved: resolve
    resolved --> [*]
```

Any open state may follow any other (an update may also repeat the state, as a plain progress
note); ``resolved`` is final: a problem that comes back is a new incident, so the history of
the first one stays true.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from sekisho.db import Base, BigId, UTCDateTime


class IncidentState(StrEnum):
    INVESTIGATING = "investigating"
    IDENTIFIED = "identified"
    MONITORING = "monitoring"
    RESOLVED = "resolved"

    @property
    def is_open(self) -> bool:
        return self is not IncidentState.RESOLVED


class Impact(StrEnum):
    """How an open incident shows its components (the worst open incident wins)."""

    DEGRADED = "degraded"
    OUTAGE = "outage"


class Incident(Base):
    __tablename__ = "incidents"
    __table_args__ = (Index("ix_incidents_resolved_at", "resolved_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    state: Mapped[IncidentState] = mapped_column(String(16))
    impact: Mapped[Impact] = mapped_column(String(16))
    components: Mapped[list[str]] = mapped_column(JSON, default=list)
    """:class:`sekisho.status.components.Component` values; never empty."""
    title_ja: Mapped[str] = mapped_column(String(200))
    title_en: Mapped[str] = mapped_column(String(200))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    updates: Mapped[list[IncidentUpdate]] = relationship(
        back_populates="incident", lazy="selectin", cascade="all, delete-orphan",
        order_by="desc(IncidentUpdate.id)",
    )
    """Newest first, as the page shows them."""

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None


class IncidentUpdate(Base):
    """One timestamped note, in both languages, with the state it moved the incident to."""

    __tablename__ = "incident_updates"
    __table_args__ = (Index("ix_incident_updates_incident", "incident_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    state: Mapped[IncidentState] = mapped_column(String(16))
    body_ja: Mapped[str] = mapped_column(Text)
    body_en: Mapped[str] = mapped_column(Text)
    posted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    posted_by: Mapped[int | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="SET NULL"))
    """The staff account that posted it through the admin API; ``None`` from the CLI.
    Shown to staff only, never on the public page."""

    incident: Mapped[Incident] = relationship(back_populates="updates")
