"""Password login, guarded by lockout lanes and device cookies.

```mermaid
stateDiagram-v2
    [*] --> identified: normalise identifier, look it up (unknown: dummy account)
    identified --> refused: failure cap reached (until a reset), asked from the owner's browser
    identified --> refused: lane locked (login.throttled, password not checked)
    identified --> admitted: lane open (own lane for a valid device cookie, else untrusted)
    admitted --> failed: password wrong, typo corrections wrong too (counts in the lane)
    failed --> locked: lane reaches the threshold (owner mailed once, with unlock link)
    admitted --> checked: password right
    checked --> refused: suspended / dormant / unverified (told only now)
    checked --> signed_in: rehash if parameters changed, new session and device cookie
```

Account state is revealed only after the password is right, so a stranger learns nothing
(ASVS 6.3.8); lanes are keyed by the identifier, so an unknown identifier locks exactly like
a known one. Hashing happens outside any database transaction: a login never holds a
connection (or SQLite's write lock) while argon2 runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NoReturn

from sqlalchemy import Connection, Table, update
from sqlalchemy.ext.asyncio import AsyncSession

from sekisho.account.alarm import NewDeviceAlarm
from sekisho.codes.models import Purpose
from sekisho.context import RequestContext
from sekisho.core import Core
from sekisho.errors import SekishoError
from sekisho.events.models import OK, AuthEvent, EventKind
from sekisho.flows.challenge_mail import mail_code_and_link, redeemed_link
from sekisho.flows.login.models import PendingLogin
from sekisho.flows.login.result import LoginResult
from sekisho.flows.login.stages import LoginRecord, LoginStages
from sekisho.guard.devices import DeviceCookie
from sekisho.guard.limits import Action
from sekisho.guard.lockout import Attempt, Lock
from sekisho.identity.models import Account, AccountStatus, IdentifierKind
from sekisho.identity.normalize import NormalisedIdentifier, normalise_password
from sekisho.identity.service import Match, lookup_with
from sekisho.methods import passkeys
from sekisho.methods.password.hashing import VerifyResult
from sekisho.methods.second_factors import ENROLLED, TOTP, SecondFactors, webauthn_credential
from sekisho.sessions.models import Session

# The account, its identifiers and whether it has a second factor: one statement.
_LOOKUP = lookup_with(ENROLLED)


class LoginFlow:
    def __init__(self, core: Core) -> None:
        self.core = core
        self.alarm = NewDeviceAlarm(core)
        self.factors = SecondFactors(core)
        self.stages = LoginStages(core, self.alarm, self.factors)

    async def login(self, *, identifier: str, password: str, ctx: RequestContext,
                    device_cookie: str | None = None) -> LoginResult:
        core = self.core
        ident = core.accounts.identify(identifier)
        secret = normalise_password(password)
        if not secret:
            raise SekishoError("request.invalid", field="password", params={"reason": "missing"})
        await core.limiter.hit(Action.LOGIN, ip=ctx.ip)
        return await self._login(ident, secret, ctx, device_cookie)

    async def reauthenticate(self, *, session: Session, account: Account, password: str,
                             ctx: RequestContext, device_cookie: str | None) -> LoginResult:
        """Step-up: the member of a live session enters the password again.

        The same path as a login by member ID (lanes, failure cap, typo corrections), so a
        stolen session cannot be used to guess the password faster than a login could.
        """
        core = self.core
        secret = normalise_password(password)
        if not secret:
            raise SekishoError("request.invalid", field="password", params={"reason": "missing"})
        await core.limiter.hit(Action.LOGIN, ip=ctx.ip)
        return await self._login(core.accounts.identify(account.member_id), secret, ctx,
                                 device_cookie, session=session)

    async def _login(self, ident: NormalisedIdentifier, secret: str, ctx: RequestContext,
                     device_cookie: str | None, session: Session | None = None) -> LoginResult:
        core = self.core
        # One of the hasher's few places covers the lookup and the hash only: what is written
        # afterwards (the failure, or the session and the new-device notice) does not keep
        # the next login from its hash.
        async with core.hasher.admitted():
            checked = await self._check(ident, secret, ctx, device_cookie)
        match, account, attempt = checked.match, checked.account, checked.attempt
        if attempt is None:
            assert checked.refusal is not None
            await self._refuse(checked.refusal, ident.value, account, ctx)
        verdict = checked.verdict
        if not verdict.ok:
            await self._failed(attempt, ident.value, account, ctx, trusted=checked.trusted)
        await core.lockout.succeeded(attempt)
        assert match is not None and account is not None
        refusal = self._state_error(account)
        if refusal is not None:
            await self._refuse(refusal, ident.value, account, ctx)
        correction = checked.corrections[verdict.matched - 1][0] if verdict.matched else None
        new_hash = await core.hasher.hash(secret) if verdict.needs_rehash else None
        return await self._signed_in(match, ident, ctx, trusted=checked.trusted,
                                     correction=correction, new_hash=new_hash, session=session,
                                     methods=checked.methods)

    async def _check(self, ident: NormalisedIdentifier, secret: str, ctx: RequestContext,
                     device_cookie: str | None) -> _Checked:
        """Look the identifier up, take the attempt's place in its lane and check the
        password (and its typo corrections); refusals before the hash are returned, not
        recorded."""
        core = self.core

        def find(conn: Connection) -> tuple[Match | None, list[str]]:
            found = core.accounts.lookup(conn, ident, _LOOKUP)
            enrolled = found is not None and found.extra[0]
            return found, self.factors.methods(conn, found.account) if enrolled else []

        match, methods = await core.db.run(find)
        account = match.account if match else None
        device = core.devices.read(device_cookie, account.id if account else None,
                                   account.devices_reset_at if account else None)
        disabled = account is not None and account.password_login_disabled_at is not None
        if disabled and device is not None:
            # Past the failure cap nothing is guessed any more; only a reset reopens it. The
            # owner's own browser is told so. Any other gets what an unknown identifier
            # gets (the password is not checked), so the cap reveals neither that the
            # account exists nor whether a guess was right; the owner was mailed the reset.
            return _Checked(match, methods, refusal=SekishoError("login.password_disabled"))
        try:
            attempt = await self._admit(ident, account, device, ctx)
        except SekishoError as error:
            return _Checked(match, methods, refusal=error)
        try:
            corrections = (core.policy.corrections(secret)
                           if core.settings.password_typo_correction else [])
            verdict = await core.hasher.verify(
                None if account is None or disabled else account.password_hash, secret,
                [candidate for _, candidate in corrections])
        except BaseException:
            await core.lockout.abandon(attempt)
            raise
        return _Checked(match, methods, trusted=device is not None, attempt=attempt,
                        verdict=verdict, corrections=corrections)

    def _state_error(self, account: Account) -> SekishoError | None:
        """Why a member who proved who they are still cannot come in, if anything."""
        for status, code in ((AccountStatus.SUSPENDED, "account.suspended"),
                             (AccountStatus.DORMANT, "account.dormant")):
            if account.status == status:
                return SekishoError(code)
        if not account.is_verified:
            # Only the owner gets this far: name the address to confirm, so one press
            # resends the code whichever identifier they logged in with.
            return SekishoError("account.unverified",
                                extra={"resend": "/api/v1/verifications/email/resend",
                                       "email": account.email})
        return None

    async def _admit(self, ident: NormalisedIdentifier, account: Account | None,
                     device: DeviceCookie | None, ctx: RequestContext) -> Attempt:
        """The attempt's place in its lane; raises the refusal (throttled, or the IP's
        budget)."""
        core = self.core
        if device is None:
            # Known browsers are exempt: spraying from a shared IP must not lock them out.
            await core.limiter.check(Action.LOGIN_FAILED, ip=ctx.ip)
        lane = (core.lockout.device_lane(device.nonce) if device else
                core.lockout.untrusted_lane(core.events.identifier_hash(ident.value)))
        return await core.lockout.admit(lane, account.id if account else None)

    async def _signed_in(self, match: Match, ident: NormalisedIdentifier, ctx: RequestContext,
                         *, trusted: bool, correction: str | None, new_hash: str | None,
                         session: Session | None, methods: list[str]) -> LoginResult:
        """The first factor passed: a new session, or the second-factor stage when the
        account has one, or ``session`` re-authenticated. Recorded with its event in one unit
        of plain statements."""
        core = self.core
        account = match.account
        notices = self._notices(match, correction)
        detail: dict[str, Any] = {
            "identifier_kind": ident.kind.value, "rehashed": bool(new_hash),
            "trusted_device": trusted, "correction": correction,
            "notices": [n["code"] for n in notices]}
        flow = None
        if session is None and not (methods or core.settings.second_factor_required):
            # The session, its event and a new browser's notice.
            written = self.stages.opening(account, ctx, detail, identifier=ident.value,
                                          trusted=trusted)
        else:
            rows: tuple[tuple[Table, dict[str, Any]], ...] = ()
            if session is not None:
                kind, outcome = EventKind.REAUTHENTICATION, OK
            else:
                enrol = not methods
                kind = EventKind.LOGIN
                outcome = ("second_factor_enrolment_required" if enrol
                           else "second_factor_required")
                flow, row = self.stages.new_flow(account.id, {**detail, "notice_list": notices,
                                                    "enrol": enrol})
                rows = ((PendingLogin.__table__, row),)
            event = core.events.values(kind=kind, outcome=outcome, ctx=ctx,
                                       account_id=account.id, identifier=ident.value,
                                       detail=detail)
            written = LoginRecord(None, event["reference"],
                                  (*rows, (AuthEvent.__table__, event)), None)

        def record(conn: Connection) -> None:
            accounts = Account.__table__
            if account.failed_logins:
                conn.execute(update(accounts).where(accounts.c.id == account.id)
                             .values(failed_logins=0))
            if new_hash:
                conn.execute(update(accounts).where(accounts.c.id == account.id)
                             .values(password_hash=new_hash))
            if session is not None:
                core.sessions.reauthenticated(conn, session.id)
            written.write(conn)

        await core.db.run(record, write=True)
        if written.notice is not None:
            core.notifier.enqueued()
        if flow is not None:
            return LoginResult(None, account, written.reference, None, flow=flow,
                               methods=methods or [TOTP], enrol=not methods)
        return LoginResult(written.token, account, written.reference,
                           core.devices.issue(account.id), notices)

    async def passkey_options(self) -> dict[str, Any]:
        """WebAuthn options for a passwordless login: the browser offers its passkeys."""
        async with self.core.db.transaction() as db:
            return await self.core.passkeys.authentication_options(db, passkeys.LOGIN)

    async def passkey_login(self, *, credential: Any, ctx: RequestContext,
                            device_cookie: str | None) -> LoginResult:
        """Passwordless login with a discoverable passkey and user verification: one step,
        and already two factors (the device, and the fingerprint, face or PIN unlocking it)."""
        core = self.core
        await core.limiter.hit(Action.LOGIN, ip=ctx.ip)
        async with core.db.transaction() as db:
            try:
                passkey = await core.passkeys.authenticate(db, webauthn_credential(credential),
                                                           passkeys.LOGIN)
            except SekishoError as error:
                failure = error
            else:
                account = await db.get(Account, passkey.account_id)
                assert account is not None
                failure = self._state_error(account)
                if failure is None:
                    trusted = core.devices.read(device_cookie, account.id,
                                                account.devices_reset_at) is not None
                    token, reference = await self.stages.open_session(
                        db, account, ctx, {"method": "passkey", "trusted_device": trusted})
        if failure is not None:
            await self._refuse(failure, None, None, ctx)
        return LoginResult(token, account, reference, core.devices.issue(account.id))

    async def unlock(self, *, token: str, ctx: RequestContext) -> str:
        """Use a lock mail's "unlock this browser" link: a device cookie for this browser.

        The browser gets its own lane, so the owner logs in at once while whoever caused the
        lock stays locked out. Returns the new device cookie.
        """
        core = self.core
        async with redeemed_link(core, Purpose.UNLOCK, token, ctx, EventKind.UNLOCK) as (
                db, challenge):
            await core.events.record(db, kind=EventKind.UNLOCK, outcome=OK, ctx=ctx,
                                     account_id=challenge.account_id)
        return core.devices.issue(challenge.account_id)

    async def _failed(self, attempt: Attempt, identifier: str, account: Account | None,
                      ctx: RequestContext, *, trusted: bool) -> NoReturn:
        """Count a wrong password in its lane, towards the IP's budget and the account's cap."""
        core = self.core
        lock = await core.lockout.failed(attempt)
        if not trusted:
            await core.limiter.count(Action.LOGIN_FAILED, ip=ctx.ip)
        async with core.db.transaction() as db:
            detail: dict[str, Any] = {"lane": "device" if trusted else "untrusted"}
            if lock is not None:
                detail["locked_until"] = lock.until
                detail["lock_level"] = lock.level
            if account is not None:
                cap = await self._count_failure(db, account)
                detail["failed_logins"] = cap.failures
                if account.password_login_disabled_at is not None:
                    detail["password_login_disabled"] = True  # for support: why it failed
                elif cap.now_disabled:
                    await mail_code_and_link(
                        core, db, account, purpose=Purpose.PASSWORD_RESET,
                        template="password_login_disabled", path="/recovery/reset",
                        lifetime_seconds=core.settings.reset_lifetime_seconds,
                        failures=cap.failures,
                        disabled_at=core.local_time(core.clock.now()))
                elif lock is not None and lock.level == 1:
                    await self._mail_lock(db, account, lock, ctx)
            event = await core.events.record(
                db, kind=EventKind.LOGIN, outcome="login.invalid_credentials", ctx=ctx,
                account_id=account.id if account else None, identifier=identifier,
                detail=detail)
        raise SekishoError("login.invalid_credentials", reference=event.reference)

    async def _count_failure(self, db: AsyncSession, account: Account) -> _Cap:
        """One more consecutive failure; at the cap, disable password login (once)."""
        core = self.core
        failures = int(await db.scalar(
            update(Account).where(Account.id == account.id)
            .values(failed_logins=Account.failed_logins + 1)
            .returning(Account.failed_logins)
            .execution_options(synchronize_session=False)) or 0)
        if failures < core.settings.login_failure_cap:
            return _Cap(failures, False)
        disabled = await db.execute(
            update(Account).where(Account.id == account.id,
                                  Account.password_login_disabled_at.is_(None))
            .values(password_login_disabled_at=core.clock.now())
            .execution_options(synchronize_session=False))
        return _Cap(failures, bool(disabled.rowcount))  # type: ignore[attr-defined]

    async def _mail_lock(self, db: AsyncSession, account: Account, lock: Lock,
                         ctx: RequestContext) -> None:
        """The one mail per lock: what happened, and two ways out that need no support."""
        core = self.core
        settings = core.settings
        unlock = await core.challenges.issue(
            db, account_id=account.id, purpose=Purpose.UNLOCK, target=account.email,
            lifetime_seconds=settings.unlock_link_lifetime_seconds)
        reset = await core.challenges.issue(
            db, account_id=account.id, purpose=Purpose.PASSWORD_RESET, target=account.email,
            lifetime_seconds=settings.reset_lifetime_seconds)
        await core.notifier.email(
            db, to=account.email, template="login_locked", locale=account.locale,
            account_id=account.id,
            context={"display_name": account.display_name,
                     "locked_at": core.local_time(core.clock.now()),
                     "until": core.local_time(datetime.fromtimestamp(lock.until, UTC)),
                     "ip": ctx.ip or "-", "browser": ctx.browser, "attempts": lock.failures,
                     "unlock_link": f"{settings.base_url}/unlock?token={unlock.token}",
                     "reset_link": f"{settings.base_url}/recovery/reset?token={reset.token}",
                     "reset_minutes": settings.reset_lifetime_seconds // 60})

    async def _refuse(self, error: SekishoError, identifier: str | None,
                      account: Account | None, ctx: RequestContext,
                      kind: EventKind = EventKind.LOGIN) -> NoReturn:
        async with self.core.db.transaction() as db:
            event = await self.core.events.record(
                db, kind=kind, outcome=error.code, ctx=ctx,
                account_id=account.id if account else None, identifier=identifier)
        error.reference = event.reference
        raise error

    def _notices(self, match: Match, correction: str | None) -> list[dict[str, Any]]:
        """Things worth saying once the member is in: a replaced card, a corrected typo."""
        notices: list[dict[str, Any]] = []
        if match.identifier.kind == IdentifierKind.CARD and not match.identifier.active:
            current = match.account.identifier(IdentifierKind.CARD)
            notices.append({"code": "card_replaced",
                            "new_card_last4": current.value[-4:] if current else None})
        if correction is not None:
            notices.append({"code": f"password_{correction}"})
        return notices


@dataclass(frozen=True, slots=True)
class _Checked:
    """What the admitted part of a login found (:meth:`LoginFlow._check`): a refusal before
    the hash, or the attempt in its lane and the password's verdict."""

    match: Match | None
    methods: list[str]
    refusal: SekishoError | None = None
    trusted: bool = False
    """The request came with a valid device cookie for this account."""
    attempt: Attempt | None = None
    verdict: VerifyResult = VerifyResult(ok=False)
    corrections: list[tuple[str, str]] = field(default_factory=list)

    @property
    def account(self) -> Account | None:
        return self.match.account if self.match else None


@dataclass(frozen=True, slots=True)
class _Cap:
    failures: int
    now_disabled: bool
