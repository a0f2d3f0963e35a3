"""Password recovery by link or code.

```mermaid
stateDiagram-v2
    [*] --> requested: any identifier (202 whatever it matched)
    requested --> requested: request again (older link and code superseded)
    requested --> completed: link or code + new password (sessions ended, owner notified)
```

The request answers identically for known and unknown identifiers (ASVS 6.3.8); the
difference is only which mailbox, if any, receives something.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from sekisho.account.service import clear_lockout, set_password
from sekisho.codes.models import Challenge, Purpose
from sekisho.context import RequestContext
from sekisho.core import Core
from sekisho.errors import SekishoError
from sekisho.events.models import OK, EventKind
from sekisho.flows.challenge_mail import mail_code_and_link
from sekisho.guard.limits import Action
from sekisho.identity.masking import mask_email
from sekisho.identity.models import Account, IdentifierKind
from sekisho.identity.normalize import normalise_code, normalise_password
from sekisho.identity.service import context_words


class RecoveryFlow:
    def __init__(self, core: Core) -> None:
        self.core = core

    async def request(self, *, identifier: str, ctx: RequestContext) -> None:
        """Send a reset link and code to the account's email, if the identifier has one."""
        core = self.core
        ident = core.accounts.identify(identifier)
        await core.limiter.hit(Action.RECOVERY_REQUEST, ip=ctx.ip, key=ident.value)
        async with core.db.transaction() as db:
            match = await core.accounts.find(db, ident)
            await self._send(db, match.account if match else None, ident.value, ctx)

    async def resend_link(self, *, token: str, ctx: RequestContext) -> None:
        """A new reset link in place of a spent one (used, expired or superseded): a new link
        and code go to the same account's address, under the same limits as a new request."""
        core = self.core
        async with core.db.read() as db:
            spent = await core.challenges.find_link(db, Purpose.PASSWORD_RESET, token)
        await core.limiter.hit(Action.RECOVERY_REQUEST, ip=ctx.ip,
                               key=spent.target if spent else None)
        async with core.db.transaction() as db:
            account = await db.get(Account, spent.account_id) if spent else None
            await self._send(db, account, None, ctx)

    async def _send(self, db: AsyncSession, account: Account | None, identifier: str | None,
                    ctx: RequestContext) -> None:
        core = self.core
        outcome = "unknown"
        if account is not None:
            latest = await core.challenges.latest(db, account.id, Purpose.PASSWORD_RESET,
                                                  for_issue=True)
            # Within the cool-down nothing is sent and nothing is said: the answer must
            # not differ from an unknown identifier's.
            outcome = "cooldown" if core.challenges.resend_wait(latest) else OK
        if account is not None and outcome == OK:
            lifetime = core.settings.reset_lifetime_seconds
            issued = await mail_code_and_link(
                core, db, account, purpose=Purpose.PASSWORD_RESET, template="password_reset",
                path="/recovery/reset", lifetime_seconds=lifetime,
                requested_at=core.local_time(core.clock.now()))
            phone = account.identifier(IdentifierKind.PHONE)
            if phone is not None:
                # The same code and link by SMS: a member whose mailbox is out of reach
                # (a lost password to it, a full inbox) can still recover.
                await core.notifier.sms(
                    db, to=phone.value, template="sms_reset", locale=account.locale,
                    account_id=account.id,
                    context={"code": issued.code, "minutes": lifetime // 60,
                             "link": f"{core.settings.base_url}/recovery/reset?token="
                                     f"{issued.token}"})
        await core.events.record(db, kind=EventKind.RECOVERY_REQUEST, outcome=outcome, ctx=ctx,
                                 account_id=account.id if account else None,
                                 identifier=identifier)

    async def remind_id(self, *, contact: str, ctx: RequestContext) -> None:
        """Forgot login ID: send the member ID, the card's last 4 digits and the address to
        the email address or phone number given, if an account has it. Same answer either way.

        By SMS the email address is masked: a reassigned number must not learn it.
        """
        core = self.core
        ident = core.accounts.identify(contact)
        if ident.kind not in (IdentifierKind.EMAIL, IdentifierKind.PHONE):
            raise SekishoError("request.invalid", field="contact",
                               params={"reason": "email_or_phone"})
        await core.limiter.hit(Action.ID_REMINDER, ip=ctx.ip, key=ident.value)
        async with core.db.transaction() as db:
            match = await core.accounts.find(db, ident)
            account = match.account if match else None
            if account is not None:
                card = account.identifier(IdentifierKind.CARD)
                facts = {"display_name": account.display_name, "member_id": account.member_id,
                         "card_last4": card.value[-4:] if card else None,
                         "login_url": f"{core.settings.base_url}/login"}
                if ident.kind == IdentifierKind.EMAIL:
                    await core.notifier.email(
                        db, to=account.email, template="login_id_reminder",
                        locale=account.locale, account_id=account.id,
                        context={**facts, "email": account.email})
                else:
                    await core.notifier.sms(
                        db, to=ident.value, template="sms_login_id", locale=account.locale,
                        account_id=account.id,
                        context={**facts, "email_masked": mask_email(account.email)})
            await core.events.record(db, kind=EventKind.ID_REMINDER,
                                     outcome=OK if account else "unknown", ctx=ctx,
                                     account_id=account.id if account else None,
                                     identifier=ident.value,
                                     detail={"channel": ident.kind.value})

    async def open_link(self, *, token: str, ctx: RequestContext) -> str:
        """A reset link was opened: if it is still usable, trust this browser.

        Returns a device cookie for the account (OWASP device cookies: whoever hammers the
        account cannot keep the owner out, even before the reset is done). The link itself
        stays usable; an unusable one raises ``link.*`` at once, not after a new password
        has been typed.
        """
        core = self.core
        try:
            async with core.db.read() as db:
                challenge = await core.challenges.usable_link(db, Purpose.PASSWORD_RESET, token)
        except SekishoError as error:
            async with core.db.transaction() as db:
                event = await core.events.record(db, kind=EventKind.RECOVERY_COMPLETE,
                                                 outcome=error.code, ctx=ctx,
                                                 detail={"step": "open_link"})
            error.reference = event.reference
            error.extra["resend"] = "/api/v1/recovery/resend"  # one press to a new link
            raise
        return core.devices.issue(challenge.account_id)

    async def complete(self, *, password: str, ctx: RequestContext, token: str | None = None,
                       identifier: str | None = None, code: str | None = None) -> Account:
        """Set a new password with the newest link or code; ends every session."""
        core = self.core
        if not token and not (identifier and code):
            raise SekishoError("request.invalid", field="token" if not identifier else "code",
                               params={"reason": "missing"})
        secret = normalise_password(password)
        ident = core.accounts.identify(identifier) if not token and identifier else None
        digits = normalise_code(code) if not token and code else None
        # Rules that need the account (context words) are checked once it is known; the
        # length rules first, so a too-short password does not spend the link.
        core.policy.check(secret)
        if not token:
            await core.limiter.hit(Action.CODE_VERIFY, ip=ctx.ip)
        new_hash = await core.hasher.hash(secret)
        async with core.db.transaction() as db:
            if token:
                challenge = await core.challenges.redeem_token(db, Purpose.PASSWORD_RESET, token)
                error = None
            else:
                assert ident is not None and digits is not None
                match = await core.accounts.find(db, ident)
                check = await core.challenges.check_code(
                    db, account_id=match.account.id if match else None,
                    purpose=Purpose.PASSWORD_RESET, code=digits)
                challenge, error = check.challenge, check.error
            if error is not None:
                event = await core.events.record(
                    db, kind=EventKind.RECOVERY_COMPLETE, outcome=error.code, ctx=ctx,
                    account_id=challenge.account_id if challenge else None,
                    identifier=ident.value if ident else None)
            else:
                assert challenge is not None
                account = await self._set_password(db, challenge, secret, new_hash, ctx)
        if error is not None:
            error.reference = event.reference
            raise error
        await clear_lockout(core, account)
        return account

    async def _set_password(self, db: AsyncSession, challenge: Challenge, secret: str,
                            new_hash: str, ctx: RequestContext) -> Account:
        core = self.core
        account = await db.get(Account, challenge.account_id)
        assert account is not None
        # Raising here rolls the redemption back: the link stays usable for a better password.
        core.policy.check(secret, context_words=context_words(account))
        await set_password(core, db, account, new_hash, ctx)
        if account.email_verified_at is None:
            # The reset proved control of the mailbox, which is what verification asks.
            account.email_verified_at = account.password_changed_at
        ended = await core.sessions.end_all(db, account.id, "password_reset")
        await core.events.record(db, kind=EventKind.RECOVERY_COMPLETE, outcome=OK, ctx=ctx,
                                 account_id=account.id, detail={"sessions_ended": ended})
        return account
