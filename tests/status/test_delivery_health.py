"""Automatic degradation: deliveries that keep failing show email or SMS as delayed on
``/status`` and on the pages that wait for a code, and clear by themselves on recovery."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from xml.etree import ElementTree as ET

import pytest
from asgi_lifespan import LifespanManager
from notify.notify_support import VERIFY_CONTEXT, SmsSink, SmtpSink

from sekisho.app import create_app
from sekisho.clock import FrozenClock
from sekisho.notify.models import Channel, DeliveryState, OutboxMessage
from sekisho.notify.worker import backoff
from sekisho.settings import Settings
from sekisho.status.board import DELAY_MESSAGES, DELAY_NOTICES
from sekisho.status.delivery import (
    ChannelHealth,
    DeliveryMonitor,
    DeliveryPolicy,
    SharedDeliveryHealth,
)

A = "{http://www.w3.org/2005/Atom}"


@pytest.fixture
def settings_overrides(smtp_sink: SmtpSink, sms_sink: SmsSink) -> dict[str, Any]:
    return {"smtp_url": smtp_sink.url, "sms_webhook_url": sms_sink.url}


async def enqueue(core, channel: Channel) -> int:
    async with core.db.transaction() as session:
        if channel is Channel.EMAIL:
            message = await core.notifier.email(session, to="hanako@example.jp",
                                                template="verify_email", locale="ja",
                                                context=dict(VERIFY_CONTEXT))
        else:
            message = await core.notifier.sms(session, to="+819012345678", template="sms_code",
                                              locale="ja", context={"code": "123456",
                                                                    "minutes": 10})
    return message.id


async def component(client, name: str) -> dict[str, Any]:
    body = (await client.get("/status.json")).json()
    return next(c for c in body["components"] if c["id"] == name)


async def attempt(app, clock: FrozenClock, settings: Settings, attempts: int) -> None:
    """Let the message's backoff run out, then one worker pass (one delivery attempt)."""
    if attempts:
        clock.advance(backoff(settings, attempts).total_seconds())
    assert await app.state.worker.run_once() == 1


async def row(core, message_id: int) -> OutboxMessage:
    async with core.db.read() as session:
        found = await session.get(OutboxMessage, message_id)
        assert found is not None
        return found


async def test_email_turns_delayed_after_three_failures_and_recovers(
        app, core, client, clock, settings, smtp_sink, board):
    smtp_sink.stop()
    message_id = await enqueue(core, Channel.EMAIL)

    for attempts in range(2):
        await attempt(app, clock, settings, attempts)
        email = await component(client, "email")
        assert (email["state"], email["message"]) == ("operational", None)
        assert board.delivery_delays("email") == []
    await attempt(app, clock, settings, 2)
    failed_at = clock.now()

    assert app.state.worker.health[Channel.EMAIL].consecutive_failures == 3
    email = await component(client, "email")
    assert email["state"] == "degraded"
    assert email["message"]["en"] == "Email is delayed"
    assert email["since"] == failed_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert email["incidents"] == []
    body = (await client.get("/status.json")).json()
    assert body["status"] == "degraded"
    assert (await component(client, "sms"))["state"] == "operational"
    # Pages waiting for a code say so (the Jinja global ``delivery_delays``).
    assert board.delivery_delays("email", "sms") == [("email", DELAY_NOTICES[Channel.EMAIL])]
    page = await client.get("/status", params={"lang": "en"})
    assert 'data-component="email" data-state="degraded"' in page.text
    assert DELAY_MESSAGES[Channel.EMAIL] in page.text
    feed = ET.fromstring((await client.get("/status.atom", params={"lang": "en"})).content)
    titles = [e.findtext(f"{A}title") for e in feed.findall(f"{A}entry")]
    assert titles == [DELAY_MESSAGES[Channel.EMAIL]]

    # More failures keep it delayed since the first time it crossed the threshold.
    await attempt(app, clock, settings, 3)
    assert (await component(client, "email"))["since"] == email["since"]

    smtp_sink.start()
    await attempt(app, clock, settings, 4)
    assert (await row(core, message_id)).state == DeliveryState.SENT
    assert len(smtp_sink.handler.envelopes) == 1
    email = await component(client, "email")
    assert (email["state"], email["message"], email["since"]) == ("operational", None, None)
    assert board.delivery_delays("email") == []
    feed = ET.fromstring((await client.get("/status.atom")).content)
    assert feed.findall(f"{A}entry") == []


async def test_sms_gateway_errors_delay_sms_only(app, core, client, clock, settings, sms_sink):
    sms_sink.status = 500
    await enqueue(core, Channel.SMS)
    for attempts in range(3):
        await attempt(app, clock, settings, attempts)
    sms = await component(client, "sms")
    assert (sms["state"], sms["message"]["en"]) == ("degraded", "SMS codes are delayed")
    assert (await component(client, "email"))["state"] == "operational"

    sms_sink.status = 200
    await attempt(app, clock, settings, 3)
    assert (await component(client, "sms"))["state"] == "operational"


# --- the streak rules, without servers ----------------------------------------------------


def test_streaks_follow_the_policy(clock):
    policy = DeliveryPolicy(degraded_after_failures=2, recovered_after_successes=2)
    health = ChannelHealth()
    health.note_failure(clock.now(), "refused", policy)
    assert not health.delayed
    health.note_success(clock.now(), policy)
    health.note_failure(clock.now(), "refused", policy)  # the streak started again
    assert not health.delayed
    clock.advance(60)
    health.note_failure(clock.now(), "refused", policy)
    assert health.delayed and health.degraded_since == clock.now()
    health.note_success(clock.now(), policy)
    assert health.delayed  # one success is not enough for this policy
    health.note_failure(clock.now(), "refused", policy)
    health.note_success(clock.now(), policy)
    health.note_success(clock.now(), policy)
    assert not health.delayed and health.consecutive_failures == 0


def test_policy_defaults_come_from_settings():
    assert DeliveryPolicy.from_settings(Settings()) == DeliveryPolicy(3, 1)


# --- several processes, through Redis -----------------------------------------------------


async def test_processes_share_delivery_health_through_redis(redis_url, clock):
    policy = DeliveryPolicy()
    worker_process = SharedDeliveryHealth(redis_url, policy)
    web_process = SharedDeliveryHealth(redis_url, policy)
    idle_local = {channel: ChannelHealth() for channel in Channel}
    monitor = DeliveryMonitor(idle_local, web_process, clock)
    try:
        for _ in range(3):
            await worker_process.record(Channel.SMS, clock.now(), ok=False)
            clock.advance(30)
        current = await monitor.current()
        assert current[Channel.SMS].delayed and not current[Channel.EMAIL].delayed
        assert current[Channel.SMS].consecutive_failures == 3
        assert current[Channel.SMS].degraded_since == clock.now() - timedelta(seconds=30)
        assert monitor.delayed(Channel.SMS)  # the synchronous view uses the fresh copy

        await worker_process.record(Channel.SMS, clock.now(), ok=True)
        assert not (await monitor.current())[Channel.SMS].delayed
    finally:
        await worker_process.close()
        await web_process.close()


async def test_unreachable_redis_falls_back_to_this_process(clock):
    shared = SharedDeliveryHealth("redis://127.0.0.1:1/0", DeliveryPolicy())
    local = {channel: ChannelHealth() for channel in Channel}
    local[Channel.EMAIL].degraded_since = clock.now()
    monitor = DeliveryMonitor(local, shared, clock)
    try:
        assert (await monitor.current())[Channel.EMAIL].delayed
        assert monitor.delayed(Channel.EMAIL)
    finally:
        await shared.close()


async def test_worker_counts_into_redis_when_configured(tmp_path, database_url, redis_url,
                                                        clock):
    settings = Settings(data_dir=tmp_path / "var", database_url=database_url,
                        secret_key="test-secret", run_outbox_worker=False, redis_url=redis_url,
                        sms_webhook_url="http://127.0.0.1:1/sms",
                        argon2_memory_kib=1024, argon2_time_cost=1, argon2_parallelism=1)
    app = create_app(settings, clock=clock)
    async with LifespanManager(app):
        core = app.state.core
        await enqueue(core, Channel.SMS)
        for attempts in range(3):
            await attempt(app, clock, settings, attempts)
        shared = app.state.worker.shared_health
        assert shared is not None
        assert (await shared.read())[Channel.SMS].delayed
        # A second process, with no worker of its own, agrees.
        other = SharedDeliveryHealth(redis_url, DeliveryPolicy())
        try:
            monitor = DeliveryMonitor({c: ChannelHealth() for c in Channel}, other, clock)
            assert (await monitor.current())[Channel.SMS].delayed
        finally:
            await other.close()
    await app.state.worker.close()
