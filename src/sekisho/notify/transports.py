"""How outbox messages leave the building: SMTP, an SMS webhook, or files for development.

Every transport has one method, ``send``, that either hands the message over or raises
:class:`DeliveryError`; the worker owns retries, backoff and bookkeeping.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import ssl
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

import aiosmtplib
import httpx

from sekisho.clock import Clock, SystemClock, as_utc
from sekisho.notify.models import Channel, OutboxMessage
from sekisho.settings import Settings

SEND_TIMEOUT_SECONDS = 10.0
"""Per connection and per request: a stalled server costs one worker slot this long at most."""

_DEFAULT_SENDER: str = Settings.model_fields["smtp_from"].default


class DeliveryError(Exception):
    """The message was not handed over; the worker will try again later."""


class Transport(Protocol):
    async def send(self, message: OutboxMessage) -> None:
        """Hand ``message`` over, or raise :class:`DeliveryError`."""
        ...


# --- email ----------------------------------------------------------------------------------


def build_email(message: OutboxMessage, sender: str) -> EmailMessage:
    """An RFC 5322 message: multipart/alternative (text, then HTML), UTF-8 throughout.

    The Message-ID is derived from the outbox row, so a message sent twice (a worker that
    died after the server accepted it) carries the same id and can be de-duplicated.
    """
    mail = EmailMessage()
    domain = parseaddr(sender)[1].rpartition("@")[2] or "sekisho.invalid"
    created = as_utc(message.created_at)
    mail["From"] = sender
    mail["To"] = message.recipient
    mail["Subject"] = message.subject or ""
    mail["Date"] = format_datetime(created)  # RFC 5322 §3.6.1: when the message was composed
    mail["Message-ID"] = f"<outbox.{message.id}.{created:%Y%m%d%H%M%S}@{domain}>"
    # RFC 3834 §5: stops vacation responders answering a login code.
    mail["Auto-Submitted"] = "auto-generated"
    mail["X-Sekisho-Template"] = message.template
    mail.set_content(message.body_text or "", charset="utf-8")
    if message.body_html:
        mail.add_alternative(message.body_html, subtype="html", charset="utf-8")
    # After the body: set_content() drops any Content-* header set before it.
    mail["Content-Language"] = message.locale
    return mail


def _file_name(message: OutboxMessage, kind: str, suffix: str) -> str:
    # Zero-padded id: names sort in creation order even within one second.
    return f"{as_utc(message.created_at):%Y%m%dT%H%M%SZ}-{message.id:010d}-{kind}.{suffix}"


async def _write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so a reader sees the whole file or none of it."""

    def write() -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)  # atomic on POSIX and Windows within one directory

    try:
        await asyncio.to_thread(write)
    except OSError as exc:
        raise DeliveryError(f"cannot write {path.name}: {exc}") from exc


class FileEmailTransport:
    """Development transport: each mail becomes ``<UTC time>-<id>-email.eml`` in a folder."""

    def __init__(self, directory: Path, sender: str = _DEFAULT_SENDER) -> None:
        self.directory = directory
        self.sender = sender

    async def send(self, message: OutboxMessage) -> None:
        data = build_email(message, self.sender).as_bytes(policy=SMTP_POLICY)  # CRLF lines
        await _write_atomically(self.directory / _file_name(message, "email", "eml"), data)


class SmtpTransport:
    """Delivers to an SMTP server given as a URL.

    ``smtp://host:25`` is plain SMTP (a local relay); ``smtp+starttls://user:pass@host:587``
    requires STARTTLS (RFC 3207) before authenticating; ``smtps://host:465`` is implicit TLS
    (RFC 8314 §3.3). Certificates are verified.
    """

    # scheme: (default port, implicit TLS, required STARTTLS)
    _SCHEMES = {
        "smtp": (25, False, False),
        "smtp+starttls": (587, False, True),
        "smtps": (465, True, False),
    }

    def __init__(self, url: str, sender: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in self._SCHEMES or not parts.hostname:
            raise ValueError("SMTP URL must be smtp://, smtp+starttls:// or smtps://host[:port]")
        default_port, self.use_tls, self.start_tls = self._SCHEMES[parts.scheme]
        self.hostname = parts.hostname
        self.port = parts.port or default_port
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.sender = sender

    async def send(self, message: OutboxMessage) -> None:
        try:
            await aiosmtplib.send(
                build_email(message, self.sender),
                hostname=self.hostname,
                port=self.port,
                username=self.username,
                password=self.password,
                use_tls=self.use_tls,
                start_tls=self.start_tls,
                timeout=SEND_TIMEOUT_SECONDS,
            )
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise DeliveryError(f"SMTP {self.hostname}:{self.port}: {exc}") from exc


# --- SMS ------------------------------------------------------------------------------------


def _sms_payload(message: OutboxMessage) -> bytes:
    body = {"to": message.recipient, "body": message.body_text or ""}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


class FileSmsTransport:
    """Development transport: each SMS becomes ``<UTC time>-<id>-sms.json`` in a folder."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def send(self, message: OutboxMessage) -> None:
        path = self.directory / _file_name(message, "sms", "json")
        await _write_atomically(path, _sms_payload(message))


def sign_webhook(secret: bytes, timestamp: str, raw_body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>``.

    The timestamp is inside the MAC so a receiver can refuse old deliveries (replays) by
    checking ``X-Sekisho-Timestamp`` against its own clock.
    """
    mac = hmac.new(secret, timestamp.encode() + b"." + raw_body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def sms_webhook_secret(settings: Settings) -> bytes:
    """The configured webhook secret, or one derived from the server secret.

    The derived secret is the hex string itself (as bytes), so an operator can print it
    and paste it into the receiver verbatim, exactly like a configured one.
    """
    if settings.sms_webhook_secret:
        return settings.sms_webhook_secret.encode()
    derived = hmac.new(settings.resolved_secret_key(), b"sms-webhook", hashlib.sha256)
    return derived.hexdigest().encode()


class SmsWebhookTransport:
    """POSTs ``{"to": "+8190...", "body": "..."}`` to an SMS gateway, signed with HMAC.

    Headers: ``X-Sekisho-Timestamp`` (unix seconds) and ``X-Sekisho-Signature``
    (:func:`sign_webhook`). Any non-2xx answer is a failure; redirects are not followed, so
    the signed body is never replayed to another host.
    """

    def __init__(self, url: str, secret: bytes, clock: Clock | None = None) -> None:
        self.url = url
        self._secret = secret
        self._clock = clock or SystemClock()
        # Loading the CA bundle costs tens of milliseconds; do it once, not per message.
        self._tls = ssl.create_default_context()

    async def send(self, message: OutboxMessage) -> None:
        raw = _sms_payload(message)
        timestamp = str(int(self._clock.now().timestamp()))
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "X-Sekisho-Timestamp": timestamp,
            "X-Sekisho-Signature": sign_webhook(self._secret, timestamp, raw),
        }
        try:
            async with httpx.AsyncClient(timeout=SEND_TIMEOUT_SECONDS, verify=self._tls) as client:
                response = await client.post(self.url, content=raw, headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"SMS webhook: {type(exc).__name__}: {exc}") from exc
        if not response.is_success:
            raise DeliveryError(f"SMS webhook answered HTTP {response.status_code}")


class BackChannelLogoutTransport:
    """POSTs ``logout_token=<JWT>`` to a relying party's ``backchannel_logout_uri``
    (OpenID Back-Channel Logout 1.0 §2.5). A 200 or 204 is delivery; anything else,
    including a redirect (§2.8: not followed), is a failure to retry."""

    def __init__(self) -> None:
        self._tls = ssl.create_default_context()

    async def send(self, message: OutboxMessage) -> None:
        try:
            async with httpx.AsyncClient(timeout=SEND_TIMEOUT_SECONDS, verify=self._tls) as client:
                response = await client.post(message.recipient,
                                             data={"logout_token": message.body_text or ""})
        except httpx.HTTPError as exc:
            raise DeliveryError(f"back-channel logout: {type(exc).__name__}: {exc}") from exc
        if response.status_code not in (200, 204):
            raise DeliveryError(f"back-channel logout answered HTTP {response.status_code}")


def transports_from_settings(
    settings: Settings, clock: Clock | None = None
) -> dict[Channel, Transport]:
    """SMTP and the SMS webhook when configured; otherwise files in ``settings.outbox_dir``."""
    email: Transport
    sms: Transport
    if settings.smtp_url:
        email = SmtpTransport(settings.smtp_url, settings.smtp_from)
    else:
        email = FileEmailTransport(settings.outbox_dir, settings.smtp_from)
    if settings.sms_webhook_url:
        sms = SmsWebhookTransport(settings.sms_webhook_url, sms_webhook_secret(settings), clock)
    else:
        sms = FileSmsTransport(settings.outbox_dir)
    return {Channel.EMAIL: email, Channel.SMS: sms, Channel.LOGOUT: BackChannelLogoutTransport()}
