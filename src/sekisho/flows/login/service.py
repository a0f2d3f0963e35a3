"""Password login.

```mermaid
stateDiagram-v2
    [*] --> identified: normalise identifier, look it up (unknown: dummy account)
    identified --> refused: password wrong (same answer, same hash cost for unknown)
    identified --> checked: password right
    checked --> refused: suspended / dormant / unverified (told only now)
    checked --> signed_in: rehash if parameters changed, new session token
```

Account state is revealed only after the password is right, so a stranger learns nothing
(ASVS 6.3.8). Hashing happens outside any database transaction: a login never holds a
connection (or SQLite's write lock) while argon2 runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sekisho.context import RequestContext
from sekisho.core import Core
from sekisho.errors import SekishoError
from sekisho.events.models import OK, EventKind
from sekisho.guard.limits import Action
from sekisho.identity.models import Account, AccountStatus, IdentifierKind
from sekisho.identity.normalize import normalise_password
from sekisho.identity.service import Match


@dataclass(frozen=True, slots=True)
class LoginResult:
    token: str
    account: Account
    reference: str
    notices: list[dict[str, Any]] = field(default_factory=list)
    """Things to tell the member now that they proved who they are (card replaced, ...)."""


class LoginFlow:
    def __init__(self, core: Core) -> None:
        self.core = core

    async def login(self, *, identifier: str, password: str, ctx: RequestContext) -> LoginResult:
        core = self.core
        ident = core.accounts.identify(identifier)
        secret = normalise_password(password)
        if not secret:
            raise SekishoError("request.invalid", field="password", params={"reason": "missing"})
        await core.limiter.hit(Action.LOGIN, ip=ctx.ip)
        async with core.db.read() as db:
            match = await core.accounts.find(db, ident)
        stored = match.account.password_hash if match else None
        verdict = await core.hasher.verify(stored, secret)
        account = match.account if match else None
        if not verdict.ok:
            await self._refuse("login.invalid_credentials", ident.value, account, ctx)
        assert match is not None and account is not None
        for status, code in ((AccountStatus.SUSPENDED, "account.suspended"),
                             (AccountStatus.DORMANT, "account.dormant")):
            if account.status == status:
                await self._refuse(code, ident.value, account, ctx)
        if not account.is_verified:
            await self._refuse("account.unverified", ident.value, account, ctx,
                               extra={"resend": "/api/v1/verifications/email/resend"})
        new_hash = await core.hasher.hash(secret) if verdict.needs_rehash else None
        notices = self._notices(match)
        async with core.db.transaction() as db:
            fresh = await db.get(Account, account.id)
            assert fresh is not None
            if new_hash:
                fresh.password_hash = new_hash
            token = await core.sessions.create(db, fresh, ctx)
            event = await core.events.record(
                db, kind=EventKind.LOGIN, outcome=OK, ctx=ctx, account_id=fresh.id,
                identifier=ident.value,
                detail={"identifier_kind": ident.kind.value, "rehashed": bool(new_hash),
                        "notices": [n["code"] for n in notices]})
        return LoginResult(token, fresh, event.reference, notices)

    async def _refuse(self, code: str, identifier: str, account: Account | None,
                      ctx: RequestContext, extra: dict[str, Any] | None = None) -> None:
        async with self.core.db.transaction() as db:
            event = await self.core.events.record(
                db, kind=EventKind.LOGIN, outcome=code, ctx=ctx,
                account_id=account.id if account else None, identifier=identifier)
        raise SekishoError(code, reference=event.reference, extra=extra)

    def _notices(self, match: Match) -> list[dict[str, Any]]:
        """A login with a reissued card's old number works, and says what replaced it."""
        if match.identifier.kind == IdentifierKind.CARD and not match.identifier.active:
            current = match.account.identifier(IdentifierKind.CARD)
            return [{"code": "card_replaced",
                     "new_card_last4": current.value[-4:] if current else None}]
        return []
