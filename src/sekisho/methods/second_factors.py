"""Second factors: which a member has, checking one at login or step-up, and managing them.

Methods, weakest last: ``totp`` (an authenticator app), ``recovery_code`` (single-use codes
shown once), and ``sms`` (only where the operator turned it on: NIST SP 800-63B calls it
restricted). A member has a second factor once an authenticator is confirmed; recovery codes
and SMS are ways in when the authenticator is lost, never a reason to ask for one.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from sekisho.codes.models import Purpose
from sekisho.context import RequestContext
from sekisho.core import Core
from sekisho.errors import SekishoError
from sekisho.events.models import OK, EventKind
from sekisho.guard.limits import Action
from sekisho.identity.models import Account, IdentifierKind
from sekisho.identity.normalize import normalise_code
from sekisho.methods import passkeys, recovery_codes
from sekisho.methods.models import Authenticator, AuthenticatorKind, RecoveryCode
from sekisho.methods.totp import Provisioning
from sekisho.sessions.models import Session
from sekisho.sessions.service import ActiveSession

TOTP, PASSKEY, RECOVERY_CODE, SMS = "totp", "passkey", "recovery_code", "sms"

# The login hot path's statements (``SecondFactors.methods``), built once.
_AUTHENTICATORS, _CODES = Authenticator.__table__, RecoveryCode.__table__
_CONFIRMED_KINDS = (select(_AUTHENTICATORS.c.kind).distinct()
                    .where(_AUTHENTICATORS.c.account_id == bindparam("account_id"),
                           _AUTHENTICATORS.c.confirmed_at.is_not(None)))
_UNUSED_CODE = (select(_CODES.c.id).limit(1)
                .where(_CODES.c.account_id == bindparam("account_id"), _CODES.c.used_at.is_(None)))
ENROLLED = (select(_AUTHENTICATORS.c.id)
            .where(_AUTHENTICATORS.c.account_id == Account.__table__.c.id,
                   _AUTHENTICATORS.c.confirmed_at.is_not(None))
            .exists().label("second_factor_enrolled"))
"""Whether the account has a confirmed authenticator, as a column of a statement that reads
the account (the login's lookup reads it in the same statement: most accounts have none)."""

# How the notices name a method, in the member's language.
_METHOD_LABELS = {
    AuthenticatorKind.TOTP: {"ja": "認証アプリ", "en": "authenticator app"},
    AuthenticatorKind.PASSKEY: {"ja": "パスキー", "en": "passkey"},
}


class SecondFactors:
    def __init__(self, core: Core) -> None:
        self.core = core

    # --- step-up ----------------------------------------------------------------------------

    async def require_recent(self, active: ActiveSession, max_age: int | None = None) -> None:
        """``auth.step_up_required`` unless the member authenticated within ``max_age``
        seconds (default ``step_up_max_age_seconds``), naming every method that would do:
        the password, and each kind of second factor the account has."""
        try:
            self.core.sessions.require_recent(active.session, max_age)
        except SekishoError as error:
            async with self.core.db.read() as db:
                kinds = sorted({a.kind for a in await self.enrolled(db, active.account.id)})
            error.extra["methods"] = ["password", *kinds]
            raise

    async def reauthenticate(self, active: ActiveSession, method: str, code: Any,
                             ctx: RequestContext) -> None:
        """Step-up with a second factor instead of the password."""
        core = self.core
        await core.limiter.hit(Action.CODE_VERIFY, ip=ctx.ip)
        async with core.db.transaction() as db:
            enrolled = {a.kind for a in await self.enrolled(db, active.account.id)}
            if method not in enrolled:
                raise SekishoError("request.invalid", field="method",
                                   params={"reason": "method_unavailable"})
            ok = await self.check(db, active.account, method, code)
            if ok:
                now = core.clock.now()
                await db.execute(update(Session).where(Session.id == active.session.id)
                                 .values(authenticated_at=now, second_factor_at=now))
            event = await core.events.record(
                db, kind=EventKind.REAUTHENTICATION,
                outcome=OK if ok else "second_factor.invalid_code", ctx=ctx,
                account_id=active.account.id, detail={"second_factor": method})
        if not ok:
            raise SekishoError("second_factor.invalid_code", field="code",
                               reference=event.reference)

    async def step_up_passkey_options(self, account: Account) -> dict[str, Any]:
        """WebAuthn options listing the account's passkeys, for a step-up."""
        async with self.core.db.transaction() as db:
            return await self.passkey_request(db, account.id)

    async def passkey_request(self, db: AsyncSession, account_id: int) -> dict[str, Any]:
        """WebAuthn options for one of this account's passkeys as the second factor."""
        allowed = [a for a in await self.enrolled(db, account_id)
                   if a.kind == AuthenticatorKind.PASSKEY]
        return await self.core.passkeys.authentication_options(
            db, passkeys.SECOND_FACTOR, account_id, allowed)

    # --- at login ---------------------------------------------------------------------------

    def methods(self, conn: Connection, account: Account) -> list[str]:
        """The methods that can finish this account's login, or ``[]`` if it has no second
        factor. Plain statements: this runs on the login hot path (``Database.run``)."""
        key = {"account_id": account.id}
        kinds = sorted(conn.scalars(_CONFIRMED_KINDS, key))
        if not kinds:
            return []
        if conn.scalar(_UNUSED_CODE, key) is not None:
            kinds.append(RECOVERY_CODE)
        if self.core.settings.sms_second_factor and account.identifier(IdentifierKind.PHONE):
            kinds.append(SMS)
        return kinds

    async def check(self, db: AsyncSession, account: Account, method: str, code: Any) -> bool:
        """Whether ``code`` proves ``method`` for the account, using it up if so.

        Each success is a conditional UPDATE, so of two requests racing with one code exactly
        one wins. A malformed entry raises ``request.invalid`` without counting as a guess.
        """
        if method == TOTP:
            return await self._check_totp(db, account, normalise_code(code, length=6))
        if method == PASSKEY:
            await self.core.passkeys.authenticate(db, webauthn_credential(code),
                                                  passkeys.SECOND_FACTOR, account.id)
            return True
        if method == RECOVERY_CODE:
            return await self._use_recovery_code(db, account, code)
        if method == SMS:
            digits = normalise_code(code, length=self.core.settings.code_length)
            result = await self.core.challenges.check_code(
                db, account_id=account.id, purpose=Purpose.LOGIN_CODE, code=digits)
            return result.error is None
        raise SekishoError("request.invalid", field="method",
                           params={"reason": "method_unavailable"})

    async def send_sms(self, db: AsyncSession, account: Account) -> None:
        """Text a login code to the account's verified phone (cool-down as every code)."""
        core = self.core
        phone = account.identifier(IdentifierKind.PHONE)
        if not core.settings.sms_second_factor or phone is None:
            raise SekishoError("request.invalid", field="method",
                               params={"reason": "method_unavailable"})
        latest = await core.challenges.latest(db, account.id, Purpose.LOGIN_CODE, for_issue=True)
        wait = core.challenges.resend_wait(latest)
        if wait:
            raise SekishoError("code.resend_too_soon", retry_after=wait,
                               params={"retry_after": wait})
        lifetime = core.settings.sms_code_lifetime_seconds
        issued = await core.challenges.issue(db, account_id=account.id,
                                             purpose=Purpose.LOGIN_CODE, target=phone.value,
                                             lifetime_seconds=lifetime)
        await core.notifier.sms(db, to=phone.value, template="sms_code", locale=account.locale,
                                account_id=account.id,
                                context={"code": issued.code, "minutes": lifetime // 60})

    async def _check_totp(self, db: AsyncSession, account: Account, digits: str) -> bool:
        totp = self.core.totp
        apps = await db.scalars(select(Authenticator).where(
            Authenticator.account_id == account.id, Authenticator.kind == AuthenticatorKind.TOTP,
            Authenticator.confirmed_at.is_not(None)))
        for app in apps:
            assert app.secret is not None
            step = totp.match(totp.unseal(app.secret), digits, app.last_step)
            if step is not None and await self._advance(db, app, step):
                return True
        return False

    async def _advance(self, db: AsyncSession, app: Authenticator, step: int) -> bool:
        """Record ``step`` as the app's last accepted one, unless a racing request already
        accepted it (or a later one): then this code is a replay."""
        result = await db.execute(
            update(Authenticator)
            .where(Authenticator.id == app.id,
                   (Authenticator.last_step.is_(None)) | (Authenticator.last_step < step))
            .values(last_step=step, last_used_at=self.core.clock.now())
            .execution_options(synchronize_session=False))
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def _use_recovery_code(self, db: AsyncSession, account: Account, raw: str) -> bool:
        canonical = recovery_codes.normalise(raw)
        if canonical is None:
            raise SekishoError("request.invalid", field="code",
                               params={"reason": "not_a_recovery_code"})
        result = await db.execute(
            update(RecoveryCode)
            .where(RecoveryCode.account_id == account.id,
                   RecoveryCode.code_hash == self.core.recovery_codes.hash(canonical),
                   RecoveryCode.used_at.is_(None))
            .values(used_at=self.core.clock.now())
            .execution_options(synchronize_session=False))
        return bool(result.rowcount)  # type: ignore[attr-defined]

    # --- managing them (the account page; each behind step-up) -------------------------------

    async def enrolled(self, db: AsyncSession, account_id: int) -> list[Authenticator]:
        return list(await db.scalars(
            select(Authenticator).where(Authenticator.account_id == account_id,
                                        Authenticator.confirmed_at.is_not(None))
            .order_by(Authenticator.id)))

    async def unused_recovery_codes(self, db: AsyncSession, account_id: int) -> int:
        return int(await db.scalar(select(func.count()).select_from(RecoveryCode).where(
            RecoveryCode.account_id == account_id, RecoveryCode.used_at.is_(None))) or 0)

    async def start_totp(self, account: Account, name: str) -> tuple[int, Provisioning]:
        """A new, unconfirmed authenticator app: the QR code and secret to show once."""
        core = self.core
        provisioning = core.totp.provision(account.email)
        async with core.db.transaction() as db:
            app = Authenticator(account_id=account.id, kind=AuthenticatorKind.TOTP,
                                name=_name(name), secret=core.totp.seal(provisioning.secret),
                                created_at=core.clock.now())
            db.add(app)
            await db.flush()
        return app.id, provisioning

    async def pending_totp(self, account: Account, authenticator_id: int) -> Provisioning:
        """The QR code and secret of an app not yet confirmed, to show them again."""
        async with self.core.db.read() as db:
            app = await db.get(Authenticator, authenticator_id)
        if app is None or app.account_id != account.id or app.confirmed_at is not None:
            raise SekishoError("second_factor.not_found")
        assert app.secret is not None
        return self.core.totp.provisioning(self.core.totp.unseal(app.secret), account.email)

    async def confirm_totp(self, account: Account, authenticator_id: int, code: str,
                           ctx: RequestContext) -> list[str] | None:
        """The app's first code confirms it. Returns new recovery codes if this is the
        account's first second factor (to show once), else None."""
        async with self.core.db.transaction() as db:
            return await self.confirm_totp_in(db, account, authenticator_id, code, ctx)

    async def confirm_totp_in(self, db: AsyncSession, account: Account, authenticator_id: int,
                              code: str, ctx: RequestContext) -> list[str] | None:
        """:meth:`confirm_totp` inside the caller's transaction (the enrolment stage of a
        login confirms the app and opens the session all or nothing)."""
        core = self.core
        digits = normalise_code(code, length=6)
        app = await db.get(Authenticator, authenticator_id)
        if app is None or app.account_id != account.id or app.confirmed_at is not None:
            raise SekishoError("second_factor.not_found")
        assert app.secret is not None
        step = core.totp.match(core.totp.unseal(app.secret), digits, app.last_step)
        if step is None:
            raise SekishoError("second_factor.invalid_code", field="code")
        first = not await self.enrolled(db, account.id)
        app.confirmed_at = app.last_used_at = core.clock.now()
        app.last_step = step
        return await self._added(db, account, app, first, ctx)

    async def passkey_options(self, account: Account) -> dict[str, Any]:
        """Options for the browser to create a passkey for this account."""
        async with self.core.db.transaction() as db:
            existing = await self.enrolled(db, account.id)
            return await self.core.passkeys.registration_options(db, account, existing)

    async def add_passkey(self, account: Account, credential: Any, name: str,
                          ctx: RequestContext) -> list[str] | None:
        """Keep the passkey the browser created. Returns new recovery codes if it is the
        account's first second factor (to show once), else None."""
        async with self.core.db.transaction() as db:
            first = not await self.enrolled(db, account.id)
            passkey = await self.core.passkeys.register(
                db, account, webauthn_credential(credential), _name(name))
            return await self._added(db, account, passkey, first, ctx)

    async def _added(self, db: AsyncSession, account: Account, factor: Authenticator,
                     first: bool, ctx: RequestContext) -> list[str] | None:
        codes = await self._new_codes(db, account.id) if first else None
        await self._notify(db, account, "second_factor_added", ctx, factor)
        await self.core.events.record(db, kind=EventKind.SECOND_FACTOR, outcome=OK, ctx=ctx,
                                      account_id=account.id,
                                      detail={"action": "added", "method": factor.kind})
        return codes

    async def remove(self, account: Account, authenticator_id: int, ctx: RequestContext) -> None:
        """Remove one factor; with the last one gone, the recovery codes go too."""
        core = self.core
        async with core.db.transaction() as db:
            app = await db.get(Authenticator, authenticator_id)
            if app is None or app.account_id != account.id:
                raise SekishoError("second_factor.not_found")
            await db.delete(app)
            await db.flush()
            if not await self.enrolled(db, account.id):
                await db.execute(delete(RecoveryCode).where(RecoveryCode.account_id == account.id))
            await self._notify(db, account, "second_factor_removed", ctx, app)
            await core.events.record(db, kind=EventKind.SECOND_FACTOR, outcome=OK, ctx=ctx,
                                     account_id=account.id,
                                     detail={"action": "removed", "method": app.kind})

    async def regenerate_codes(self, account: Account, ctx: RequestContext) -> list[str]:
        """A new set of recovery codes; the old set stops working."""
        core = self.core
        async with core.db.transaction() as db:
            if not await self.enrolled(db, account.id):
                raise SekishoError("second_factor.not_found")
            codes = await self._new_codes(db, account.id)
            await self._notify(db, account, "recovery_codes_regenerated", ctx)
            await core.events.record(db, kind=EventKind.SECOND_FACTOR, outcome=OK, ctx=ctx,
                                     account_id=account.id,
                                     detail={"action": "recovery_codes_regenerated"})
        return codes

    async def _new_codes(self, db: AsyncSession, account_id: int) -> list[str]:
        core = self.core
        await db.execute(delete(RecoveryCode).where(RecoveryCode.account_id == account_id))
        codes = recovery_codes.generate()
        now = core.clock.now()
        db.add_all([RecoveryCode(account_id=account_id, created_at=now,
                                 code_hash=core.recovery_codes.hash(
                                     recovery_codes.normalise(code) or ""))
                    for code in codes])
        await db.flush()
        return codes

    async def _notify(self, db: AsyncSession, account: Account, template: str,
                      ctx: RequestContext, app: Authenticator | None = None) -> None:
        """Security notices: the member cannot turn these off."""
        core = self.core
        context: dict[str, Any] = {
            "display_name": account.display_name, "changed_at": core.local_time(core.clock.now()),
            "ip": ctx.ip or "-", "browser": ctx.browser,
            "recovery_url": f"{core.settings.base_url}/recovery"}
        if app is not None:
            label = _METHOD_LABELS[AuthenticatorKind(app.kind)]
            context |= {"method": label.get(account.locale, label["ja"]), "name": app.name}
        await core.notifier.email(db, to=account.email, template=template,
                                  locale=account.locale, account_id=account.id, context=context)


def _name(raw: str) -> str:
    """The member's label for a factor ("iPhone"): trimmed, at most 64 characters."""
    return " ".join(raw.split())[:64] or "-"


def webauthn_credential(value: Any) -> dict[str, Any]:
    """A WebAuthn credential as the browser's JSON (an object, or that object as text)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            value = None
    if not isinstance(value, dict):
        raise SekishoError("passkey.invalid")
    return value
