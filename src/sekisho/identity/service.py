"""Finding and creating accounts. Every lookup goes through :mod:`sekisho.identity.normalize`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, Select, bindparam, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import configure_mappers
from sqlalchemy.orm.instrumentation import manager_of_class

from sekisho.clock import Clock, TokenSource
from sekisho.identity.models import Account, Identifier, IdentifierKind, Role
from sekisho.identity.normalize import (
    NormalisedIdentifier,
    normalise_email,
    normalise_identifier,
    normalise_phone,
)

_MEMBER_ID_TRIES = 8

# The hot paths' statements, built once: an account with its identifiers (a row each), found
# by its id or by one of its identifiers (``_MATCHED``, its id first).
_ACCOUNTS, _IDS = Account.__table__, Identifier.__table__
_MATCHED = _IDS.alias("matched")
_BY_ID = (select(_ACCOUNTS, _IDS)
          .join_from(_ACCOUNTS, _IDS, _IDS.c.account_id == _ACCOUNTS.c.id, isouter=True)
          .where(_ACCOUNTS.c.id == bindparam("account_id")).order_by(_IDS.c.id))
_BY_IDENTIFIER = (select(_MATCHED.c.id, _ACCOUNTS, _IDS)
                  .join_from(_MATCHED, _ACCOUNTS, _ACCOUNTS.c.id == _MATCHED.c.account_id)
                  .join(_IDS, _IDS.c.account_id == _ACCOUNTS.c.id)
                  .where(_MATCHED.c.kind == bindparam("kind"),
                         _MATCHED.c.value == bindparam("value"))
                  .order_by(_IDS.c.id))
_ACCOUNT_KEYS = [c.key for c in _ACCOUNTS.c]
_IDENTIFIER_KEYS = [c.key for c in _IDS.c]
_LOOKUP_WIDTH = 1 + len(_ACCOUNT_KEYS) + len(_IDENTIFIER_KEYS)
_ACCOUNT_CLASS, _IDENTIFIER_CLASS = manager_of_class(Account), manager_of_class(Identifier)


@dataclass(frozen=True, slots=True)
class Match:
    account: Account
    identifier: Identifier
    extra: tuple[Any, ...] = ()
    """The values of the ``extra`` columns :meth:`AccountService.lookup` was asked for."""


class AccountService:
    def __init__(self, clock: Clock, tokens: TokenSource, *,
                 email_local_case_sensitive: bool = False, phone_region: str = "JP") -> None:
        self._clock = clock
        self._tokens = tokens
        self._email_case = email_local_case_sensitive
        self._phone_region = phone_region

    def identify(self, raw: str) -> NormalisedIdentifier:
        """Any login identifier as typed, normalised with this deployment's settings."""
        return normalise_identifier(raw, email_local_case_sensitive=self._email_case,
                                    phone_region=self._phone_region)

    def email_address(self, raw: str) -> NormalisedIdentifier:
        """An input that must be an email address, normalised with this deployment's settings."""
        return normalise_email(raw, email_local_case_sensitive=self._email_case)

    def phone_number(self, raw: str) -> NormalisedIdentifier:
        """An input that must be a phone number, as E.164 (this deployment's default region)."""
        return normalise_phone(raw, region=self._phone_region)

    async def find(self, db: AsyncSession, ident: NormalisedIdentifier) -> Match | None:
        """The account an identifier leads to, including retired ones (an old card number)."""
        row = (await db.execute(
            select(Identifier, Account).join(Account, Account.id == Identifier.account_id)
            .where(Identifier.kind == ident.kind, Identifier.value == ident.value)
        )).first()
        return Match(row[1], row[0]) if row else None

    def lookup(self, conn: Connection, ident: NormalisedIdentifier,
               statement: Select[Any] = _BY_IDENTIFIER) -> Match | None:
        """:meth:`find` as one plain statement, for the login hot path (``Database.run``).

        ``statement`` may be one of :func:`lookup_with`, to read more in the same statement.
        """
        rows = conn.execute(statement, {"kind": ident.kind, "value": ident.value}).all()
        if not rows:
            return None
        account = _account(rows, 1)
        matched = rows[0][0]
        return Match(account, next(i for i in account.identifiers if i.id == matched),
                     tuple(rows[0][_LOOKUP_WIDTH:]))

    async def by_member_id(self, db: AsyncSession, member_id: str) -> Account | None:
        return await db.scalar(select(Account).where(Account.member_id == member_id))

    async def create(self, db: AsyncSession, *, email: NormalisedIdentifier,
                     password_hash: str | None, display_name: str | None, locale: str,
                     verified: bool = False, role: Role = Role.MEMBER) -> Account:
        """Insert an account with its email and member-ID identifiers.

        Raises :class:`IntegrityError` if the email is already taken (a concurrent
        registration won the race); callers treat that as "address already registered".
        """
        now = self._clock.now()
        member_id = await self._free_member_id(db)
        account = Account(
            member_id=member_id, email=email.display, display_name=display_name,
            password_hash=password_hash, locale=locale, role=role,
            email_verified_at=now if verified else None,
            password_changed_at=now if password_hash else None,
            created_at=now, updated_at=now,
        )
        db.add(account)
        await db.flush()
        db.add_all([
            Identifier(account_id=account.id, kind=IdentifierKind.EMAIL, value=email.value,
                       created_at=now, verified_at=now if verified else None),
            Identifier(account_id=account.id, kind=IdentifierKind.MEMBER_ID, value=member_id,
                       created_at=now, verified_at=now),
        ])
        await db.flush()
        await db.refresh(account, ["identifiers"])
        return account

    async def add_card(self, db: AsyncSession, account: Account, card_number: str) -> Identifier:
        """Attach a card; a previous card becomes history (inactive but still reserved)."""
        now = self._clock.now()
        for old in account.identifiers:
            if old.kind == IdentifierKind.CARD and old.active:
                old.active = False
                old.retired_at = now
        card = Identifier(account_id=account.id, kind=IdentifierKind.CARD, value=card_number,
                          created_at=now, verified_at=now)
        db.add(card)
        await db.flush()
        await db.refresh(account, ["identifiers"])
        return card

    async def replace_contact(self, db: AsyncSession, account: Account, kind: IdentifierKind,
                              value: NormalisedIdentifier | None) -> None:
        """Make ``value`` the account's (verified) email or phone, or remove the phone.

        The old identifier is deleted, not kept as history like a card number: an address or
        number someone gave up must neither log in to this account nor stay reserved (phone
        numbers are reassigned by carriers). The "this wasn't me" link remembers it instead.
        """
        now = self._clock.now()
        await db.execute(delete(Identifier).where(Identifier.account_id == account.id,
                                                  Identifier.kind == kind))
        if value is not None:
            db.add(Identifier(account_id=account.id, kind=kind, value=value.value,
                              created_at=now, verified_at=now))
        if kind == IdentifierKind.EMAIL and value is not None:
            account.email = value.display
            account.email_verified_at = now
        account.updated_at = now
        await db.flush()
        await db.refresh(account, ["identifiers"])

    async def _free_member_id(self, db: AsyncSession) -> str:
        for _ in range(_MEMBER_ID_TRIES):
            candidate = self._tokens.member_id()
            taken = await db.scalar(select(Account.id).where(Account.member_id == candidate))
            if taken is None:
                return candidate
        raise IntegrityError("member id space exhausted", None, Exception())  # pragma: no cover


def lookup_with(*extra: ColumnElement[Any]) -> Select[Any]:
    """The lookup by identifier with ``extra`` columns (correlated to the account's row):
    for :meth:`AccountService.lookup`, which hands their values back in :attr:`Match.extra`.
    Build it once: each statement is compiled once and cached."""
    return _BY_IDENTIFIER.add_columns(*extra)


def load_account(conn: Connection, account_id: int) -> Account | None:
    """An account with all its identifiers, read with one plain statement for the hot paths
    (``Database.run``): detached objects, no unit of work behind them."""
    rows = conn.execute(_BY_ID, {"account_id": account_id}).all()
    return _account(rows, 0) if rows else None


def _account(rows: Sequence[Row[Any]], start: int) -> Account:
    """The account of rows from ``_BY_ID`` or ``_BY_IDENTIFIER`` (its columns from ``start``),
    with its identifiers.

    The objects are filled as the ORM's own loader fills them, straight into their
    ``__dict__``: building them through their constructors (an attribute event per column)
    cost more than the statement.
    """
    if not _ACCOUNT_CLASS.mapper.configured:
        configure_mappers()  # what a constructor would do first
    middle = start + len(_ACCOUNT_KEYS)
    end = middle + len(_IDENTIFIER_KEYS)
    account = _ACCOUNT_CLASS.new_instance()
    account.__dict__.update(zip(_ACCOUNT_KEYS, rows[0][start:middle], strict=True))
    identifiers = []
    for row in rows:
        if row[middle] is None:  # _BY_ID's outer join: an account without identifiers
            continue
        identifier = _IDENTIFIER_CLASS.new_instance()
        identifier.__dict__.update(zip(_IDENTIFIER_KEYS, row[middle:end], strict=True))
        identifier.__dict__["account"] = account
        identifiers.append(identifier)
    account.__dict__["identifiers"] = identifiers
    return account


def context_words(account: Account | None, email: NormalisedIdentifier | None = None,
                  display_name: str | None = None) -> list[str]:
    """Words a password must not be built from: the member's own details (ASVS 6.2.11)."""
    words: list[str] = []
    if email is not None:
        words.append(email.display.split("@", 1)[0])
    if account is not None:
        words += [account.email.split("@", 1)[0], account.member_id]
        if account.display_name:
            words.append(account.display_name)
    if display_name:
        words.append(display_name)
    return [w for w in words if w]
