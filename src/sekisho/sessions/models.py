"""The session table."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from sekisho.db import Base, BigId, UTCDateTime


class Session(Base):
    """One signed-in browser or app. Only the SHA-256 of the token is stored (ASVS 7.2.3)."""

    __tablename__ = "sessions"
    __table_args__ = (Index("ix_sessions_account_active", "account_id", "ended_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    authenticated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    """Last time the member proved who they are in this session (for step-up)."""
    second_factor_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """Last time the member used a second factor (or a passkey) in this session: two
    factors for relying parties asking ``acr_values`` of them."""
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    """Absolute end of life; the idle end is ``last_seen_at`` + idle timeout."""
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    end_reason: Mapped[str | None] = mapped_column(String(32))
    ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(512))
    device_id: Mapped[str | None] = mapped_column(String(64))
