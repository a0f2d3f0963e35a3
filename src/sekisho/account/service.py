"""What a signed-in member does to their own account: see it, change the password, log out."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from sekisho.context import RequestContext
from sekisho.core import Core
from sekisho.errors import SekishoError
from sekisho.events.models import OK, EventKind
from sekisho.identity.models import Account, IdentifierKind
from sekisho.identity.normalize import normalise_password
from sekisho.identity.service import context_words
from sekisho.methods.models import Authenticator
from sekisho.methods.second_factors import SecondFactors
from sekisho.methods.totp import Provisioning
from sekisho.sessions.models import Session
from sekisho.sessions.service import ActiveSession


def account_view(account: Account) -> dict[str, Any]:
    """The account as the API and the account page show it to its owner."""
    card = account.identifier(IdentifierKind.CARD)
    phone = account.identifier(IdentifierKind.PHONE)
    return {
        "member_id": account.member_id,
        "email": account.email,
        "email_verified": account.is_verified,
        "display_name": account.display_name,
        "card_last4": card.value[-4:] if card else None,
        "phone": phone.value if phone else None,
        "locale": account.locale,
        "notices": {"new_device_login": account.new_device_notice},
        "created_at": account.created_at.isoformat(),
    }


def authenticator_view(authenticator: Authenticator) -> dict[str, Any]:
    return {
        "id": authenticator.id, "kind": authenticator.kind, "name": authenticator.name,
        "created_at": authenticator.created_at.isoformat(),
        "last_used_at": (authenticator.last_used_at.isoformat()
                         if authenticator.last_used_at else None),
    }


def provisioning_view(authenticator_id: int, provisioning: Provisioning) -> dict[str, Any]:
    """A new authenticator app as the API shows it, once: scan ``qr_svg`` or type the key."""
    return {"id": authenticator_id, "secret": provisioning.secret,
            "secret_grouped": provisioning.grouped, "otpauth_uri": provisioning.uri,
            "qr_svg": provisioning.qr_svg}


def session_view(session: Session) -> dict[str, Any]:
    return {
        "created_at": session.created_at.isoformat(),
        "authenticated_at": session.authenticated_at.isoformat(),
        "last_seen_at": session.last_seen_at.isoformat(),
        "expires_at": session.expires_at.isoformat(),
    }


class AccountSettings:
    def __init__(self, core: Core) -> None:
        self.core = core

    async def logout(self, session: Session, ctx: RequestContext) -> None:
        async with self.core.db.transaction() as db:
            await self.core.sessions.end(db, session, "logout")
            await self.core.events.record(db, kind=EventKind.LOGOUT, outcome=OK, ctx=ctx,
                                          account_id=session.account_id)

    async def change_password(self, *, active: ActiveSession, current: str, new: str,
                              ctx: RequestContext) -> None:
        """Needs a recent login and the current password (ASVS 6.2.3); ends the member's
        other sessions."""
        core = self.core
        account, session = active.account, active.session
        await SecondFactors(core).require_recent(active)
        new_secret = normalise_password(new)
        core.policy.check(new_secret, context_words=context_words(account))
        verdict = await core.hasher.verify(account.password_hash, normalise_password(current))
        if not verdict.ok:
            async with core.db.transaction() as db:
                event = await core.events.record(db, kind=EventKind.PASSWORD_CHANGE,
                                                 outcome="password.incorrect", ctx=ctx,
                                                 account_id=account.id)
            raise SekishoError("password.incorrect", field="current_password",
                               reference=event.reference)
        new_hash = await core.hasher.hash(new_secret)
        async with core.db.transaction() as db:
            fresh = await db.get(Account, account.id)
            assert fresh is not None
            await set_password(core, db, fresh, new_hash, ctx)
            ended = await core.sessions.end_all(db, account.id, "password_change", keep=session.id)
            await core.events.record(db, kind=EventKind.PASSWORD_CHANGE, outcome=OK, ctx=ctx,
                                     account_id=account.id, detail={"sessions_ended": ended})
        await clear_lockout(core, fresh)


    async def set_notices(self, *, account: Account, new_device_login: bool,
                          ctx: RequestContext) -> None:
        """The notices a member may turn off. Security notices (password, email, phone or
        second factor changed) always go out."""
        async with self.core.db.transaction() as db:
            fresh = await db.get(Account, account.id)
            assert fresh is not None
            fresh.new_device_notice = new_device_login
            await self.core.events.record(db, kind=EventKind.NOTICE_SETTINGS, outcome=OK,
                                          ctx=ctx, account_id=account.id,
                                          detail={"new_device_login": new_device_login})


async def set_password(core: Core, db: AsyncSession, account: Account, new_hash: str,
                       ctx: RequestContext) -> None:
    """Store a new password hash and tell the owner (ASVS 6.3.7), whatever the path.

    Failures counted against the old password no longer mean anything: the failure cap
    starts again and password login is enabled again. Callers clear the lockout lanes
    (:func:`clear_lockout`) once this has committed.
    """
    now = core.clock.now()
    account.password_hash = new_hash
    account.password_changed_at = now
    account.updated_at = now
    account.failed_logins = 0
    account.password_login_disabled_at = None
    facts = {"display_name": account.display_name, "changed_at": core.local_time(now),
             "ip": ctx.ip or "-", "recovery_url": f"{core.settings.base_url}/recovery"}
    await core.notifier.email(db, to=account.email, template="password_changed",
                              locale=account.locale, account_id=account.id, context=facts)
    phone = account.identifier(IdentifierKind.PHONE)
    if phone is not None:
        await core.notifier.sms(db, to=phone.value, template="sms_password_changed",
                                locale=account.locale, account_id=account.id, context=facts)


async def clear_lockout(core: Core, account: Account) -> None:
    """Unlock every lockout lane of the account: its identifiers' (past ones too) and its
    device cookies'. A member who proved themselves must not stay locked out."""
    await core.lockout.clear(account.id, [core.events.identifier_hash(identifier.value)
                                          for identifier in account.identifiers])
