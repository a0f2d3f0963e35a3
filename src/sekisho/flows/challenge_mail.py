"""Mailing a one-time code and link together: the step registration and recovery share."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from sekisho.codes.models import Purpose
from sekisho.codes.service import Issued
from sekisho.core import Core
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
