"""An email or SMS window holds that channel's outbox until it ends (notify/worker.py snippet)."""

from __future__ import annotations

import inspect
from datetime import timedelta

import pytest
from maintenance.maintenance_support import tokyo, weekly
from sqlalchemy import select

from sekisho.notify.models import Channel, DeliveryState, OutboxMessage
from sekisho.notify.worker import OutboxWorker
from sekisho.status.components import Component

pytestmark = pytest.mark.skipif(
    "held" not in inspect.signature(OutboxWorker).parameters,
    reason="OutboxWorker(held=...) arrives with the notify/worker.py hand-over snippet")


async def queue(core, channel: Channel, to: str) -> None:
    now = core.clock.now()
    async with core.db.transaction() as db:
        db.add(OutboxMessage(channel=channel, recipient=to, template="test", locale="ja",
                             body_text="123456", state=DeliveryState.PENDING, attempts=0,
                             created_at=now, next_attempt_at=now))


async def states(core) -> dict[str, str]:
    async with core.db.transaction() as db:
        rows = (await db.scalars(select(OutboxMessage))).all()
    return {row.channel: row.state for row in rows}


async def test_sms_waits_for_the_end_of_an_sms_window(app, core, schedule, clock):
    await schedule.add(weekly(6, 23, 0, timedelta(hours=8), Component.SMS))
    clock.set(tokyo(2026, 1, 12, 2, 0))
    await queue(core, Channel.SMS, "+819012345678")
    await queue(core, Channel.EMAIL, "member@example.jp")
    worker = app.state.worker
    assert await worker.run_once() == 1
    assert await states(core) == {"sms": "pending", "email": "sent"}
    clock.set(tokyo(2026, 1, 12, 7, 0))
    assert await worker.run_once() == 1
    assert await states(core) == {"sms": "sent", "email": "sent"}
