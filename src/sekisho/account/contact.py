"""Changing the email address or phone number, and undoing a change the owner did not make.

```mermaid
stateDiagram-v2
    [*] --> requested: password entered within 10 minutes (else auth.step_up_required)
    requested --> requested: resend after the cool-down (older code superseded)
    requested --> changed: code from the new address or number
    changed --> reverted: "this wasn't me" from the old address within 7 days
    reverted --> [*]: old contact back, every session ended, reset link sent
```

A change needs a recent password (a stolen session alone is not enough) and proof of the
new address or number. The old address, and the old number, receive a one-time link that
undoes it without logging in: whoever took over a session cannot lock the owner out by
moving the account's contact details away.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from sekisho.codes.models import Challenge, Purpose
from sekisho.codes.service import Issued
from sekisho.context import RequestContext
from sekisho.core import Core
from sekisho.errors import SekishoError
from sekisho.events.models import OK, EventKind
from sekisho.flows.challenge_mail import mail_code_and_link, redeemed_link
from sekisho.guard.limits import Action
from sekisho.identity.masking import mask_email, mask_phone
from sekisho.identity.models import Account, IdentifierKind
from sekisho.identity.normalize import NormalisedIdentifier, normalise_code
from sekisho.methods.second_factors import SecondFactors
from sekisho.sessions.service import ActiveSession

_EMAIL, _PHONE = "email", "phone"
# Applies a confirmed change, inside the transaction that used up its code.
_Change = Callable[[AsyncSession, Account, Challenge], Awaitable[None]]


class ContactChanges:
    def __init__(self, core: Core) -> None:
        self.core = core
        self.factors = SecondFactors(core)

    # --- email ----------------------------------------------------------------------------

    async def request_email(self, *, active: ActiveSession, email: str,
                            ctx: RequestContext) -> None:
        """Send a code to the new address (or, if it has an account of its own, say so there
        instead: the answer here is the same either way)."""
        core = self.core
        await self.factors.require_recent(active)
        address = core.accounts.email_address(email)
        self._refuse_same(active.account, IdentifierKind.EMAIL, address, "email")
        await core.limiter.hit(Action.CODE_SEND, ip=ctx.ip, key=f"account:{active.account.id}")
        async with core.db.transaction() as db:
            account = await self._load(db, active.account.id)
            issued = await self._issue(db, account, Purpose.EMAIL_CHANGE, address.display,
                                       core.settings.email_code_lifetime_seconds)
            taken = await core.accounts.find(db, address)
            if taken is None:
                await core.notifier.email(
                    db, to=address.display, template="email_change_code", locale=account.locale,
                    account_id=account.id,
                    context={"code": issued.code,
                             "minutes": core.settings.email_code_lifetime_seconds // 60})
            else:
                await core.notifier.email(
                    db, to=address.display, template="email_change_taken",
                    locale=taken.account.locale, account_id=taken.account.id,
                    context={"login_url": f"{core.settings.base_url}/login",
                             "recovery_url": f"{core.settings.base_url}/recovery"})
            await core.events.record(db, kind=EventKind.EMAIL_CHANGE,
                                     outcome="taken" if taken else "code_sent", ctx=ctx,
                                     account_id=account.id, identifier=address.value)

    async def confirm_email(self, *, active: ActiveSession, code: str,
                            ctx: RequestContext) -> Account:
        """The code from the new address: it becomes the login email; the old one is told."""
        core = self.core

        async def change(db: AsyncSession, account: Account, challenge: Challenge) -> None:
            address = core.accounts.email_address(challenge.target)
            await self._refuse_taken(db, account, address, "email")
            old = account.email
            await core.accounts.replace_contact(db, account, IdentifierKind.EMAIL, address)
            # Links already mailed to the old address must not reset the password any more.
            await core.challenges.supersede(db, account.id, Purpose.PASSWORD_RESET)
            revert = await self._revert_link(db, account, f"{_EMAIL}:{old}")
            await core.notifier.email(
                db, to=old, template="email_changed", locale=account.locale,
                account_id=account.id,
                context={**self._change_facts(account, ctx, revert), "old_email": old,
                         "new_email_masked": mask_email(address.display)})

        return await self._confirm(active, code, ctx, Purpose.EMAIL_CHANGE,
                                   EventKind.EMAIL_CHANGE, change)

    # --- phone ----------------------------------------------------------------------------

    async def request_phone(self, *, active: ActiveSession, phone: str,
                            ctx: RequestContext) -> None:
        """Send a code by SMS to the number being added."""
        core = self.core
        await self.factors.require_recent(active)
        number = core.accounts.phone_number(phone)
        self._refuse_same(active.account, IdentifierKind.PHONE, number, "phone")
        await core.limiter.hit(Action.CODE_SEND, ip=ctx.ip, key=f"account:{active.account.id}")
        lifetime = core.settings.sms_code_lifetime_seconds
        async with core.db.transaction() as db:
            account = await self._load(db, active.account.id)
            issued = await self._issue(db, account, Purpose.PHONE_VERIFY, number.value, lifetime)
            await core.notifier.sms(db, to=number.value, template="sms_code",
                                    locale=account.locale, account_id=account.id,
                                    context={"code": issued.code, "minutes": lifetime // 60})
            await core.events.record(db, kind=EventKind.PHONE_CHANGE, outcome="code_sent",
                                     ctx=ctx, account_id=account.id, identifier=number.value)

    async def confirm_phone(self, *, active: ActiveSession, code: str,
                            ctx: RequestContext) -> Account:
        """The SMS code: the number becomes the account's, taken from any account that held
        it before (whoever receives a number's SMS is its owner now)."""
        core = self.core

        async def change(db: AsyncSession, account: Account, challenge: Challenge) -> None:
            number = core.accounts.phone_number(challenge.target)
            await self._release_phone(db, account, number, ctx)
            current = account.identifier(IdentifierKind.PHONE)
            old = current.value if current else None
            await core.accounts.replace_contact(db, account, IdentifierKind.PHONE, number)
            revert = await self._revert_link(db, account, f"{_PHONE}:{old or ''}")
            facts = {**self._change_facts(account, ctx, revert),
                     "old_phone_masked": mask_phone(old) if old else None,
                     "new_phone_masked": mask_phone(number.value)}
            await core.notifier.email(db, to=account.email, template="phone_changed",
                                      locale=account.locale, account_id=account.id,
                                      context=facts)
            if old:
                await core.notifier.sms(db, to=old, template="sms_phone_changed",
                                        locale=account.locale, account_id=account.id,
                                        context=facts)

        return await self._confirm(active, code, ctx, Purpose.PHONE_VERIFY,
                                   EventKind.PHONE_CHANGE, change)

    # --- "this wasn't me" -----------------------------------------------------------------

    async def check_revert(self, token: str) -> None:
        """Raise ``link.*`` at once if the link can no longer be used (before the button)."""
        async with self.core.db.read() as db:
            await self.core.challenges.usable_link(db, Purpose.CONTACT_REVERT, token)

    async def revert(self, *, token: str, ctx: RequestContext) -> str:
        """Undo an email or phone change from the link sent to the old contact.

        Puts the old address or number back, cancels every other pending change and undo
        link, ends every session and mails a password reset link to the restored address:
        whoever made the change probably knows the password. Returns the address that
        reset link went to.
        """
        core = self.core
        async with redeemed_link(core, Purpose.CONTACT_REVERT, token, ctx,
                                 EventKind.CONTACT_REVERT) as (db, challenge):
            account = await self._load(db, challenge.account_id)
            kind, _, old = challenge.target.partition(":")
            restored = await self._restore(db, account, kind, old, ctx)
            for purpose in (Purpose.CONTACT_REVERT, Purpose.EMAIL_CHANGE, Purpose.PHONE_VERIFY):
                await core.challenges.supersede(db, account.id, purpose)
            ended = await core.sessions.end_all(db, account.id, "contact_reverted")
            # To the old address even if it could not be restored (someone registered it
            # since, which only its owner can have done): never to the changed one.
            reset_to = old if kind == _EMAIL else account.email
            await mail_code_and_link(
                core, db, account, purpose=Purpose.PASSWORD_RESET, template="password_reset",
                path="/recovery/reset", lifetime_seconds=core.settings.reset_lifetime_seconds,
                to=reset_to, requested_at=core.local_time(core.clock.now()))
            await core.events.record(db, kind=EventKind.CONTACT_REVERT, outcome=OK, ctx=ctx,
                                     account_id=account.id,
                                     detail={"restored": kind, "complete": restored,
                                             "sessions_ended": ended})
        return reset_to

    async def _restore(self, db: AsyncSession, account: Account, kind: str, old: str,
                       ctx: RequestContext) -> bool:
        """Put the old email or phone back; False if another account has taken it since
        (the phone is then removed rather than left with whoever changed it)."""
        core = self.core
        if kind == _EMAIL:
            address = core.accounts.email_address(old)
            holder = await core.accounts.find(db, address)
            if holder is not None and holder.account.id != account.id:
                return False
            await core.accounts.replace_contact(db, account, IdentifierKind.EMAIL, address)
            return True
        number = core.accounts.phone_number(old) if old else None
        holder = await core.accounts.find(db, number) if number else None
        if holder is not None and holder.account.id != account.id:
            number = None
        await core.accounts.replace_contact(db, account, IdentifierKind.PHONE, number)
        return number is not None or not old

    # --- shared steps ---------------------------------------------------------------------

    async def _load(self, db: AsyncSession, account_id: int) -> Account:
        account = await db.get(Account, account_id)
        assert account is not None
        return account

    def _refuse_same(self, account: Account, kind: IdentifierKind,
                     value: NormalisedIdentifier, field: str) -> None:
        current = account.identifier(kind)
        if current is not None and current.value == value.value:
            raise SekishoError("request.invalid", field=field,
                               params={"reason": "same_as_current"})

    async def _refuse_taken(self, db: AsyncSession, account: Account,
                            value: NormalisedIdentifier, field: str) -> None:
        """Another account registered the address after the code was sent (only someone who
        controls that mailbox could have), so it cannot move here."""
        holder = await self.core.accounts.find(db, value)
        if holder is not None and holder.account.id != account.id:
            raise SekishoError("account.contact_taken", field=field)

    async def _issue(self, db: AsyncSession, account: Account, purpose: Purpose, target: str,
                     lifetime: int) -> Issued:
        """A new code for a change, unless one was sent within the cool-down."""
        core = self.core
        latest = await core.challenges.latest(db, account.id, purpose, for_issue=True)
        wait = core.challenges.resend_wait(latest)
        if wait:
            raise SekishoError("code.resend_too_soon", retry_after=wait,
                               params={"retry_after": wait})
        return await core.challenges.issue(db, account_id=account.id, purpose=purpose,
                                           target=target, lifetime_seconds=lifetime)

    async def _confirm(self, active: ActiveSession, code: str, ctx: RequestContext,
                       purpose: Purpose, kind: EventKind, change: _Change) -> Account:
        """Check the code for ``purpose``; on success apply ``change`` in the same
        transaction. A wrong code is committed (the attempt is spent) and then raised."""
        core = self.core
        digits = normalise_code(code, length=core.settings.code_length)
        await core.limiter.hit(Action.CODE_VERIFY, ip=ctx.ip)
        async with core.db.transaction() as db:
            check = await core.challenges.check_code(db, account_id=active.account.id,
                                                     purpose=purpose, code=digits)
            if check.error is None:
                assert check.challenge is not None
                account = await self._load(db, active.account.id)
                await change(db, account, check.challenge)
                await core.events.record(db, kind=kind, outcome=OK, ctx=ctx,
                                         account_id=account.id)
                return account
            event = await core.events.record(db, kind=kind, outcome=check.error.code, ctx=ctx,
                                             account_id=active.account.id)
        check.error.reference = event.reference
        raise check.error

    async def _revert_link(self, db: AsyncSession, account: Account, target: str) -> str:
        # Not superseding: after two changes, the first old address must still be able to
        # undo them (and its undo then cancels the second one's link).
        settings = self.core.settings
        issued = await self.core.challenges.issue(
            db, account_id=account.id, purpose=Purpose.CONTACT_REVERT, target=target,
            lifetime_seconds=settings.contact_revert_lifetime_seconds, supersede=False)
        return f"{settings.base_url}/account/revert?token={issued.token}"

    def _change_facts(self, account: Account, ctx: RequestContext,
                      revert_link: str) -> dict[str, Any]:
        core = self.core
        return {"display_name": account.display_name,
                "changed_at": core.local_time(core.clock.now()), "ip": ctx.ip or "-",
                "browser": ctx.browser, "revert_link": revert_link,
                "revert_days": -(-core.settings.contact_revert_lifetime_seconds // 86400)}

    async def _release_phone(self, db: AsyncSession, account: Account,
                             number: NormalisedIdentifier, ctx: RequestContext) -> None:
        """Take ``number`` from another account that held it, and tell that account."""
        core = self.core
        holder = await core.accounts.find(db, number)
        if holder is None or holder.account.id == account.id:
            return
        previous = holder.account
        await core.accounts.replace_contact(db, previous, IdentifierKind.PHONE, None)
        await core.notifier.email(
            db, to=previous.email, template="phone_removed", locale=previous.locale,
            account_id=previous.id,
            context={"display_name": previous.display_name,
                     "phone_masked": mask_phone(number.value),
                     "removed_at": core.local_time(core.clock.now()),
                     "account_url": f"{core.settings.base_url}/account"})
        await core.events.record(db, kind=EventKind.PHONE_RELEASED, outcome=OK, ctx=ctx,
                                 account_id=previous.id, detail={"to_account": account.id})
