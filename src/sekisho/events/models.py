"""Auth events. Lockout, login history and support all read this table."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from sekisho.db import Base, BigId, UTCDateTime


class EventKind(StrEnum):
    """Every kind of event sekisho records (one table, referenced by name)."""

    REGISTRATION = "registration"
    VERIFICATION = "verification"
    VERIFICATION_RESEND = "verification_resend"
    LOGIN = "login"
    LOGOUT = "logout"
    UNLOCK = "unlock"
    PASSWORD_CHANGE = "password_change"
    RECOVERY_REQUEST = "recovery_request"
    RECOVERY_COMPLETE = "recovery_complete"
    ID_REMINDER = "id_reminder"
    REAUTHENTICATION = "reauthentication"
    EMAIL_CHANGE = "email_change"
    PHONE_CHANGE = "phone_change"
    PHONE_RELEASED = "phone_released"
    CONTACT_REVERT = "contact_revert"
    SECOND_FACTOR = "second_factor"
    NEW_DEVICE_NOTICE = "new_device_notice"
    NOT_ME = "not_me"
    NOTICE_SETTINGS = "notice_settings"
    REQUEST_REJECTED = "request_rejected"
    ACCOUNT_ADMIN = "account_admin"
    MAINTENANCE = "maintenance"
    """A maintenance window added or removed (``detail.action``, ``detail.by``)."""
    LINKED_SERVICE = "linked_service"
    """A relying party linked, unlinked, or its refresh token reused (``detail.action``,
    ``detail.client_id``)."""


OK = "ok"


class AuthEvent(Base):
    __tablename__ = "auth_events"
    __table_args__ = (
        Index("ix_auth_events_account_time", "account_id", "occurred_at"),
        Index("ix_auth_events_identifier_time", "identifier_hash", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    kind: Mapped[EventKind] = mapped_column(String(32))
    outcome: Mapped[str] = mapped_column(String(64))
    """``ok`` or the catalogue error code the person was shown."""
    account_id: Mapped[int | None] = mapped_column(BigId)
    """No foreign key: the log outlives the rows it talks about."""
    identifier_hash: Mapped[str | None] = mapped_column(String(64))
    """Keyed HMAC of the normalised identifier: lets support match attempts without storing it."""
    ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(512))
    device_id: Mapped[str | None] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(64))
    reference: Mapped[str] = mapped_column(String(16), index=True)
    """Not unique by constraint: 31^8 values make a clash rare, and a lookup lists all matches."""
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
