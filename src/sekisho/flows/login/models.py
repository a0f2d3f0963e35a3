"""A login between its password (or passkey) and its second factor."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from sekisho.db import Base, BigId, UTCDateTime


class PendingLogin(Base):
    """The second-factor stage: the first factor passed, the session is not made yet.

    The member holds the token (its SHA-256 is stored). The flow dies after its lifetime,
    after too many wrong second-factor entries, or once it made a session.
    """

    __tablename__ = "login_flows"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """What the first stage learnt and the session will need: identifier kind, whether the
    browser was known, a corrected typo, notices to show."""
