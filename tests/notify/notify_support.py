"""Helpers for the notify tests: enqueue and read outbox rows, and real loopback servers
(aiosmtpd for SMTP, ``http.server`` for the SMS gateway). Fixtures are in ``conftest.py``."""

from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from sqlalchemy import select

from sekisho.db import Database
from sekisho.notify.models import OutboxMessage
from sekisho.notify.service import Notifier

VERIFY_CONTEXT: dict[str, Any] = {
    "code": "482913",
    "link": "https://id.example.test/verify?t=abc&x=1",
    "minutes": 30,
}


def free_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Outbox:
    """Enqueue through the real Notifier in a committed transaction; read rows back."""

    def __init__(self, database: Database, notifier: Notifier) -> None:
        self.database = database
        self.notifier = notifier

    async def email(
        self,
        to: str = "hanako@example.test",
        template: str = "verify_email",
        locale: str = "ja",
        context: dict[str, Any] | None = None,
        account_id: int | None = None,
    ) -> int:
        async with self.database.transaction() as session:
            message = await self.notifier.email(
                session,
                to=to,
                template=template,
                locale=locale,
                context=dict(VERIFY_CONTEXT) if context is None else context,
                account_id=account_id,
            )
        return message.id

    async def sms(self, to: str = "+819012345678", code: str = "123456", locale: str = "ja") -> int:
        async with self.database.transaction() as session:
            message = await self.notifier.sms(
                session,
                to=to,
                template="sms_code",
                locale=locale,
                context={"code": code, "minutes": 10},
            )
        return message.id

    async def get(self, message_id: int) -> OutboxMessage:
        query = select(OutboxMessage).where(OutboxMessage.id == message_id)
        async with self.database.transaction() as session:
            return (await session.scalars(query)).one()

    async def all(self) -> list[OutboxMessage]:
        async with self.database.transaction() as session:
            return list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


# --- SMTP -----------------------------------------------------------------------------------


class _Collector:
    def __init__(self) -> None:
        self.envelopes: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted"


@dataclass
class SmtpSink:
    """A real SMTP server that can be stopped and restarted on the same port."""

    port: int = field(default_factory=free_port)
    handler: _Collector = field(default_factory=_Collector)
    controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def messages(self) -> list[EmailMessage]:
        return [
            message_from_bytes(env.original_content, policy=policy.default)  # type: ignore[misc]
            for env in self.handler.envelopes
        ]


# --- SMS gateway ----------------------------------------------------------------------------


@dataclass
class Received:
    headers: dict[str, str]
    raw: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.raw)


class SmsSink:
    """A real HTTP server on loopback; answers every POST with ``status``."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.status = 200
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                sink.requests.append(Received(dict(self.headers.items()), raw))
                self.send_response(sink.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep pytest output clean

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/sms"
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
