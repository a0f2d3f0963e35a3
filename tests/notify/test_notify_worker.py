"""OutboxWorker against real servers: delivery, outages, retries, leases and the loop."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from datetime import timedelta
from pathlib import Path

import pytest
from notify.notify_support import Outbox, SmsSink, SmtpSink, free_port

from sekisho.clock import FrozenClock
from sekisho.db import Database
from sekisho.models import Base
from sekisho.notify.models import Channel, DeliveryState, OutboxMessage
from sekisho.notify.service import Notifier
from sekisho.notify.transports import SmsWebhookTransport, SmtpTransport
from sekisho.notify.worker import OutboxWorker, backoff
from sekisho.settings import Settings

SENDER = "sekisho <no-reply@example.test>"


def smtp_worker(
    database: Database, settings: Settings, clock: FrozenClock, url: str
) -> OutboxWorker:
    return OutboxWorker(database, settings, clock, {Channel.EMAIL: SmtpTransport(url, SENDER)})


async def test_smtp_delivery_in_japanese_then_bodies_are_scrubbed(
    database: Database, settings: Settings, clock: FrozenClock, outbox: Outbox,
    smtp_sink: SmtpSink,
) -> None:
    message_id = await outbox.email(to="hanako@example.test")
    worker = smtp_worker(database, settings, clock, smtp_sink.url)

    assert await worker.run_once() == 1

    (envelope,) = smtp_sink.handler.envelopes
    assert envelope.rcpt_tos == ["hanako@example.test"]
    assert envelope.mail_from == "no-reply@example.test"
    (mail,) = smtp_sink.messages()
    assert mail["Subject"] == "【sekisho】メールアドレスの確認"
    assert mail["X-Sekisho-Template"] == "verify_email"
    text, html = mail.get_body(("plain",)), mail.get_body(("html",))
    assert text is not None and html is not None
    assert "確認コード: 482913" in text.get_content()
    assert "482913" in html.get_content() and '<html lang="ja">' in html.get_content()

    row = await outbox.get(message_id)
    assert row.state == DeliveryState.SENT and row.sent_at == clock.now()
    assert row.attempts == 1 and row.last_error is None
    assert row.body_text is None and row.body_html is None
    assert row.subject == "【sekisho】メールアドレスの確認"  # no secret in it; kept for support
    assert worker.health[Channel.EMAIL].last_success_at == clock.now()
    # Delivered once: nothing is due any more.
    assert await worker.run_once() == 0
    assert len(smtp_sink.handler.envelopes) == 1


async def test_english_mail_and_bodies_kept_when_scrubbing_is_off(
    database: Database, settings: Settings, clock: FrozenClock, outbox: Outbox,
    smtp_sink: SmtpSink,
) -> None:
    keep = settings.model_copy(update={"outbox_scrub_after_delivery": False})
    message_id = await outbox.email(locale="en")

    assert await smtp_worker(database, keep, clock, smtp_sink.url).run_once() == 1

    (mail,) = smtp_sink.messages()
    assert mail["Subject"] == "Confirm your email address for sekisho"
    assert mail["Content-Language"] == "en"
    row = await outbox.get(message_id)
    assert row.state == DeliveryState.SENT
    assert row.body_text is not None and "Confirmation code: 482913" in row.body_text


async def test_smtp_outage_backs_off_and_delivers_after_restart(
    database: Database, settings: Settings, clock: FrozenClock, outbox: Outbox,
    smtp_sink: SmtpSink,
) -> None:
    message_id = await outbox.email()
    worker = smtp_worker(database, settings, clock, smtp_sink.url)
    smtp_sink.stop()

    assert await worker.run_once() == 1

    row = await outbox.get(message_id)
    assert row.state == DeliveryState.PENDING and row.attempts == 1
    assert row.next_attempt_at == clock.now() + timedelta(seconds=5)
    assert row.last_error and "SMTP 127.0.0.1" in row.last_error
    assert row.body_text is not None  # not scrubbed: still to be sent
    assert worker.health[Channel.EMAIL].consecutive_failures == 1
    assert worker.health[Channel.EMAIL].last_failure_at == clock.now()
    clock.advance(4)
    assert await worker.run_once() == 0  # backing off

    clock.advance(1)
    smtp_sink.start()  # same port
    assert await worker.run_once() == 1

    row = await outbox.get(message_id)
    assert row.state == DeliveryState.SENT and row.attempts == 2
    assert len(smtp_sink.messages()) == 1
    assert worker.health[Channel.EMAIL].consecutive_failures == 0


async def test_sms_gateway_error_is_retried_and_every_post_is_signed(
    database: Database, settings: Settings, clock: FrozenClock, outbox: Outbox,
    sms_sink: SmsSink,
) -> None:
    secret = b"gateway-secret"
    worker = OutboxWorker(
        database, settings, clock, {Channel.SMS: SmsWebhookTransport(sms_sink.url, secret, clock)}
    )
    message_id = await outbox.sms(to="+819012345678", code="975310", locale="en")
    sms_sink.status = 500

    assert await worker.run_once() == 1
    row = await outbox.get(message_id)
    assert row.state == DeliveryState.PENDING and row.attempts == 1
    assert row.last_error == "SMS webhook answered HTTP 500"
    assert worker.health[Channel.SMS].consecutive_failures == 1
    assert worker.health[Channel.EMAIL].consecutive_failures == 0

    sms_sink.status = 200
    clock.advance(5)
    assert await worker.run_once() == 1

    assert (await outbox.get(message_id)).state == DeliveryState.SENT
    assert len(sms_sink.requests) == 2
    for request in sms_sink.requests:
        stamp = request.headers["X-Sekisho-Timestamp"]
        mac = hmac.new(secret, stamp.encode() + b"." + request.raw, hashlib.sha256).hexdigest()
        assert request.headers["X-Sekisho-Signature"] == f"sha256={mac}"
        assert request.json["to"] == "+819012345678"
        assert request.json["body"].startswith("Your sekisho code is 975310.")
    assert worker.health[Channel.SMS].consecutive_failures == 0


def test_backoff_doubles_and_caps(settings: Settings) -> None:
    delays = [backoff(settings, n).total_seconds() for n in range(1, 8)]
    assert delays == [5, 10, 20, 40, 60, 60, 60]
    assert backoff(settings, 10_000).total_seconds() == 60


async def test_gives_up_after_max_attempts_with_capped_backoff(
    database: Database, settings: Settings, clock: FrozenClock, outbox: Outbox
) -> None:
    tight = settings.model_copy(
        update={"outbox_backoff_max_seconds": 12, "outbox_max_attempts": 4}
    )
    worker = smtp_worker(database, tight, clock, f"smtp://127.0.0.1:{free_port()}")
    message_id = await outbox.email()

    waits = []
    for _ in range(3):
        assert await worker.run_once() == 1
        row = await outbox.get(message_id)
        assert row.state == DeliveryState.PENDING
        waits.append((row.next_attempt_at - clock.now()).total_seconds())
        clock.set(row.next_attempt_at)
    assert waits == [5, 10, 12]

    assert await worker.run_once() == 1
    row = await outbox.get(message_id)
    assert row.state == DeliveryState.FAILED and row.attempts == 4
    assert row.last_error
    assert worker.health[Channel.EMAIL].consecutive_failures == 4
    clock.advance(days=2)
    assert await worker.run_once() == 0


class _Hang:
    """A transport that never finishes: the worker process 'dies' mid-send."""

    def __init__(self) -> None:
        self.started = asyncio.Event()

    async def send(self, message: OutboxMessage) -> None:
        self.started.set()
        await asyncio.Event().wait()


async def test_message_claimed_by_a_dead_worker_is_sent_after_the_lease(
    database: Database, settings: Settings, clock: FrozenClock, outbox: Outbox,
    smtp_sink: SmtpSink,
) -> None:
    message_id = await outbox.email()
    hang = _Hang()
    doomed = OutboxWorker(database, settings, clock, {Channel.EMAIL: hang}, lease_seconds=90)
    task = asyncio.create_task(doomed.run_once())
    await asyncio.wait_for(hang.started.wait(), 5)
    task.cancel()  # the process dies after claiming, before recording anything
    with pytest.raises(asyncio.CancelledError):
        await task

    survivor = smtp_worker(database, settings, clock, smtp_sink.url)
    assert await survivor.run_once() == 0  # leased: not sent twice meanwhile
    assert (await outbox.get(message_id)).next_attempt_at == clock.now() + timedelta(seconds=90)
    clock.advance(90)
    assert await survivor.run_once() == 1

    row = await outbox.get(message_id)
    assert row.state == DeliveryState.SENT and row.attempts == 2
    assert len(smtp_sink.messages()) == 1


async def test_two_workers_never_send_the_same_message(
    database: Database, settings: Settings, clock: FrozenClock, outbox: Outbox, sms_sink: SmsSink
) -> None:
    for n in range(12):
        await outbox.sms(code=f"{n:06d}")
    second_db = Database(database.url)
    try:
        transports = {Channel.SMS: SmsWebhookTransport(sms_sink.url, b"k")}
        workers = [OutboxWorker(db, settings, clock, transports) for db in (database, second_db)]
        counts = await asyncio.gather(*(w.run_once() for w in workers))
    finally:
        await second_db.dispose()

    assert sum(counts) == 12
    codes = sorted(r.json["body"].split(": ")[1][:6] for r in sms_sink.requests)
    assert codes == [f"{n:06d}" for n in range(12)]
    assert {m.state for m in await outbox.all()} == {DeliveryState.SENT}


async def test_run_forever_is_woken_by_enqueue_and_survives_errors(
    tmp_path: Path, settings: Settings, clock: FrozenClock, sms_sink: SmsSink
) -> None:
    # No tables yet: the first pass fails, and the loop must carry on.
    database = Database(f"sqlite+aiosqlite:///{tmp_path}/late.db")
    notifier = Notifier(settings, clock)
    outbox = Outbox(database, notifier)
    worker = OutboxWorker(
        database, settings, clock, {Channel.SMS: SmsWebhookTransport(sms_sink.url, b"k")}
    )
    notifier.on_enqueue = worker.wake
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run_forever(stop))
    try:
        await asyncio.sleep(0.1)
        assert not task.done()
        async with database.engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        message_id = await outbox.sms()  # wakes the worker; poll interval is 30 s
        async with asyncio.timeout(5):
            while (await outbox.get(message_id)).state != DeliveryState.SENT:
                await asyncio.sleep(0.02)
        assert len(sms_sink.requests) == 1
    finally:
        stop.set()
        async with asyncio.timeout(2):
            await task  # stop ends the idle at once
        await database.dispose()
