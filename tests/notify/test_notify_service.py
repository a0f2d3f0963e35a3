"""Notifier: messages are outbox rows written in the caller's transaction."""

from __future__ import annotations

from datetime import timedelta

import pytest
from notify.notify_support import VERIFY_CONTEXT, Outbox

from sekisho.clock import FrozenClock
from sekisho.db import Database
from sekisho.notify.models import Channel, DeliveryState
from sekisho.notify.service import Notifier


async def test_email_is_queued_pending_and_due_now(
    outbox: Outbox, notifier: Notifier, clock: FrozenClock
) -> None:
    woken: list[bool] = []
    notifier.on_enqueue = lambda: woken.append(True)

    message_id = await outbox.email(to="hanako@example.test", account_id=7)
    row = await outbox.get(message_id)

    assert row.channel == Channel.EMAIL
    assert row.state == DeliveryState.PENDING
    assert row.attempts == 0
    assert row.next_attempt_at == clock.now() == row.created_at
    assert (row.recipient, row.template, row.locale, row.account_id) == (
        "hanako@example.test", "verify_email", "ja", 7,
    )
    assert row.subject == "【sekisho】メールアドレスの確認"
    assert row.body_text and "482913" in row.body_text
    assert row.body_html and "482913" in row.body_html
    assert woken == [True]


async def test_the_worker_is_woken_once_the_messages_are_committed(
    database: Database, notifier: Notifier, outbox: Outbox
) -> None:
    # Woken earlier, the worker would find nothing yet, and the mail would wait for its
    # next poll.
    woken: list[bool] = []
    notifier.on_enqueue = lambda: woken.append(True)
    async with database.transaction() as session:
        for to in ("a@example.test", "b@example.test"):
            await notifier.email(session, to=to, template="verify_email", locale="ja",
                                 context=dict(VERIFY_CONTEXT))
        assert woken == []
    assert woken == [True]
    assert len(await outbox.all()) == 2


async def test_message_rolls_back_with_the_change_that_caused_it(
    database: Database, notifier: Notifier, outbox: Outbox
) -> None:
    woken: list[bool] = []
    notifier.on_enqueue = lambda: woken.append(True)
    with pytest.raises(RuntimeError):
        async with database.transaction() as session:
            await notifier.email(
                session, to="a@example.test", template="verify_email", locale="ja",
                context=dict(VERIFY_CONTEXT),
            )
            raise RuntimeError("registration failed after the mail was queued")

    assert await outbox.all() == []
    assert woken == []  # nothing to deliver


async def test_sms_keeps_only_text_and_unknown_locale_is_stored_as_ja(
    database: Database, notifier: Notifier, outbox: Outbox, clock: FrozenClock
) -> None:
    clock.advance(timedelta(minutes=5).total_seconds())
    async with database.transaction() as session:
        message = await notifier.sms(
            session, to="+819012345678", template="sms_code", locale="fr",
            context={"code": "123456", "minutes": 10},
        )
    row = await outbox.get(message.id)

    assert row.channel == Channel.SMS and row.locale == "ja"
    assert row.subject is None and row.body_html is None
    assert row.body_text is not None and "確認コード: 123456" in row.body_text
    assert row.next_attempt_at == clock.now()


@pytest.mark.parametrize("to", ["", "a@example.test\r\nBcc: victim@example.test", "+81\x00"])
async def test_recipient_with_control_characters_is_refused(
    database: Database, notifier: Notifier, outbox: Outbox, to: str
) -> None:
    with pytest.raises(ValueError):
        async with database.transaction() as session:
            await notifier.email(
                session, to=to, template="verify_email", locale="ja", context=dict(VERIFY_CONTEXT)
            )
    assert await outbox.all() == []
