"""Signing keys for ID and logout tokens, with rotation that never breaks a relying party.

A new key is published in the JWKS ``oidc_key_publish_lead_seconds`` before it signs; the
key it replaces stays published until every token it signed has expired. RS256 and ES256
keys rotate together. Private keys are stored as JWKs sealed with AES-GCM.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
from datetime import datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from joserfc.jwk import ECKey, KeySet, RSAKey
from sqlalchemy import Connection, insert, or_, select, update

from sekisho.clock import Clock
from sekisho.oidc.models import SigningKey
from sekisho.settings import Settings

log = logging.getLogger("sekisho.oidc")
ALGORITHMS = ("RS256", "ES256")
RSA_BITS = 2048
"""NIST SP 800-57 Part 1 Table 2: 112-bit strength, good beyond 2030 for signatures whose
life is minutes."""
LOGOUT_TOKEN_SECONDS = 2 * 60
"""A back-channel logout token's life: delivered within the outbox's first retries;
relying parties check ``iat`` and ``jti`` rather than a long life."""
_NONCE_BYTES = 12
SigningJwk = RSAKey | ECKey


def _generate(alg: str, kid: str) -> SigningJwk:
    parameters = {"kid": kid, "alg": alg, "use": "sig"}
    if alg == "RS256":
        return RSAKey.generate_key(RSA_BITS, parameters=parameters, private=True)
    return ECKey.generate_key("P-256", parameters=parameters, private=True)


class KeyRing:
    def __init__(self, secret_key: bytes, clock: Clock, *, token_lifetime_seconds: int) -> None:
        self._aead = AESGCM(hmac.new(secret_key, b"oidc-signing-keys", hashlib.sha256).digest())
        self._clock = clock
        self._keep = timedelta(seconds=token_lifetime_seconds + 60)
        self._opened: dict[str, SigningJwk] = {}

    @classmethod
    def from_settings(cls, settings: Settings, clock: Clock) -> KeyRing:
        """Retired keys stay published as long as the longest-lived token they signed."""
        return cls(settings.resolved_secret_key(), clock, token_lifetime_seconds=max(
            settings.oidc_id_token_lifetime_seconds, LOGOUT_TOKEN_SECONDS))

    def signing_key(self, conn: Connection, alg: str) -> SigningJwk:
        """The key that signs with ``alg`` now: the newest whose time has come. The very
        first is made on demand, as is a new one when none can be opened (the secret key
        was changed)."""
        now = self._clock.now()
        table = SigningKey.__table__
        rows = conn.execute(
            select(table.c.kid, table.c.private_jwk)
            .where(table.c.alg == alg, table.c.signs_from <= now)
            .order_by(table.c.signs_from.desc(), table.c.id.desc()))
        for row in rows:
            if (key := self._open(row.kid, row.private_jwk)) is not None:
                return key
        return self._add(conn, alg, now)

    def published(self, conn: Connection) -> KeySet:
        """Every key a relying party may meet: the signing ones, the ones about to sign,
        and retired ones whose tokens may still be alive."""
        table = SigningKey.__table__
        now = self._clock.now()
        rows = conn.execute(
            select(table.c.kid, table.c.private_jwk)
            .where(or_(table.c.retire_after.is_(None), table.c.retire_after > now))
            .order_by(table.c.id)).all()
        opened = (self._open(row.kid, row.private_jwk) for row in rows)
        return KeySet([key for key in opened if key is not None])

    def jwks(self, conn: Connection) -> dict[str, Any]:
        self.ensure(conn)
        return self.published(conn).as_dict(private=False)

    def ensure(self, conn: Connection) -> None:
        for alg in ALGORITHMS:
            self.signing_key(conn, alg)

    def rotate(self, conn: Connection, lead_seconds: int, *, retire_old: bool = False
               ) -> list[str]:
        """New keys for every algorithm, signing after ``lead_seconds``; the keys they
        replace stop signing then and leave the JWKS once their last tokens expire, or at
        once with ``retire_old`` (a leaked key: its tokens must stop being trusted)."""
        self.ensure(conn)
        now = self._clock.now()
        starts = now + timedelta(seconds=lead_seconds)
        table = SigningKey.__table__
        conn.execute(update(table).where(table.c.superseded_at.is_(None)).values(
            superseded_at=starts, retire_after=now if retire_old else starts + self._keep))
        return [self._add(conn, alg, starts).kid for alg in ALGORITHMS]

    def listing(self, conn: Connection) -> list[dict[str, Any]]:
        table = SigningKey.__table__
        rows = conn.execute(select(table.c.kid, table.c.alg, table.c.created_at,
                                   table.c.signs_from, table.c.superseded_at,
                                   table.c.retire_after).order_by(table.c.id)).mappings()
        return [dict(row) for row in rows]

    def _add(self, conn: Connection, alg: str, signs_from: datetime) -> SigningJwk:
        kid = secrets.token_urlsafe(12)
        key = _generate(alg, kid)
        conn.execute(insert(SigningKey.__table__).values(
            kid=kid, alg=alg, private_jwk=self._seal(key), created_at=self._clock.now(),
            signs_from=signs_from))
        self._opened[kid] = key
        return key

    def _seal(self, key: SigningJwk) -> str:
        nonce = secrets.token_bytes(_NONCE_BYTES)
        plain = json.dumps(key.as_dict(private=True)).encode()
        return base64.urlsafe_b64encode(nonce + self._aead.encrypt(nonce, plain, None)).decode()

    def _open(self, kid: str, sealed: str) -> SigningJwk | None:
        """The key, or None if it was sealed under another secret key: it can sign nothing
        any more, and tokens it signed cannot be checked here either."""
        key = self._opened.get(kid)
        if key is None:
            raw = base64.urlsafe_b64decode(sealed)
            try:
                plain = self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], None)
            except InvalidTag:
                log.warning("signing key %s was sealed under another secret key; skipped", kid)
                return None
            data = json.loads(plain)
            key = RSAKey.import_key(data) if data["kty"] == "RSA" else ECKey.import_key(data)
            self._opened[kid] = key
        return key
