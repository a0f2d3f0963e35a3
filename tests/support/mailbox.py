"""Reads what sekisho delivered: runs the outbox worker, then parses the ``.eml`` files
(and the SMS ``.json`` files) of the file outbox."""

from __future__ import annotations

import email
import email.policy
import json
import re
from dataclasses import dataclass
from pathlib import Path

from sekisho.notify.worker import OutboxWorker

CODE = re.compile(r"(?<![\d-])(\d{6})(?![\d-])")
LINK = re.compile(r"https?://[^\s\"'<>]+")


class _Readable:
    """What a test reads out of a delivered message's text: its code, links and token."""

    text: str

    @property
    def code(self) -> str:
        found = CODE.findall(self.text)
        assert found, f"no code in: {self.text!r}"
        return str(found[0])

    def link(self, containing: str) -> str:
        for url in LINK.findall(self.text):
            if containing in url:
                return str(url)
        raise AssertionError(f"no link with {containing!r} in {self.text!r}")

    @property
    def token(self) -> str:
        return self.link("token=").split("token=", 1)[1]


@dataclass
class Mail(_Readable):
    to: str
    subject: str
    text: str
    html: str
    template: str


@dataclass
class Sms(_Readable):
    to: str
    text: str


class Mailbox:
    def __init__(self, worker: OutboxWorker, directory: Path) -> None:
        self._worker = worker
        self._dir = directory
        self._seen: set[Path] = set()

    async def deliver(self) -> None:
        while await self._worker.run_once():
            pass

    async def all(self) -> list[Mail]:
        await self.deliver()
        if not self._dir.exists():
            return []
        return [self._parse(p) for p in sorted(self._dir.glob("*.eml"))]

    async def to(self, address: str) -> list[Mail]:
        return [m for m in await self.all() if m.to.lower() == address.lower()]

    async def last(self, address: str) -> Mail:
        mails = await self.to(address)
        assert mails, f"no mail for {address}"
        return mails[-1]

    async def texts(self, number: str | None = None) -> list[Sms]:
        """SMS delivered to the file outbox (``*-sms.json``), oldest first; to ``number``
        (E.164) only, if given."""
        await self.deliver()
        if not self._dir.exists():
            return []
        found = [json.loads(p.read_text()) for p in sorted(self._dir.glob("*.json"))]
        return [Sms(m["to"], m["body"]) for m in found if number is None or m["to"] == number]

    async def last_text(self, number: str) -> Sms:
        texts = await self.texts(number)
        assert texts, f"no SMS for {number}"
        return texts[-1]

    def _parse(self, path: Path) -> Mail:
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        text_part = message.get_body(("plain",))
        html_part = message.get_body(("html",))
        return Mail(to=str(message["To"]), subject=str(message["Subject"]),
                    text=text_part.get_content() if text_part else "",
                    html=html_part.get_content() if html_part else "",
                    template=str(message.get("X-Sekisho-Template", "")))
