"""Second factors: authenticator apps (TOTP), passkeys, and recovery codes."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from sekisho.db import Base, BigId, UTCDateTime


class AuthenticatorKind(StrEnum):
    TOTP = "totp"
    PASSKEY = "passkey"


class Authenticator(Base):
    """One second factor a member enrolled, with the name they gave it.

    A TOTP app keeps its shared secret sealed (``secret``: it cannot be hashed, the server
    must compute codes from it) and the last accepted time step (``last_step``), so a code
    is never accepted twice. A passkey keeps its credential id, public key and counter.
    """

    __tablename__ = "authenticators"
    __table_args__ = (Index("ix_authenticators_account", "account_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    kind: Mapped[AuthenticatorKind] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(64))
    secret: Mapped[str | None] = mapped_column(String(255))
    last_step: Mapped[int | None] = mapped_column(BigInteger)
    credential_id: Mapped[str | None] = mapped_column(String(512), unique=True)
    public_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    sign_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """Unset until the first code (or the passkey's registration) proved the enrolment."""
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RecoveryCode(Base):
    """One of the member's single-use recovery codes, as a keyed hash."""

    __tablename__ = "recovery_codes"
    __table_args__ = (UniqueConstraint("account_id", "code_hash", name="uq_recovery_codes"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WebAuthnChallenge(Base):
    """A WebAuthn challenge handed to a browser, usable once before it expires.

    Only its SHA-256 is kept: the browser signs the challenge into ``clientDataJSON``, and
    the server checks that what comes back is one it issued, for this purpose (and account),
    and not used yet. A passwordless login's challenge belongs to no account yet.
    """

    __tablename__ = "webauthn_challenges"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    challenge_hash: Mapped[str] = mapped_column(String(64), unique=True)
    purpose: Mapped[str] = mapped_column(String(16))
    account_id: Mapped[int | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
