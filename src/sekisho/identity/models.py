"""Accounts and the identifiers that lead to them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, UniqueConstraint, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from sekisho.db import Base, BigId, UTCDateTime


class AccountStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    DORMANT = "dormant"


class Role(StrEnum):
    MEMBER = "member"
    ADMIN = "admin"


class IdentifierKind(StrEnum):
    EMAIL = "email"
    MEMBER_ID = "member_id"
    CARD = "card"
    PHONE = "phone"


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    member_id: Mapped[str] = mapped_column(String(10), unique=True)
    email: Mapped[str] = mapped_column(String(320))
    """The address as the member typed it (after NFKC and trimming), for display and mail."""
    display_name: Mapped[str | None] = mapped_column(String(100))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[AccountStatus] = mapped_column(String(16), default=AccountStatus.ACTIVE)
    role: Mapped[Role] = mapped_column(String(16), default=Role.MEMBER)
    locale: Mapped[str] = mapped_column(String(8), default="ja")
    email_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    password_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """Consecutive failed password checks across every lane since the last success."""
    password_login_disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """Set when ``failed_logins`` reaches the cap; cleared by a completed password reset."""
    new_device_notice: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    """Mail the member when a browser they never used logs in (they may turn it off)."""
    devices_reset_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """Device cookies issued before this are no longer trusted ("this wasn't me")."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    identifiers: Mapped[list[Identifier]] = relationship(
        back_populates="account", lazy="selectin", order_by="Identifier.id"
    )

    @property
    def is_verified(self) -> bool:
        return self.email_verified_at is not None

    def identifier(self, kind: IdentifierKind) -> Identifier | None:
        """The active identifier of this kind, if any."""
        return next((i for i in self.identifiers if i.kind == kind and i.active), None)


class Identifier(Base):
    """One way to name an account. ``value`` is the normalised lookup key.

    Retired identifiers (a reissued card's old number) stay, inactive, as the account's
    identifier history, and keep their value reserved so it can never lead to someone else.
    """

    __tablename__ = "identifiers"
    __table_args__ = (
        UniqueConstraint("kind", "value", name="uq_identifiers_kind_value"),
        Index("ix_identifiers_account", "account_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    kind: Mapped[IdentifierKind] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(String(320))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    account: Mapped[Account] = relationship(back_populates="identifiers")
