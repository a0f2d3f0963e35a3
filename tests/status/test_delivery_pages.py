"""The pages that wait for a code, while mail or SMS is delayed and after it recovers: the SMS
login step and the account page's email and phone confirmations, as a browser gets them."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pyotp
import pytest
from conftest import make_client
from notify.notify_support import Outbox, SmsSink, SmtpSink
from support.pages import csrf_of

from sekisho.notify.models import Channel
from sekisho.notify.worker import backoff

PHONE_TYPED = "090-1234-5678"
DELAYED = 'data-delivery-delayed="{}"'


@pytest.fixture
def settings_overrides(smtp_sink: SmtpSink, sms_sink: SmsSink) -> dict[str, Any]:
    return {"smtp_url": smtp_sink.url, "sms_webhook_url": sms_sink.url,
            "sms_second_factor": True}


async def worker_passes(app, clock, settings, done: Callable[[], bool]) -> None:
    """Outbox passes, each once the previous attempt's backoff has run out, until ``done()``."""
    for attempts in range(1, settings.outbox_max_attempts):
        await app.state.worker.run_once()
        if done():
            return
        clock.advance(backoff(settings, attempts).total_seconds())
    raise AssertionError("the delivery health never changed")


async def delay(app, core, clock, settings, channel: Channel) -> None:
    """Deliver one message on ``channel``, whose server is down, until it shows as delayed."""
    outbox = Outbox(core.db, core.notifier)
    await (outbox.email() if channel is Channel.EMAIL else outbox.sms())
    health = app.state.worker.health[channel]
    await worker_passes(app, clock, settings, lambda: health.delayed)


async def recover(app, clock, settings, channel: Channel) -> None:
    health = app.state.worker.health[channel]
    await worker_passes(app, clock, settings, lambda: not health.delayed)


async def log_in(client, member):
    page = await client.get("/login")
    return await client.post("/login", data={
        "csrf_token": csrf_of(page.text), "identifier": member.email,
        "password": member.password})


async def with_phone_and_app(app, factory, clock, sms_sink: SmsSink):
    """A member with a verified phone and an authenticator app, set up through the API (from
    another client: an API login sets the session cookie too)."""
    member = await factory.member()
    async with make_client(app) as client:
        await _add_phone_and_app(app, client, member, clock, sms_sink)
    return member


async def _add_phone_and_app(app, client, member, clock, sms_sink: SmsSink) -> None:
    signed_in = await client.post("/api/v1/login", json={"identifier": member.email,
                                                         "password": member.password})
    auth = {"Authorization": f"Bearer {signed_in.json()['session_token']}"}
    asked = await client.post("/api/v1/account/phone", headers=auth, json={"phone": PHONE_TYPED})
    assert asked.status_code == 202, asked.text
    await app.state.worker.run_once()
    code = re.search(r"\d{6}", sms_sink.requests[-1].json["body"]).group(0)
    confirmed = await client.post("/api/v1/account/phone/confirm", headers=auth,
                                  json={"code": code})
    assert confirmed.status_code == 200, confirmed.text
    started = await client.post("/api/v1/account/second-factors/totp", headers=auth,
                                json={"name": "iPhone"})
    body = started.json()
    enrolled = await client.post(body["confirm"], headers=auth,
                                 json={"code": pyotp.TOTP(body["secret"]).at(clock.now())})
    assert enrolled.status_code == 200, enrolled.text


async def test_the_sms_login_step_says_sms_codes_are_delayed(app, core, client, factory, clock,
                                                             settings, sms_sink):
    member = await with_phone_and_app(app, factory, clock, sms_sink)
    sms_sink.status = 500
    await delay(app, core, clock, settings, Channel.SMS)

    stage = await log_in(client, member)
    assert stage.status_code == 200 and 'data-form="second-factor-sms"' in stage.text
    assert DELAYED.format("sms") in stage.text and DELAYED.format("email") not in stage.text
    flow = re.search(r'name="flow" value="([^"]+)"', stage.text).group(1)
    texted = await client.post("/login/mfa/sms", data={
        "csrf_token": csrf_of(stage.text), "flow": flow, "methods": "totp,recovery_code,sms"})
    assert texted.status_code == 200 and 'data-notice="login_code_sent"' in texted.text
    assert DELAYED.format("sms") in texted.text

    sms_sink.status = 200
    await recover(app, clock, settings, Channel.SMS)
    again = await log_in(client, member)
    assert again.status_code == 200 and 'data-form="second-factor-sms"' in again.text
    assert "data-delivery-delayed" not in again.text


async def test_account_confirmations_say_their_channel_is_delayed(
        app, core, client, factory, clock, settings, smtp_sink, sms_sink):
    member = await factory.member()
    assert (await log_in(client, member)).status_code == 303
    smtp_sink.stop()
    sms_sink.status = 500
    await delay(app, core, clock, settings, Channel.EMAIL)
    await delay(app, core, clock, settings, Channel.SMS)

    email = await client.get("/account", params={"pending": "email"})
    assert 'data-form="email-confirm"' in email.text
    assert DELAYED.format("email") in email.text and DELAYED.format("sms") not in email.text
    phone = await client.get("/account", params={"pending": "phone", "lang": "en"})
    assert 'data-form="phone-confirm"' in phone.text
    assert DELAYED.format("sms") in phone.text and DELAYED.format("email") not in phone.text
    assert "SMS codes are delayed right now" in phone.text
    # Nobody waits for a code on the plain account page.
    assert "data-delivery-delayed" not in (await client.get("/account")).text

    smtp_sink.start()
    sms_sink.status = 200
    await recover(app, clock, settings, Channel.EMAIL)
    await recover(app, clock, settings, Channel.SMS)
    for pending, form in (("email", "email-confirm"), ("phone", "phone-confirm")):
        page = await client.get("/account", params={"pending": pending})
        assert f'data-form="{form}"' in page.text and "data-delivery-delayed" not in page.text
