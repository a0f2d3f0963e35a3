"""Injected time and randomness, so expiry and lockout are tested without sleeping."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Protocol

# Readable reference alphabet: no 0/O, no 1/l/I, upper case only.
REFERENCE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    """Wall-clock time in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class FrozenClock:
    """A clock that moves only when told to (tests)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 5, 3, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float = 0, **kwargs: float) -> None:
        self._now += timedelta(seconds=seconds, **kwargs)

    def set(self, moment: datetime) -> None:
        self._now = moment


class TokenSource:
    """Every random value sekisho hands out comes from here (CSPRNG by default)."""

    def token(self, nbytes: int = 32) -> str:
        """An opaque URL-safe token; 32 bytes = 256 bits (ASVS 7.2.3 asks for >= 128)."""
        return secrets.token_urlsafe(nbytes)

    def digits(self, length: int) -> str:
        return _draw("0123456789", length)

    def member_id(self) -> str:
        """10 digits, never starting with 0, so it cannot be mistaken for a phone number."""
        return secrets.choice("123456789") + self.digits(9)

    def reference(self) -> str:
        """Support reference like ``R-7K3M-Q9TA`` (31^8, about 39 bits)."""
        chars = _draw(REFERENCE_ALPHABET, 8)
        return f"R-{chars[:4]}-{chars[4:]}"


def _draw(alphabet: str, length: int) -> str:
    """``length`` characters drawn uniformly and independently from ``alphabet``, from one
    random number: a draw per character cost a getrandom() system call each."""
    number, chars = secrets.randbelow(len(alphabet) ** length), []
    for _ in range(length):
        number, index = divmod(number, len(alphabet))
        chars.append(alphabet[index])
    return "".join(chars)


def as_utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; treat them as the UTC we stored."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def normalise_reference(text: str) -> str:
    """Accept a reference as a person reads it out: any case, spaces, hyphens, optional R."""
    cleaned = "".join(ch for ch in text.upper() if ch.isalnum())
    if cleaned.startswith("R") and len(cleaned) == 9:
        cleaned = cleaned[1:]
    return f"R-{cleaned[:4]}-{cleaned[4:]}" if len(cleaned) == 8 else text
