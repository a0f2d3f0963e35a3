"""Passes and tickets: the signed values the waiting room keeps in one cookie.

``p.<slot>.<exp>.<sig>``
    A pass: lets its holder through guarded paths until ``exp`` (epoch seconds). ``slot``
    names the capacity slot it holds (released when the login succeeds); a staff pass
    (``s.-.<exp>.<sig>``) holds none.
``t.<generation>.<number>.<reference>.<exp>.<sig>``
    A ticket: the place in the queue (``number``, by first arrival) of a room
    ``generation`` (a fresh in-process room must not honour numbers of a previous one),
    and the support reference shown on every answer while waiting.

``sig`` is HMAC-SHA256 (truncated to 128 bits, as RFC 2104 §5 allows) under a key derived
for this purpose alone from the server secret, as :mod:`sekisho.guard.devices` derives its
own. A plain HMAC rather than a JWT: checking a pass is the whole cost of a guarded request
when the room is not full, and this check takes about a microsecond.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

_MAX_LENGTH = 200
_SIGNATURE_BYTES = 16


@dataclass(frozen=True, slots=True)
class Pass:
    slot: str | None
    """The capacity slot it holds; None for a staff pass."""
    expires_at: int


@dataclass(frozen=True, slots=True)
class Ticket:
    generation: str
    number: int
    reference: str
    expires_at: int


class RoomTokens:
    """Signs and checks passes and tickets; ``now`` is always passed in (epoch seconds)."""

    def __init__(self, secret: bytes) -> None:
        self._key = hmac.new(secret, b"waiting-room", hashlib.sha256).digest()

    def issue_pass(self, slot: str | None, expires_at: float) -> str:
        return self._sign(f"{'p' if slot else 's'}.{slot or '-'}.{int(expires_at)}")

    def issue_ticket(self, generation: str, number: int, reference: str,
                     expires_at: float) -> str:
        return self._sign(f"t.{generation}.{number}.{reference}.{int(expires_at)}")

    def read(self, value: str | None, now: float) -> Pass | Ticket | None:
        """The pass or ticket ``value`` carries if it is genuine and unexpired; else None."""
        if not value or len(value) > _MAX_LENGTH:
            return None
        body, _, signature = value.rpartition(".")
        if not body or not hmac.compare_digest(signature, self._signature(body)):
            return None
        parts = body.split(".")
        try:
            expires_at = int(parts[-1])
            if expires_at <= now:
                return None
            if parts[0] in ("p", "s") and len(parts) == 3:
                return Pass(parts[1] if parts[0] == "p" else None, expires_at)
            if parts[0] == "t" and len(parts) == 5:
                return Ticket(parts[1], int(parts[2]), parts[3], expires_at)
        except ValueError:
            return None
        return None

    def _sign(self, body: str) -> str:
        return f"{body}.{self._signature(body)}"

    def _signature(self, body: str) -> str:
        digest = hmac.new(self._key, body.encode(), hashlib.sha256).digest()[:_SIGNATURE_BYTES]
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
