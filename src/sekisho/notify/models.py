"""The outbox table (transactional outbox pattern)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from sekisho.db import Base, BigId, UTCDateTime


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    LOGOUT = "logout"
    """OpenID Back-Channel Logout notices to relying parties (``body_text`` is the token)."""


MEMBER_CHANNELS = (Channel.EMAIL, Channel.SMS)
"""The channels members wait on: their delivery health shows on ``/status``. A relying
party's logout endpoint failing is that party's problem, not a delay members meet."""


class DeliveryState(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    """Gave up after ``outbox_max_attempts``; kept for support to see."""


class OutboxMessage(Base):
    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    channel: Mapped[Channel] = mapped_column(String(8))
    recipient: Mapped[str] = mapped_column(String(320))
    template: Mapped[str] = mapped_column(String(64))
    locale: Mapped[str] = mapped_column(String(8))
    account_id: Mapped[int | None] = mapped_column(BigId)
    subject: Mapped[str | None] = mapped_column(String(255))
    body_text: Mapped[str | None] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    state: Mapped[DeliveryState] = mapped_column(String(8), default=DeliveryState.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
