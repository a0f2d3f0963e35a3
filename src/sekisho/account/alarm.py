"""New-device notices, and the "this wasn't me" they carry.

A login from a browser without a valid device cookie mails the owner: when, from where, with
which browser, and a one-time link. Pressing it needs no login and shuts the door on whoever
got in: every session ends, every trusted browser is forgotten, password login stops until a
reset, and the reset link is on its way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table, insert

from sekisho.codes.models import Challenge, Purpose
from sekisho.context import RequestContext
from sekisho.core import Core
from sekisho.events.models import OK, AuthEvent, EventKind
from sekisho.flows.challenge_mail import mail_code_and_link, redeemed_link
from sekisho.identity.models import Account
from sekisho.notify.models import OutboxMessage


@dataclass(frozen=True, slots=True)
class Notice:
    """One new-device notice as rows: its "this wasn't me" link, its mail and its event."""

    rows: tuple[tuple[Table, dict[str, Any]], ...]

    def write(self, conn: Connection) -> None:
        for table, values in self.rows:
            conn.execute(insert(table), values)


class NewDeviceAlarm:
    def __init__(self, core: Core) -> None:
        self.core = core

    def notice(self, account: Account, ctx: RequestContext) -> Notice | None:
        """The notice of a login from a browser this account has not seen, to be written in
        the login's own unit of work (then wake the outbox once it commits); None if the
        owner turned these notices off."""
        if not account.new_device_notice:
            return None
        core = self.core
        settings = core.settings
        # Not superseding: each notice's link must work, whichever mail is pressed.
        token, link = core.challenges.link_values(
            account_id=account.id, purpose=Purpose.NOT_ME, target=account.email,
            lifetime_seconds=settings.not_me_link_lifetime_seconds)
        mail = core.notifier.email_values(
            to=account.email, template="new_device_login", locale=account.locale,
            account_id=account.id,
            context={"display_name": account.display_name,
                     "logged_in_at": core.local_time(core.clock.now()),
                     "ip": ctx.ip or "-", "browser": ctx.browser,
                     "not_me_link": f"{settings.base_url}/account/not-me?token={token}",
                     "not_me_days": -(-settings.not_me_link_lifetime_seconds // 86400),
                     "settings_url": f"{settings.base_url}/account"})
        event = core.events.values(kind=EventKind.NEW_DEVICE_NOTICE, outcome=OK, ctx=ctx,
                                   account_id=account.id)
        return Notice(((Challenge.__table__, link), (OutboxMessage.__table__, mail),
                       (AuthEvent.__table__, event)))

    async def check(self, token: str) -> None:
        """Raise ``link.*`` at once if the link can no longer be used (before the button)."""
        async with self.core.db.read() as db:
            await self.core.challenges.usable_link(db, Purpose.NOT_ME, token)

    async def not_me(self, *, token: str, ctx: RequestContext) -> Account:
        """Lock the account down until its owner resets the password."""
        core = self.core
        async with redeemed_link(core, Purpose.NOT_ME, token, ctx, EventKind.NOT_ME) as (
                db, challenge):
            account = await db.get(Account, challenge.account_id)
            assert account is not None
            now = core.clock.now()
            ended = await core.sessions.end_all(db, account.id, "not_me")
            account.devices_reset_at = now
            account.password_login_disabled_at = now
            account.updated_at = now
            await core.challenges.supersede(db, account.id, Purpose.NOT_ME)
            await mail_code_and_link(
                core, db, account, purpose=Purpose.PASSWORD_RESET, template="password_reset",
                path="/recovery/reset", lifetime_seconds=core.settings.reset_lifetime_seconds,
                requested_at=core.local_time(now))
            await core.events.record(db, kind=EventKind.NOT_ME, outcome=OK, ctx=ctx,
                                     account_id=account.id, detail={"sessions_ended": ended})
        return account
