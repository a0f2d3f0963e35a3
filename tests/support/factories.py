"""Build test data through the real services (no hand-written rows)."""

from __future__ import annotations

from dataclasses import dataclass

from sekisho.core import Core, build_core
from sekisho.identity.models import Account, AccountStatus, Role
from sekisho.identity.normalize import normalise_email
from sekisho.settings import Settings

DEFAULT_PASSWORD = "correct horse battery"


@dataclass
class Member:
    account_id: int
    member_id: str
    email: str
    password: str
    card: str | None = None


class Factory:
    def __init__(self, core: Core) -> None:
        self.core = core
        self._n = 0

    async def member(self, *, email: str | None = None, password: str = DEFAULT_PASSWORD,
                     verified: bool = True, card: str | None = None,
                     status: AccountStatus = AccountStatus.ACTIVE, display_name: str | None = None,
                     locale: str = "ja", role: Role = Role.MEMBER) -> Member:
        self._n += 1
        email = email or f"member{self._n}@example.jp"
        password_hash = await self.core.hasher.hash(password)
        async with self.core.db.transaction() as db:
            account = await self.core.accounts.create(
                db, email=normalise_email(email), password_hash=password_hash,
                display_name=display_name, locale=locale, verified=verified, role=role)
            account.status = status
            if card:
                await self.core.accounts.add_card(db, account, card)
        return Member(account.id, account.member_id, email, password, card)

    async def account(self, account_id: int) -> Account:
        async with self.core.db.transaction() as db:
            account = await db.get(Account, account_id)
            assert account is not None
            return account


async def seed_members(settings: Settings, emails: list[str], password: str) -> None:
    """Verified members sharing ``password``, made through the app's own services on the
    database a live server will use. The hash (at the settings' cost) is computed once."""
    core = build_core(settings)
    try:
        stored = await core.hasher.hash(password)
        async with core.db.transaction() as db:
            for email in emails:
                await core.accounts.create(db, email=normalise_email(email), password_hash=stored,
                                           display_name=None, locale="ja", verified=True)
    finally:
        await core.close()
