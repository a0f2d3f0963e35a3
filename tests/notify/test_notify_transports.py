"""Transports on their own: files, the SMS webhook (real HTTP) and SMTP URL parsing."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from notify.notify_support import VERIFY_CONTEXT, Outbox, SmsSink, free_port

from sekisho.clock import FrozenClock
from sekisho.notify.models import Channel
from sekisho.notify.transports import (
    DeliveryError,
    FileEmailTransport,
    FileSmsTransport,
    SmsWebhookTransport,
    SmtpTransport,
    sign_webhook,
    sms_webhook_secret,
    transports_from_settings,
)
from sekisho.settings import Settings


async def test_file_email_is_a_parseable_multipart_eml(outbox: Outbox, tmp_path: Path) -> None:
    message = await outbox.get(await outbox.email(context={**VERIFY_CONTEXT, "display_name": "花子"}))
    directory = tmp_path / "mail"

    await FileEmailTransport(directory, "sekisho <no-reply@example.test>").send(message)

    files = list(directory.iterdir())
    assert [f.name for f in files] == [f"20260105T030000Z-{message.id:010d}-email.eml"]
    raw = files[0].read_bytes()
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")  # CRLF throughout
    mail = message_from_bytes(raw, policy=policy.default)
    assert mail["From"] == "sekisho <no-reply@example.test>"
    assert mail["To"] == "hanako@example.test"
    assert mail["Subject"] == "【sekisho】メールアドレスの確認"
    assert mail["Date"] == "Mon, 05 Jan 2026 03:00:00 +0000"
    assert mail["Message-ID"] == f"<outbox.{message.id}.20260105030000@example.test>"
    assert mail["X-Sekisho-Template"] == "verify_email"
    assert mail["Auto-Submitted"] == "auto-generated"
    assert mail["Content-Language"] == "ja"
    assert mail.get_content_type() == "multipart/alternative"
    text = mail.get_body(("plain",))
    html = mail.get_body(("html",))
    assert text is not None and html is not None
    assert text.get_content_charset() == "utf-8"
    assert "確認コード: 482913" in text.get_content()
    assert "花子 様" in text.get_content()
    assert "482913" in html.get_content()


async def test_file_sms_is_json(outbox: Outbox, tmp_path: Path) -> None:
    message = await outbox.get(await outbox.sms(to="+819012345678", code="246810"))

    await FileSmsTransport(tmp_path / "sms").send(message)

    (path,) = (tmp_path / "sms").iterdir()
    assert re.fullmatch(rf"\d{{8}}T\d{{6}}Z-{message.id:010d}-sms\.json", path.name)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["to"] == "+819012345678"
    assert data["body"].startswith("sekishoの確認コード: 246810")


async def test_file_transport_failure_is_a_delivery_error(outbox: Outbox, tmp_path: Path) -> None:
    message = await outbox.get(await outbox.sms())
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    with pytest.raises(DeliveryError):
        await FileSmsTransport(blocker).send(message)


async def test_webhook_posts_signed_json(
    outbox: Outbox, sms_sink: SmsSink, clock: FrozenClock
) -> None:
    message = await outbox.get(await outbox.sms(to="+819012345678", code="135790"))
    secret = b"shared-secret"

    await SmsWebhookTransport(sms_sink.url, secret, clock).send(message)

    (request,) = sms_sink.requests
    timestamp = request.headers["X-Sekisho-Timestamp"]
    assert timestamp == str(int(clock.now().timestamp()))
    expected = hmac.new(secret, f"{timestamp}.".encode() + request.raw, hashlib.sha256).hexdigest()
    assert request.headers["X-Sekisho-Signature"] == f"sha256={expected}"
    assert request.json == {"to": "+819012345678", "body": message.body_text}
    # A different secret or a tampered body would not verify.
    assert sign_webhook(b"other", timestamp, request.raw) != f"sha256={expected}"
    assert sign_webhook(secret, timestamp, request.raw + b" ") != f"sha256={expected}"


@pytest.mark.parametrize("status", [500, 429, 404, 302])
async def test_webhook_non_2xx_is_a_delivery_error(
    outbox: Outbox, sms_sink: SmsSink, status: int
) -> None:
    message = await outbox.get(await outbox.sms())
    sms_sink.status = status
    with pytest.raises(DeliveryError, match=str(status)):
        await SmsWebhookTransport(sms_sink.url, b"k").send(message)
    assert len(sms_sink.requests) == 1


async def test_webhook_unreachable_is_a_delivery_error(outbox: Outbox) -> None:
    message = await outbox.get(await outbox.sms())
    with pytest.raises(DeliveryError):
        await SmsWebhookTransport(f"http://127.0.0.1:{free_port()}/sms", b"k").send(message)


async def test_smtp_unreachable_is_a_delivery_error(outbox: Outbox) -> None:
    message = await outbox.get(await outbox.email())
    with pytest.raises(DeliveryError):
        await SmtpTransport(f"smtp://127.0.0.1:{free_port()}", "s <s@example.test>").send(message)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://mail.local", ("mail.local", 25, None, None, False, False)),
        ("smtp://127.0.0.1:1025", ("127.0.0.1", 1025, None, None, False, False)),
        ("smtp+starttls://u%40x:p%3Aw@smtp.example.jp:587",
         ("smtp.example.jp", 587, "u@x", "p:w", False, True)),
        ("smtp+starttls://smtp.example.jp", ("smtp.example.jp", 587, None, None, False, True)),
        ("smtps://u:p@smtp.example.jp", ("smtp.example.jp", 465, "u", "p", True, False)),
    ],
)
def test_smtp_url_parsing(url: str, expected: tuple[object, ...]) -> None:
    t = SmtpTransport(url, "s <s@example.test>")
    assert (t.hostname, t.port, t.username, t.password, t.use_tls, t.start_tls) == expected


@pytest.mark.parametrize("url", ["http://mail.local", "smtp://", "mail.local:25"])
def test_bad_smtp_url_is_refused(url: str) -> None:
    with pytest.raises(ValueError):
        SmtpTransport(url, "s <s@example.test>")


def test_webhook_secret_configured_or_derived(settings: Settings) -> None:
    derived = hmac.new(b"test-secret-key", b"sms-webhook", hashlib.sha256).hexdigest().encode()
    assert sms_webhook_secret(settings) == derived
    configured = settings.model_copy(update={"sms_webhook_secret": "from-config"})
    assert sms_webhook_secret(configured) == b"from-config"


def test_transports_from_settings(settings: Settings) -> None:
    files = transports_from_settings(settings)
    assert isinstance(files[Channel.EMAIL], FileEmailTransport)
    assert isinstance(files[Channel.SMS], FileSmsTransport)
    assert files[Channel.EMAIL].directory == settings.outbox_dir  # type: ignore[union-attr]

    network = transports_from_settings(
        settings.model_copy(
            update={"smtp_url": "smtps://mail.example.jp", "sms_webhook_url": "https://gw/sms"}
        )
    )
    assert isinstance(network[Channel.EMAIL], SmtpTransport)
    assert isinstance(network[Channel.SMS], SmsWebhookTransport)
