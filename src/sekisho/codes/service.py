"""Issuing and redeeming one-time codes and links.

Rules (NIST SP 800-63B §5.1.3, ASVS 6.5): codes come from the CSPRNG, are stored as keyed
hashes and compared in constant time, are single use, expire, allow a few wrong entries,
and a newer one supersedes the older one. Resending never restores spent attempts.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from sekisho.clock import Clock, TokenSource
from sekisho.codes.models import Challenge, Purpose
from sekisho.errors import SekishoError
from sekisho.identity.models import Account
from sekisho.settings import Settings


@dataclass(frozen=True, slots=True)
class Issued:
    challenge: Challenge
    code: str
    token: str


@dataclass(frozen=True, slots=True)
class CodeCheck:
    """The outcome of entering a code. Failures are returned, not raised, so that the
    caller can commit the spent attempt before it reports the error."""

    challenge: Challenge | None
    error: SekishoError | None = None


class ChallengeService:
    def __init__(self, settings: Settings, clock: Clock, tokens: TokenSource,
                 secret: bytes) -> None:
        self._settings = settings
        self._clock = clock
        self._tokens = tokens
        self._key = hmac.new(secret, b"one-time-codes", hashlib.sha256).digest()

    def _hash(self, kind: str, value: str) -> str:
        return hmac.new(self._key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()

    async def latest(self, db: AsyncSession, account_id: int, purpose: Purpose, *,
                     for_issue: bool = False) -> Challenge | None:
        """The newest challenge. With ``for_issue``, first take the account's row lock.

        Deciding to send (cool-down) and issuing must happen under that lock: otherwise two
        concurrent requests both see "nothing sent recently" and both send, leaving two live
        links. SQLite already serialises writers (``BEGIN IMMEDIATE``); PostgreSQL needs it.
        """
        if for_issue:
            await db.execute(select(Account.id).where(Account.id == account_id)
                             .with_for_update())
        return await db.scalar(
            select(Challenge).where(Challenge.account_id == account_id,
                                    Challenge.purpose == purpose)
            .order_by(Challenge.id.desc()).limit(1)
        )

    def resend_wait(self, latest: Challenge | None) -> int:
        """Seconds until another code may be sent (0 when it may be sent now)."""
        if latest is None:
            return 0
        ready = latest.created_at + timedelta(seconds=self._settings.code_resend_cooldown_seconds)
        return max(0, int((ready - self._clock.now()).total_seconds() + 0.999))

    async def issue(self, db: AsyncSession, *, account_id: int, purpose: Purpose, target: str,
                    lifetime_seconds: int, supersede: bool = True) -> Issued:
        """A new code and link; every earlier one for this account and purpose is superseded
        (unless ``supersede`` is off: each "this wasn't me" link must keep working).

        The failure count of the newest unexpired predecessor carries over: asking for a new
        code must not buy an attacker a fresh set of guesses.
        """
        now = self._clock.now()
        previous = await self.latest(db, account_id, purpose, for_issue=True)
        carried = 0
        if previous is not None and previous.used_at is None and previous.expires_at > now:
            carried = previous.failed_attempts
        if supersede:
            await self.supersede(db, account_id, purpose)
        code, token, row = self._new(account_id, purpose, target, lifetime_seconds)
        challenge = Challenge(**row,
                              failed_attempts=min(carried, self._settings.code_max_attempts - 1))
        db.add(challenge)
        await db.flush()
        return Issued(challenge, code, token)

    def link_values(self, *, account_id: int, purpose: Purpose, target: str,
                    lifetime_seconds: int) -> tuple[str, dict[str, Any]]:
        """A link that supersedes nothing (each "this wasn't me" link must keep working), as
        the columns of a Core ``INSERT`` for the hot paths: the token and the row."""
        _, token, row = self._new(account_id, purpose, target, lifetime_seconds)
        return token, {**row, "failed_attempts": 0}

    def _new(self, account_id: int, purpose: Purpose, target: str,
             lifetime_seconds: int) -> tuple[str, str, dict[str, Any]]:
        now = self._clock.now()
        code = self._tokens.digits(self._settings.code_length)
        token = self._tokens.token(32)
        return code, token, {
            "account_id": account_id, "purpose": purpose, "target": target,
            "code_hash": self._hash("code", code), "token_hash": self._hash("token", token),
            "created_at": now, "expires_at": now + timedelta(seconds=lifetime_seconds)}

    async def supersede(self, db: AsyncSession, account_id: int, purpose: Purpose) -> None:
        """Retire every unused code and link of this account and purpose."""
        await db.execute(
            update(Challenge).where(Challenge.account_id == account_id,
                                    Challenge.purpose == purpose,
                                    Challenge.superseded_at.is_(None),
                                    Challenge.used_at.is_(None))
            .values(superseded_at=self._clock.now())
        )

    async def redeem_token(self, db: AsyncSession, purpose: Purpose, token: str) -> Challenge:
        """Use a link. Raises ``link.used``, ``link.superseded`` or ``link.expired``."""
        challenge = await self.usable_link(db, purpose, token)
        await self._consume(db, challenge, link=True)
        return challenge

    async def find_link(self, db: AsyncSession, purpose: Purpose, token: str) -> Challenge | None:
        """The challenge behind a link, whatever its state (used, expired, superseded)."""
        return await db.scalar(select(Challenge).where(
            Challenge.token_hash == self._hash("token", token), Challenge.purpose == purpose))

    async def usable_link(self, db: AsyncSession, purpose: Purpose, token: str) -> Challenge:
        """The link's challenge if it could be used now, without using it; else raises
        like :meth:`redeem_token`."""
        challenge = await self.find_link(db, purpose, token)
        if challenge is None:
            raise SekishoError("link.expired", field="token")
        self._raise_if_unusable(challenge, link=True, newest=await self._newest_sent(db, challenge))
        return challenge

    async def check_code(self, db: AsyncSession, *, account_id: int | None, purpose: Purpose,
                         code: str) -> CodeCheck:
        """Enter a code for the account's newest challenge of this purpose."""
        challenge = None
        if account_id is not None:
            challenge = await self.latest(db, account_id, purpose)
        if challenge is None:
            # Unknown account: the same answer as a wrong code, so codes reveal nothing.
            return CodeCheck(None, self._invalid(self._settings.code_max_attempts - 1))
        try:
            self._raise_if_unusable(challenge, link=False, newest=None)
        except SekishoError as error:
            return CodeCheck(challenge, error)
        if not hmac.compare_digest(challenge.code_hash, self._hash("code", code)):
            # Incremented in the database, not in Python: concurrent wrong guesses all count.
            spent = await db.scalar(
                update(Challenge).where(Challenge.id == challenge.id)
                .values(failed_attempts=Challenge.failed_attempts + 1)
                .returning(Challenge.failed_attempts)
                .execution_options(synchronize_session=False))
            left = self._settings.code_max_attempts - int(spent or 0)
            if left <= 0:
                return CodeCheck(challenge, SekishoError("code.too_many_attempts", field="code"))
            return CodeCheck(challenge, self._invalid(left))
        try:
            await self._consume(db, challenge, link=False)
        except SekishoError as error:
            return CodeCheck(challenge, error)
        return CodeCheck(challenge)

    def _invalid(self, left: int) -> SekishoError:
        return SekishoError("code.invalid", field="code", params={"attempts_left": left},
                            extra={"attempts_left": left})

    async def _newest_sent(self, db: AsyncSession, challenge: Challenge) -> datetime | None:
        if challenge.superseded_at is None:
            return None
        newest = await self.latest(db, challenge.account_id, challenge.purpose)
        return newest.created_at if newest else None

    def _raise_if_unusable(self, challenge: Challenge, *, link: bool,
                           newest: datetime | None) -> None:
        field = "token" if link else "code"
        if challenge.used_at is not None:
            raise SekishoError("link.used" if link else "code.expired", field=field)
        if challenge.superseded_at is not None:
            if link:
                raise SekishoError("link.superseded", field=field,
                                   params={"newest_sent_at": newest},
                                   extra={"newest_sent_at": newest.isoformat() if newest else None})
            raise SekishoError("code.expired", field=field)
        if challenge.expires_at <= self._clock.now():
            raise SekishoError("link.expired" if link else "code.expired", field=field)
        if challenge.failed_attempts >= self._settings.code_max_attempts:
            raise SekishoError("link.expired" if link else "code.too_many_attempts", field=field)

    async def _consume(self, db: AsyncSession, challenge: Challenge, *, link: bool) -> None:
        """Mark used with a conditional UPDATE: of two racing redemptions exactly one wins."""
        result = await db.execute(
            update(Challenge)
            .where(Challenge.id == challenge.id, Challenge.used_at.is_(None),
                   Challenge.superseded_at.is_(None))
            .values(used_at=self._clock.now())
        )
        if result.rowcount != 1:
            raise SekishoError("link.used" if link else "code.expired",
                               field="token" if link else "code")
        # Reflect the UPDATE in the loaded object without scheduling a second one.
        set_committed_value(challenge, "used_at", self._clock.now())
