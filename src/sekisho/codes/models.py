"""The challenge table: a code and a link issued together, used at most once."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from sekisho.db import Base, BigId, UTCDateTime


class Purpose(StrEnum):
    EMAIL_VERIFICATION = "email_verification"
    PASSWORD_RESET = "password_reset"
    UNLOCK = "unlock"
    EMAIL_CHANGE = "email_change"
    """A code to the new address; the challenge's ``target`` is that address."""
    PHONE_VERIFY = "phone_verify"
    """A code by SMS to a number being added; ``target`` is the number in E.164."""
    CONTACT_REVERT = "contact_revert"
    LOGIN_CODE = "login_code"
    """An SMS code as the second factor of a login."""
    NOT_ME = "not_me"
    """"This wasn't me" in a new-device notice: locks everyone out until a password reset."""
    """"This wasn't me" after an email or phone change; ``target`` names what to restore
    (``email:<old address>``, ``phone:<old E.164>`` or ``phone:`` when a number was added)."""


class Challenge(Base):
    """A code and a link sent together. Both are stored as keyed hashes only.

    A newer challenge for the same account and purpose supersedes this one
    (``superseded_at``); only the newest is ever accepted.
    """

    __tablename__ = "challenges"
    __table_args__ = (Index("ix_challenges_account_purpose", "account_id", "purpose"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    purpose: Mapped[Purpose] = mapped_column(String(32))
    target: Mapped[str] = mapped_column(String(320))
    """Where it was sent (the email address), so a change of address invalidates it."""
    code_hash: Mapped[str] = mapped_column(String(64))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    superseded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    """Carried over to the next challenge on resend: resending never restores attempts
    (NIST SP 800-63B §3.1.3.2)."""
