"""Recovery and forgot-ID reach a verified phone too, over the real transports.

Every message here leaves through the transports a deployment uses: mail over SMTP to a real
aiosmtpd server on loopback, SMS as a signed HTTP POST to a real HTTP server on loopback
(``notify.notify_support``). Nothing is read from the file outbox.
"""

from __future__ import annotations

from typing import Any

import pytest
from conftest import BASE_URL
from notify.notify_support import SmsSink, SmtpSink
from sqlalchemy import select
from support.mailbox import Mail, Sms

from sekisho.identity.masking import mask_email
from sekisho.notify.models import Channel, DeliveryState, OutboxMessage
from sekisho.notify.transports import sign_webhook, sms_webhook_secret
from sekisho.notify.worker import backoff

NEW = "fuji yama kawa sora"
EMAIL = "hanako.yamada@example.jp"
CARD = "4980555566667777"
PHONE = "+819012345678"
PHONE_TYPED = "090-1234-5678"
PHONE_WIDE = "０９０ １２３４ ５６７８"  # full-width digits and an ASCII space, as an IME types


# --- real servers, wired in through settings --------------------------------------------------


@pytest.fixture
def settings_overrides(smtp_sink: SmtpSink, sms_sink: SmsSink) -> dict[str, Any]:
    return {"smtp_url": smtp_sink.url, "sms_webhook_url": sms_sink.url}


class Channels:
    """What reached the SMTP server and the SMS gateway, after running the outbox worker.

    ``take`` returns what arrived since the previous ``take``, so each step of a flow is
    checked on its own deliveries only.
    """

    def __init__(self, worker: Any, smtp: SmtpSink, sms: SmsSink, secret: bytes) -> None:
        self.worker = worker
        self.smtp = smtp
        self.sms = sms
        self.secret = secret
        self._mails_seen = 0
        self._texts_seen = 0

    async def deliver(self) -> None:
        while await self.worker.run_once():
            pass

    async def mails(self) -> list[Mail]:
        await self.deliver()
        found = []
        for message in self.smtp.messages():
            text_part = message.get_body(("plain",))
            html_part = message.get_body(("html",))
            found.append(Mail(to=str(message["To"]), subject=str(message["Subject"]),
                              text=text_part.get_content() if text_part else "",
                              html=html_part.get_content() if html_part else "",
                              template=str(message.get("X-Sekisho-Template", ""))))
        return found

    async def texts(self) -> list[Sms]:
        """Every POST the gateway received (answered 2xx or not), each checked for a valid
        signature."""
        await self.deliver()
        found = []
        for request in list(self.sms.requests):
            headers = {k.lower(): v for k, v in request.headers.items()}
            signature = sign_webhook(self.secret, headers["x-sekisho-timestamp"], request.raw)
            assert headers["x-sekisho-signature"] == signature
            assert headers["content-type"].startswith("application/json")
            found.append(Sms(request.json["to"], request.json["body"]))
        return found

    async def take(self) -> tuple[list[Mail], list[Sms]]:
        mails, texts = await self.mails(), await self.texts()
        new = mails[self._mails_seen:], texts[self._texts_seen:]
        self._mails_seen, self._texts_seen = len(mails), len(texts)
        return new


@pytest.fixture
def channels(app, settings, smtp_sink: SmtpSink, sms_sink: SmsSink) -> Channels:
    return Channels(app.state.worker, smtp_sink, sms_sink, sms_webhook_secret(settings))


# --- steps ------------------------------------------------------------------------------------


async def signed_in(client, member) -> dict[str, str]:
    response = await client.post("/api/v1/login", json={"identifier": member.email,
                                                         "password": member.password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['session_token']}"}


async def member_with_phone(client, factory, channels: Channels, **kwargs: Any):
    """A member who added and confirmed ``PHONE`` through the API, the code read from the
    SMS gateway; what that sent is taken, so the caller starts with nothing new."""
    member = await factory.member(email=EMAIL, **kwargs)
    auth = await signed_in(client, member)
    asked = await client.post("/api/v1/account/phone", headers=auth,
                              json={"phone": PHONE_TYPED})
    assert asked.status_code == 202, asked.text
    mails, texts = await channels.take()
    # The first login from this client is from a new browser, so the member is told.
    assert [m.template for m in mails] == ["new_device_login"]
    assert [t.to for t in texts] == [PHONE]
    confirmed = await client.post("/api/v1/account/phone/confirm", headers=auth,
                                  json={"code": texts[0].code})
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["account"]["phone"] == PHONE
    mails, texts = await channels.take()
    assert [(m.to, m.template) for m in mails] == [(EMAIL, "phone_changed")]
    assert texts == []  # no previous number to warn
    return member


async def request_reset(client, identifier: str):
    return await client.post("/api/v1/recovery", json={"identifier": identifier})


async def remind(client, **body: str):
    return await client.post("/api/v1/recovery/id", json=body)


async def outbox_row(core, template: str) -> OutboxMessage:
    async with core.db.read() as db:
        rows = list(await db.scalars(select(OutboxMessage).where(
            OutboxMessage.template == template).order_by(OutboxMessage.id)))
    assert len(rows) == 1, rows
    return rows[0]


# --- password reset ---------------------------------------------------------------------------


async def test_reset_by_phone_sends_one_code_and_link_by_mail_and_sms(client, factory,
                                                                      channels, settings):
    member = await member_with_phone(client, factory, channels)

    answer = await request_reset(client, PHONE_WIDE)
    assert answer.status_code == 202
    mails, texts = await channels.take()
    assert [(m.to, m.template) for m in mails] == [(EMAIL, "password_reset")]
    assert [t.to for t in texts] == [PHONE]
    mail, sms = mails[0], texts[0]
    assert mail.code == sms.code
    link = mail.link("/recovery/reset?token=")
    assert link.startswith(f"{BASE_URL}/recovery/reset?token=")
    assert sms.link("/recovery/reset?token=") == link

    done = await client.post("/api/v1/recovery/complete", json={
        "identifier": "+81 90 1234 5678", "code": sms.code, "password": NEW})
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "password_changed"

    mails, texts = await channels.take()
    assert [(m.to, m.template) for m in mails] == [(EMAIL, "password_changed")]
    assert [t.to for t in texts] == [PHONE]
    # sms_password_changed.ja.txt: the change, and where to go if it was not the member.
    assert "パスワード" in texts[0].text and "変更されました" in texts[0].text
    assert f"{BASE_URL}/recovery" in texts[0].text
    assert sms.code not in texts[0].text

    for identifier in (member.email, PHONE_TYPED):
        login = await client.post("/api/v1/login",
                                  json={"identifier": identifier, "password": NEW})
        assert login.status_code == 200, (identifier, login.text)
    # Everything went over SMTP and HTTP: nothing fell back to the file outbox.
    assert not settings.outbox_dir.exists() or not any(settings.outbox_dir.iterdir())


async def test_the_link_in_the_sms_completes_the_reset_too(client, factory, channels):
    await member_with_phone(client, factory, channels)
    await request_reset(client, "+81-90-1234-5678")
    _, texts = await channels.take()
    token = texts[0].token
    done = await client.post("/api/v1/recovery/complete", json={"token": token, "password": NEW})
    assert done.status_code == 200, done.text
    mails, texts = await channels.take()
    assert [m.template for m in mails] == ["password_changed"]
    assert [t.to for t in texts] == [PHONE]


async def test_member_without_phone_gets_mail_only(client, factory, channels):
    member = await factory.member()
    assert (await request_reset(client, member.email)).status_code == 202
    mails, texts = await channels.take()
    assert [(m.to, m.template) for m in mails] == [(member.email, "password_reset")]
    assert texts == []


# --- forgot login ID --------------------------------------------------------------------------


async def test_forgot_id_by_sms_masks_the_email(client, factory, channels):
    member = await member_with_phone(client, factory, channels, card=CARD)

    answer = await remind(client, contact=PHONE_TYPED)
    assert answer.status_code == 202
    mails, texts = await channels.take()
    assert mails == []
    assert [t.to for t in texts] == [PHONE]
    text = texts[0].text
    assert member.member_id in text
    assert CARD[-4:] in text
    assert mask_email(EMAIL) in text  # ha***@example.jp
    assert EMAIL not in text and "hanako" not in text and "yamada" not in text
    assert CARD not in text and CARD[:8] not in text


async def test_forgot_id_by_email_gives_the_full_address(client, factory, channels):
    member = await member_with_phone(client, factory, channels, card=CARD)

    answer = await remind(client, contact=member.email.upper())
    assert answer.status_code == 202
    mails, texts = await channels.take()
    assert texts == []
    assert [(m.to, m.template) for m in mails] == [(EMAIL, "login_id_reminder")]
    assert member.member_id in mails[0].text and EMAIL in mails[0].text
    assert CARD[-4:] in mails[0].text and CARD not in mails[0].text

    legacy = await remind(client, email=member.email)  # the field's former name
    assert legacy.status_code == 202
    assert legacy.content == answer.content
    mails, texts = await channels.take()
    assert [(m.to, m.template) for m in mails] == [(EMAIL, "login_id_reminder")]
    assert texts == []


# --- strangers learn nothing ------------------------------------------------------------------


@pytest.mark.parametrize(("path", "field"), [("/api/v1/recovery", "identifier"),
                                              ("/api/v1/recovery/id", "contact")])
async def test_unknown_phone_and_email_get_the_same_answer_and_nothing_is_sent(
        client, factory, channels, path, field):
    await member_with_phone(client, factory, channels)

    unknown_phone = await client.post(path, json={field: "080-9876-5432"})
    unknown_email = await client.post(path, json={field: "nobody@example.jp"})
    assert await channels.take() == ([], [])

    known = await client.post(path, json={field: PHONE_TYPED})
    assert known.status_code == 202
    for unknown in (unknown_phone, unknown_email):
        assert (unknown.status_code, unknown.content) == (known.status_code, known.content)
    _, texts = await channels.take()
    assert [t.to for t in texts] == [PHONE]  # the known one did reach its owner


@pytest.mark.parametrize("contact", ["1234567890", "4980 5555 6666 7777"])
async def test_forgot_id_refuses_a_member_id_or_card(client, factory, channels, contact):
    member = await member_with_phone(client, factory, channels, card=CARD)
    for typed in (contact, member.member_id):
        answer = await remind(client, contact=typed)
        assert answer.status_code == 422
        error = answer.json()["error"]
        assert error["code"] == "request.invalid"
        assert error["reason"] == "email_or_phone"
        assert error["field"] == "contact"
    assert await channels.take() == ([], [])


# --- the SMS gateway failing ------------------------------------------------------------------


async def test_sms_gateway_failure_is_retried_until_it_recovers(client, factory, channels,
                                                                sms_sink, core, clock, settings,
                                                                app):
    await member_with_phone(client, factory, channels)
    sms_sink.status = 500

    await request_reset(client, PHONE_TYPED)
    mails, texts = await channels.take()
    # The mail is not held up by the SMS gateway.
    assert [(m.to, m.template) for m in mails] == [(EMAIL, "password_reset")]
    assert len(texts) == 1  # tried once, answered 500
    row = await outbox_row(core, "sms_reset")
    assert (row.state, row.attempts, row.sent_at) == (DeliveryState.PENDING, 1, None)
    assert "500" in (row.last_error or "")
    assert app.state.worker.health[Channel.SMS].consecutive_failures == 1

    # Not due again before its backoff: another pass sends nothing.
    assert await channels.take() == ([], [])
    clock.advance(backoff(settings, 1).total_seconds())
    _, texts = await channels.take()
    assert len(texts) == 1  # second try, still 500
    row = await outbox_row(core, "sms_reset")
    assert (row.state, row.attempts) == (DeliveryState.PENDING, 2)

    sms_sink.status = 200
    clock.advance(backoff(settings, 2).total_seconds())
    _, texts = await channels.take()
    assert [t.to for t in texts] == [PHONE]
    assert texts[0].code == mails[0].code  # the same code as the mail, retried unchanged
    row = await outbox_row(core, "sms_reset")
    assert (row.state, row.attempts, row.last_error) == (DeliveryState.SENT, 3, None)
    assert row.sent_at is not None
    assert app.state.worker.health[Channel.SMS].consecutive_failures == 0
    assert await channels.take() == ([], [])  # delivered once, not again
