"""Registration and email verification.

```mermaid
stateDiagram-v2
    [*] --> unverified: register (mail with code + link)
    unverified --> unverified: resend (supersedes, keeps spent attempts)
    unverified --> verified: code or link
    verified --> [*]
```

No enumeration (ASVS 6.3.8): registering an address that already has an account answers
exactly like a new registration, costs the same hash, and mails the owner instead.
"""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from sekisho.codes.models import Purpose
from sekisho.context import RequestContext
from sekisho.core import Core
from sekisho.errors import SekishoError
from sekisho.events.models import OK, EventKind
from sekisho.flows.challenge_mail import mail_code_and_link
from sekisho.guard.limits import Action
from sekisho.identity.models import Account, IdentifierKind
from sekisho.identity.normalize import (
    NormalisedIdentifier,
    normalise_code,
    normalise_password,
)
from sekisho.identity.service import context_words


class RegistrationFlow:
    def __init__(self, core: Core) -> None:
        self.core = core

    async def register(self, *, email: str, password: str, display_name: str | None,
                       ctx: RequestContext) -> None:
        """Create an unverified account and mail it a code and a link (or mail the owner)."""
        core = self.core
        address = core.accounts.email_address(email)
        secret = normalise_password(password)
        name = (display_name or "").strip() or None
        core.policy.check(secret, context_words=context_words(None, address, name))
        # Counted only once the request would send mail: a member whose first passwords are
        # refused must not run out of attempts.
        await core.limiter.hit(Action.REGISTRATION, ip=ctx.ip, key=address.value)
        async with core.hasher.admitted():  # the hash only, not the writes after it
            password_hash = await core.hasher.hash(secret)
        await self._create_or_tell_owner(address, password_hash, name, ctx)

    async def _create_or_tell_owner(self, address: NormalisedIdentifier, password_hash: str,
                                    name: str | None, ctx: RequestContext) -> None:
        core = self.core
        try:
            async with core.db.transaction() as db:
                if await core.accounts.find(db, address) is None:
                    account = await core.accounts.create(
                        db, email=address, password_hash=password_hash, display_name=name,
                        locale=ctx.locale)
                    await self._send_verification(db, account)
                    await core.events.record(db, kind=EventKind.REGISTRATION, outcome=OK,
                                             ctx=ctx, account_id=account.id,
                                             identifier=address.value)
                    return
        except IntegrityError:
            pass  # a concurrent registration of the same address won: treat as existing
        await self._notify_existing(address, ctx)

    async def _notify_existing(self, address: NormalisedIdentifier, ctx: RequestContext) -> None:
        core = self.core
        async with core.db.transaction() as db:
            match = await core.accounts.find(db, address)
            if match is None:  # pragma: no cover - the winner rolled back
                return
            base = core.settings.base_url
            await core.notifier.email(
                db, to=match.account.email, template="registration_exists",
                locale=match.account.locale, account_id=match.account.id,
                context={"display_name": match.account.display_name,
                         "login_url": f"{base}/login", "recovery_url": f"{base}/recovery"})
            await core.events.record(db, kind=EventKind.REGISTRATION, outcome="duplicate",
                                     ctx=ctx, account_id=match.account.id,
                                     identifier=address.value)

    async def _send_verification(self, db: AsyncSession, account: Account) -> None:
        await mail_code_and_link(
            self.core, db, account, purpose=Purpose.EMAIL_VERIFICATION, template="verify_email",
            path="/verify", lifetime_seconds=self.core.settings.email_code_lifetime_seconds)

    async def resend(self, *, email: str, ctx: RequestContext) -> None:
        """Send a fresh code to an unverified address; silent for anything else."""
        core = self.core
        address = core.accounts.email_address(email)
        await core.limiter.hit(Action.CODE_SEND, ip=ctx.ip, key=address.value)
        async with core.db.transaction() as db:
            match = await core.accounts.find(db, address)
            if match is None or match.account.is_verified:
                return
            latest = await core.challenges.latest(db, match.account.id,
                                                  Purpose.EMAIL_VERIFICATION, for_issue=True)
            wait = core.challenges.resend_wait(latest)
            if wait:
                raise SekishoError("code.resend_too_soon", retry_after=wait,
                                   params={"retry_after": wait})
            await self._send_verification(db, match.account)
            await core.events.record(db, kind=EventKind.VERIFICATION_RESEND, outcome=OK, ctx=ctx,
                                     account_id=match.account.id, identifier=address.value)

    async def verify(self, *, ctx: RequestContext, token: str | None = None,
                     email: str | None = None, code: str | None = None) -> Account:
        """Confirm the address with the link's token, or with the address and its code."""
        core = self.core
        if token:
            return await self._verify_token(token, ctx)
        if not email:
            raise SekishoError("request.invalid", field="email", params={"reason": "missing"})
        if not code:
            raise SekishoError("request.invalid", field="code", params={"reason": "missing"})
        address = core.accounts.email_address(email)
        digits = normalise_code(code)
        await core.limiter.hit(Action.CODE_VERIFY, ip=ctx.ip)
        async with core.db.transaction() as db:
            match = await core.accounts.find(db, address)
            account = match.account if match else None
            check = await core.challenges.check_code(
                db, account_id=account.id if account else None,
                purpose=Purpose.EMAIL_VERIFICATION, code=digits)
            outcome = check.error.code if check.error else OK
            if account is not None and check.error is None:
                self._mark_verified(account)
            event = await core.events.record(db, kind=EventKind.VERIFICATION, outcome=outcome,
                                             ctx=ctx, account_id=account.id if account else None,
                                             identifier=address.value, detail={"via": "code"})
        if check.error:
            check.error.reference = event.reference
            raise check.error
        assert account is not None
        return account

    async def _verify_token(self, token: str, ctx: RequestContext) -> Account:
        core = self.core
        async with core.db.transaction() as db:
            challenge = await core.challenges.redeem_token(db, Purpose.EMAIL_VERIFICATION, token)
            account = await db.get(Account, challenge.account_id)
            assert account is not None
            self._mark_verified(account)
            await core.events.record(db, kind=EventKind.VERIFICATION, outcome=OK, ctx=ctx,
                                     account_id=account.id, detail={"via": "link"})
        return account

    def _mark_verified(self, account: Account) -> None:
        now = self.core.clock.now()
        account.email_verified_at = now
        account.updated_at = now
        email = account.identifier(IdentifierKind.EMAIL)
        if email is not None:
            email.verified_at = now
