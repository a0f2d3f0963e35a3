"""One-time codes and links in the flows: mailing a code and link together, and acting on
a link (the steps registration, recovery, unlock and "this wasn't me" share)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from sekisho.codes.models import Challenge, Purpose
from sekisho.codes.service import Issued
from sekisho.context import RequestContext
from sekisho.core import Core
from sekisho.errors import SekishoError
from sekisho.events.models import EventKind
from sekisho.identity.models import Account


async def mail_code_and_link(core: Core, db: AsyncSession, account: Account, *,
                             purpose: Purpose, template: str, path: str,
                             lifetime_seconds: int, to: str | None = None,
                             **context: Any) -> Issued:
    """Issue a challenge (superseding older ones) and queue the mail carrying it.

    The link is ``<base_url><path>?token=...``; both go out in the caller's transaction,
    to ``to`` if given, else to the account's address.
    """
    to = to or account.email
    issued = await core.challenges.issue(db, account_id=account.id, purpose=purpose,
                                         target=to, lifetime_seconds=lifetime_seconds)
    await core.notifier.email(
        db, to=to, template=template, locale=account.locale, account_id=account.id,
        context={"display_name": account.display_name, "code": issued.code,
                 "link": f"{core.settings.base_url}{path}?token={issued.token}",
                 "minutes": lifetime_seconds // 60, **context})
    return issued


@contextlib.asynccontextmanager
async def redeemed_link(core: Core, purpose: Purpose, token: str, ctx: RequestContext,
                        kind: EventKind) -> AsyncIterator[tuple[AsyncSession, Challenge]]:
    """Use a one-time link and act on it in one transaction: if the action fails, the link
    stays unused. A refusal (``link.used``, ``link.expired``, ... or the action's own error)
    is recorded as a ``kind`` event, whose reference the error then carries."""
    try:
        async with core.db.transaction() as db:
            yield db, await core.challenges.redeem_token(db, purpose, token)
    except SekishoError as error:
        if error.reference is None:
            async with core.db.transaction() as db:
                event = await core.events.record(db, kind=kind, outcome=error.code, ctx=ctx)
            error.reference = event.reference
        raise
