"""The OpenID Connect provider's tables: clients, links (consents), codes, tokens, keys."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from sekisho.db import Base, BigId, UTCDateTime


class OAuthClient(Base):
    """A relying party. Confidential clients hold a secret, of which only the SHA-256 is
    kept (it carries 256 random bits, like session tokens); public clients (mobile apps)
    have none. Every client uses PKCE with S256."""

    __tablename__ = "oauth_clients"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    secret_hash: Mapped[str | None] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(100))
    redirect_uris: Mapped[list[str]] = mapped_column(JSON)
    """Matched exactly, character for character (RFC 9700 §4.1.3)."""
    post_logout_redirect_uris: Mapped[list[str]] = mapped_column(JSON)
    scopes: Mapped[list[str]] = mapped_column(JSON)
    """The scopes this client may ask for."""
    first_party: Mapped[bool] = mapped_column(Boolean, default=False)
    """The operator's own apps: no consent page (the member already trusts them)."""
    token_endpoint_auth_method: Mapped[str] = mapped_column(String(32))
    id_token_signed_response_alg: Mapped[str] = mapped_column(String(8), default="RS256")
    backchannel_logout_uri: Mapped[str | None] = mapped_column(String(500))
    min_app_version: Mapped[str | None] = mapped_column(String(32))
    """Apps older than this (``app_version`` on the authorization request) are asked to
    update instead of signing in."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class OAuthLink(Base):
    """A member's link to a client: the scopes they consented to (or that a first-party
    client received), since when, and when it was last used. Unlinking ends it and every
    token issued under it; the next sign-in asks for consent again."""

    __tablename__ = "oauth_links"
    __table_args__ = (Index("ix_oauth_links_account", "account_id", "client_id", "revoked_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    client_id: Mapped[str] = mapped_column(ForeignKey("oauth_clients.client_id",
                                                      ondelete="CASCADE"))
    scopes: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class OAuthCode(Base):
    """An authorization code: single use, short-lived, bound to the client, the redirect
    URI, the PKCE challenge and the sekisho session it was issued in."""

    __tablename__ = "oauth_codes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    family: Mapped[str] = mapped_column(String(32))
    """The tokens this code is exchanged for, and their refreshes."""
    client_id: Mapped[str] = mapped_column(String(64))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    link_id: Mapped[int] = mapped_column(ForeignKey("oauth_links.id", ondelete="CASCADE"))
    session_id: Mapped[int | None] = mapped_column(BigId)
    redirect_uri: Mapped[str] = mapped_column(String(500))
    scope: Mapped[str] = mapped_column(String(500))
    nonce: Mapped[str | None] = mapped_column(String(255))
    code_challenge: Mapped[str | None] = mapped_column(String(128))
    code_challenge_method: Mapped[str | None] = mapped_column(String(8))
    auth_time: Mapped[datetime] = mapped_column(UTCDateTime)
    acr: Mapped[str | None] = mapped_column(String(64))
    amr: Mapped[list[str]] = mapped_column(JSON)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class OAuthToken(Base):
    """One issue of an access token and (optionally) a refresh token, as SHA-256 hashes.

    Every refresh token descends from one code: they share a ``family``. Using a refresh
    token marks it ``rotated_at``; presenting it again is reuse, and revokes the family
    (RFC 9700 §4.14.2)."""

    __tablename__ = "oauth_tokens"
    __table_args__ = (Index("ix_oauth_tokens_family", "family"),
                      Index("ix_oauth_tokens_link", "link_id", "revoked_at"),
                      Index("ix_oauth_tokens_session", "session_id"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    family: Mapped[str] = mapped_column(String(32))
    client_id: Mapped[str] = mapped_column(String(64))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    link_id: Mapped[int] = mapped_column(ForeignKey("oauth_links.id", ondelete="CASCADE"))
    session_id: Mapped[int | None] = mapped_column(BigId)
    """The sekisho session the family began in (``sid`` in ID and logout tokens)."""
    scope: Mapped[str] = mapped_column(String(500))
    access_token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    refresh_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    access_expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    refresh_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    family_expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    """No refresh token of the family outlives this, however often it is rotated."""
    auth_time: Mapped[datetime] = mapped_column(UTCDateTime)
    rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoke_reason: Mapped[str | None] = mapped_column(String(32))


class SigningKey(Base):
    """A key pair that signs ID and logout tokens. Published in the JWKS from
    ``created_at``, signs from ``signs_from`` (later, so relying parties have fetched it
    first), and stays published until ``retire_after`` (the last token it signed has
    expired by then)."""

    __tablename__ = "oidc_signing_keys"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kid: Mapped[str] = mapped_column(String(64), unique=True)
    alg: Mapped[str] = mapped_column(String(8))
    private_jwk: Mapped[str] = mapped_column(Text)
    """The private key as a JWK, sealed with AES-GCM under a key derived from the secret."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    signs_from: Mapped[datetime] = mapped_column(UTCDateTime)
    superseded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    retire_after: Mapped[datetime | None] = mapped_column(UTCDateTime)
