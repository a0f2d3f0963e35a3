"""Device cookies: a browser that has logged in to an account is known to that account.

Issued fresh at every successful login (and by the "unlock this browser" link), the cookie is
a JWT (joserfc, HS256) with ``sub`` = the account id, ``jti`` = a random nonce and
``aud`` = ``sekisho-device``, signed with a key derived for this purpose alone, so it can never
pass for any other token sekisho signs. It proves nothing by itself: it only chooses which
lockout lane a login attempt is counted in.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey

from sekisho.clock import Clock, TokenSource

AUDIENCE = "sekisho-device"
_ALGORITHMS = ["HS256"]


@dataclass(frozen=True, slots=True)
class DeviceCookie:
    account_id: int
    nonce: str


class DeviceCookies:
    def __init__(self, secret: bytes, clock: Clock, tokens: TokenSource,
                 lifetime_seconds: int) -> None:
        self._key = OctKey.import_key(hmac.new(secret, b"device-cookies", hashlib.sha256).digest())
        self._clock = clock
        self._tokens = tokens
        self.lifetime_seconds = lifetime_seconds

    def issue(self, account_id: int) -> str:
        now = int(self._clock.now().timestamp())
        claims = {"sub": str(account_id), "jti": self._tokens.token(16), "aud": AUDIENCE,
                  "iat": now, "exp": now + self.lifetime_seconds}
        return jwt.encode({"alg": "HS256"}, claims, self._key)

    def read(self, value: str | None, account_id: int | None,
             not_before: datetime | None = None) -> DeviceCookie | None:
        """The cookie if it is genuine, unexpired, bound to ``account_id`` and issued at or
        after ``not_before`` (the account forgot its devices then); else None."""
        if not value or account_id is None or len(value) > 1024:
            return None
        registry = jwt.JWTClaimsRegistry(
            now=lambda: int(self._clock.now().timestamp()),
            aud={"essential": True, "value": AUDIENCE}, sub={"essential": True},
            jti={"essential": True}, exp={"essential": True})
        try:
            token = jwt.decode(value, self._key, algorithms=_ALGORITHMS)
            registry.validate(token.claims)
        except (JoseError, ValueError):
            return None
        if token.claims["sub"] != str(account_id):
            return None
        # At or before: cookies carry whole seconds, and one issued in the second the
        # devices were forgotten may predate it.
        issued = int(token.claims.get("iat", 0))
        if not_before is not None and issued <= int(not_before.timestamp()):
            return None
        return DeviceCookie(account_id, str(token.claims["jti"]))
