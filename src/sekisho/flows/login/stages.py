"""The stages of a login after the password: the second factor, or (where policy requires
one and the account has none) setting up an authenticator app.

Each is a ``login_flows`` row (:class:`PendingLogin`): the member holds its token, it dies
after ``second_factor_flow_lifetime_seconds`` or ``second_factor_max_attempts`` wrong entries
(its own lane, apart from password failures), and it makes at most one session.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, Table, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from sekisho.account.alarm import NewDeviceAlarm, Notice
from sekisho.context import RequestContext
from sekisho.core import Core
from sekisho.errors import SekishoError
from sekisho.events.models import OK, AuthEvent, EventKind
from sekisho.flows.login.models import PendingLogin
from sekisho.flows.login.result import LoginResult
from sekisho.guard.limits import Action
from sekisho.identity.models import Account
from sekisho.methods.second_factors import TOTP, SecondFactors
from sekisho.methods.totp import Provisioning
from sekisho.sessions.models import Session
from sekisho.sessions.service import token_hash


@dataclass(frozen=True, slots=True)
class LoginRecord:
    """What a login stage writes in one unit of work (:meth:`write`): its event (whose
    ``reference`` the member is shown) and the rows that go with it; ``token`` when it
    opened a session (:meth:`LoginStages.opening`)."""

    token: str | None
    reference: str
    rows: tuple[tuple[Table, dict[str, Any]], ...]
    notice: Notice | None

    def write(self, conn: Connection) -> None:
        for table, values in self.rows:
            conn.execute(insert(table), values)
        if self.notice is not None:
            self.notice.write(conn)


class LoginStages:
    def __init__(self, core: Core, alarm: NewDeviceAlarm, factors: SecondFactors) -> None:
        self.core = core
        self.alarm = alarm
        self.factors = factors

    def new_flow(self, account_id: int, detail: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """A new stage (second factor, or enrolment): its token and row."""
        core = self.core
        now = core.clock.now()
        token = core.tokens.token(32)
        return token, {
            "account_id": account_id, "token_hash": token_hash(token), "created_at": now,
            "expires_at": now + timedelta(
                seconds=core.settings.second_factor_flow_lifetime_seconds),
            "failed_attempts": 0, "detail": detail}

    def opening(self, account: Account, ctx: RequestContext, detail: dict[str, Any], *,
                trusted: bool, identifier: str | None = None,
                second_factor: bool = False) -> LoginRecord:
        """The rows of a completed login, to write in one unit of work: its session, its
        event and, unless the browser is ``trusted`` (it holds the account's device cookie),
        the new-device notice."""
        core = self.core
        token, session = core.sessions.new(account.id, ctx, second_factor=second_factor)
        event = core.events.values(kind=EventKind.LOGIN, outcome=OK, ctx=ctx,
                                   account_id=account.id, identifier=identifier, detail=detail)
        return LoginRecord(token, event["reference"],
                           ((Session.__table__, session), (AuthEvent.__table__, event)),
                           None if trusted else self.alarm.notice(account, ctx))

    async def open_session(self, db: AsyncSession, account: Account, ctx: RequestContext,
                           detail: dict[str, Any]) -> tuple[str, str]:
        """:meth:`opening` written in the caller's transaction (``detail["trusted_device"]``
        says whether the browser is known); the token and the reference."""
        opening = self.opening(
            account, ctx, detail, trusted=bool(detail.get("trusted_device")),
            second_factor=bool(detail.get("second_factor")) or detail.get("method") == "passkey")
        await db.run_sync(lambda session: opening.write(session.connection()))
        if opening.notice is not None:
            self.core.notifier.wake_after_commit(db)
        assert opening.token is not None  # an opening always has its session
        return opening.token, opening.reference

    async def second_factor(self, *, flow: str, method: str, code: Any,
                            ctx: RequestContext) -> LoginResult:
        """Finish a login with a second factor. Wrong entries count in the flow's own lane
        (``second_factor_max_attempts``), apart from password failures; then it is dead."""
        core = self.core
        await core.limiter.hit(Action.CODE_VERIFY, ip=ctx.ip)
        async with core.db.transaction() as db:
            stage, account = await self._stage(db, flow)
            if method not in await self._methods(db, account):
                raise SekishoError("request.invalid", field="method",
                                   params={"reason": "method_unavailable"})
            error = None
            if not await self.factors.check(db, account, method, code):
                error = await self._wrong_second_factor(db, stage)
            elif not await self._complete(db, stage):
                # A racing request finished this login first: roll back, so this code is
                # not used up for nothing.
                raise SekishoError("login.flow_expired")
            detail = {**{k: v for k, v in stage.detail.items() if k != "notice_list"},
                      "second_factor": method}
            if error is None:
                token, reference = await self.open_session(db, account, ctx, detail)
            else:
                event = await core.events.record(db, kind=EventKind.LOGIN, outcome=error.code,
                                                 ctx=ctx, account_id=account.id, detail=detail)
        if error is not None:
            error.reference = event.reference
            raise error
        return LoginResult(token, account, reference, core.devices.issue(account.id),
                           stage.detail.get("notice_list", []))

    async def enrol_totp(self, *, flow: str, name: str) -> tuple[int, Provisioning]:
        """The enrolment stage: a new authenticator app for the account logging in."""
        async with self.core.db.read() as db:
            _, account = await self._stage(db, flow, enrol=True)
        return await self.factors.start_totp(account, name)

    async def pending_enrolment(self, *, flow: str, authenticator_id: int) -> Provisioning:
        """The enrolment stage's app again (its QR code and key), after a wrong code."""
        async with self.core.db.read() as db:
            _, account = await self._stage(db, flow, enrol=True)
        return await self.factors.pending_totp(account, authenticator_id)

    async def finish_enrolment(self, *, flow: str, authenticator_id: int, code: str,
                               ctx: RequestContext) -> tuple[LoginResult, list[str]]:
        """Confirm the app with its first code, then finish the login. Returns the session
        and the recovery codes to show once."""
        core = self.core
        # One transaction: the app is never confirmed (its recovery codes made and lost)
        # without the session, and of two racing confirmations one wins.
        async with core.db.transaction() as db:
            stage, account = await self._stage(db, flow, enrol=True)
            codes = await self.factors.confirm_totp_in(db, account, authenticator_id, code,
                                                       ctx) or []
            if not await self._complete(db, stage):
                raise SekishoError("login.flow_expired")
            detail = {**{k: v for k, v in stage.detail.items() if k != "notice_list"},
                      "second_factor": TOTP}
            token, reference = await self.open_session(db, account, ctx, detail)
        return LoginResult(token, account, reference, core.devices.issue(account.id),
                           stage.detail.get("notice_list", [])), codes

    async def passkey_options(self, flow: str) -> dict[str, Any]:
        """WebAuthn options for the second factor of this login, listing its passkeys."""
        async with self.core.db.transaction() as db:
            _, account = await self._stage(db, flow)
            return await self.factors.passkey_request(db, account.id)

    async def send_login_code(self, *, flow: str, ctx: RequestContext) -> None:
        """Text a login code for an open second-factor stage (where SMS is offered)."""
        core = self.core
        await core.limiter.hit(Action.CODE_SEND, ip=ctx.ip, key=f"flow:{token_hash(flow)}")
        async with core.db.transaction() as db:
            _, account = await self._stage(db, flow)
            await self.factors.send_sms(db, account)

    async def _stage(self, db: AsyncSession, flow: str,
                     enrol: bool = False) -> tuple[PendingLogin, Account]:
        """The open second-factor stage (or with ``enrol``, enrolment stage) behind
        ``flow``, or ``login.flow_expired``."""
        core = self.core
        stage = await db.scalar(
            select(PendingLogin).where(PendingLogin.token_hash == token_hash(flow)))
        if (stage is None or stage.completed_at is not None
                or bool(stage.detail.get("enrol")) != enrol
                or stage.expires_at <= core.clock.now()
                or stage.failed_attempts >= core.settings.second_factor_max_attempts):
            raise SekishoError("login.flow_expired")
        account = await db.get(Account, stage.account_id)
        assert account is not None
        if account.password_login_disabled_at is not None:
            # "This wasn't me" (or the failure cap) closes logins that passed the password.
            raise SekishoError("login.flow_expired")
        return stage, account

    async def _methods(self, db: AsyncSession, account: Account) -> list[str]:
        conn = await db.connection()
        return await conn.run_sync(lambda sync: self.factors.methods(sync, account))

    async def _wrong_second_factor(self, db: AsyncSession, stage: PendingLogin) -> SekishoError:
        """Count the wrong entry in the flow (in the database: concurrent ones all count)."""
        spent = int(await db.scalar(
            update(PendingLogin).where(PendingLogin.id == stage.id)
            .values(failed_attempts=PendingLogin.failed_attempts + 1)
            .returning(PendingLogin.failed_attempts)
            .execution_options(synchronize_session=False)) or 0)
        left = self.core.settings.second_factor_max_attempts - spent
        if left <= 0:
            return SekishoError("login.flow_expired")
        return SekishoError("second_factor.invalid_code", field="code",
                            extra={"attempts_left": left})

    async def _complete(self, db: AsyncSession, stage: PendingLogin) -> bool:
        """Close the stage; of two racing completions exactly one gets True."""
        result = await db.execute(
            update(PendingLogin)
            .where(PendingLogin.id == stage.id, PendingLogin.completed_at.is_(None))
            .values(completed_at=self.core.clock.now())
            .execution_options(synchronize_session=False))
        return bool(result.rowcount)  # type: ignore[attr-defined]
