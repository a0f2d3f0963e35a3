"""Enqueue notifications into the outbox, inside the caller's transaction.

The transactional outbox: a message is a row written in the same transaction as the change
that causes it (a new challenge, a changed password). It commits or rolls back with that
change, so no mail goes out for a registration that failed, and none is lost for one that
succeeded. :class:`sekisho.notify.worker.OutboxWorker` delivers the rows later.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from sekisho.clock import Clock
from sekisho.notify.models import Channel, DeliveryState, OutboxMessage
from sekisho.notify.render import MessageRenderer, resolve_locale
from sekisho.settings import Settings


_WAKE_PENDING = "sekisho.outbox_wake"


class Notifier:
    """Renders a template and adds it to the outbox; never talks to a mail or SMS server.

    ``on_enqueue`` is called once the transaction that added a message commits (the worker
    sets it to its ``wake``). Woken before, the worker would find nothing yet and the
    message would wait for its next poll (``outbox_poll_seconds``): a code mail late for no
    reason. Not at all if the transaction rolls back.
    """

    def __init__(
        self, settings: Settings, clock: Clock, renderer: MessageRenderer | None = None
    ) -> None:
        self._clock = clock
        self.renderer = renderer or MessageRenderer(settings)
        self.on_enqueue: Callable[[], None] | None = None

    async def email(
        self,
        session: AsyncSession,
        *,
        to: str,
        template: str,
        locale: str,
        context: dict[str, Any],
        account_id: int | None = None,
    ) -> OutboxMessage:
        """Queue an email to ``to`` (an address) rendered from ``template`` in ``locale``."""
        return await self._enqueue(
            session, Channel.EMAIL, to, template, locale, context, account_id
        )

    async def sms(
        self,
        session: AsyncSession,
        *,
        to: str,
        template: str,
        locale: str,
        context: dict[str, Any],
        account_id: int | None = None,
    ) -> OutboxMessage:
        """Queue an SMS to ``to`` (E.164, ``+8190...``); only the text part is used."""
        return await self._enqueue(session, Channel.SMS, to, template, locale, context, account_id)

    async def logout_notice(self, session: AsyncSession, *, to: str, logout_token: str,
                            account_id: int) -> OutboxMessage:
        """Queue an OpenID back-channel logout notice: ``logout_token`` POSTed to ``to``."""
        _check_recipient(to)
        now = self._clock.now()
        message = OutboxMessage(
            channel=Channel.LOGOUT, recipient=to, template="backchannel_logout", locale="en",
            account_id=account_id, body_text=logout_token, state=DeliveryState.PENDING,
            attempts=0, created_at=now, next_attempt_at=now)
        session.add(message)
        await session.flush()
        self.wake_after_commit(session)
        return message

    async def _enqueue(
        self,
        session: AsyncSession,
        channel: Channel,
        to: str,
        template: str,
        locale: str,
        context: dict[str, Any],
        account_id: int | None,
    ) -> OutboxMessage:
        message = OutboxMessage(**self._values(channel, to, template, locale, context,
                                               account_id))
        session.add(message)
        # Flush so the caller (and its audit event) can refer to the message id; this is
        # still inside the caller's transaction and rolls back with it.
        await session.flush()
        self.wake_after_commit(session)
        return message

    def email_values(self, *, to: str, template: str, locale: str, context: dict[str, Any],
                     account_id: int | None = None) -> dict[str, Any]:
        """:meth:`email` as the columns of a Core ``INSERT`` into the outbox, for the hot
        paths; call :meth:`enqueued` once it is written."""
        return self._values(Channel.EMAIL, to, template, locale, context, account_id)

    def enqueued(self) -> None:
        """Wake the outbox worker: a committed message is waiting."""
        if self.on_enqueue is not None:
            self.on_enqueue()

    def wake_after_commit(self, session: AsyncSession) -> None:
        """Wake the outbox worker when ``session`` commits the messages it added (once,
        however many)."""
        sync = session.sync_session
        if sync.info.get(_WAKE_PENDING):
            return
        sync.info[_WAKE_PENDING] = True

        def committed(done: Session) -> None:
            done.info.pop(_WAKE_PENDING, None)
            self.enqueued()

        # A rolled-back unit of work is thrown away with its session: nothing to wake.
        event.listen(sync, "after_commit", committed, once=True)

    def _values(self, channel: Channel, to: str, template: str, locale: str,
                context: dict[str, Any], account_id: int | None) -> dict[str, Any]:
        _check_recipient(to)
        lang = resolve_locale(locale)
        rendered = self.renderer.render(template, lang, context)
        now = self._clock.now()
        email = channel is Channel.EMAIL
        return {"channel": channel, "recipient": to, "template": template, "locale": lang,
                "account_id": account_id, "subject": rendered.subject if email else None,
                "body_text": rendered.text, "body_html": rendered.html if email else None,
                "state": DeliveryState.PENDING, "attempts": 0, "created_at": now,
                "next_attempt_at": now}


def _check_recipient(to: str) -> None:
    # The recipient becomes a mail header or a JSON field downstream. Refusing control
    # characters here keeps a bad value from reaching either (header injection).
    if not to or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in to):
        raise ValueError("recipient is empty or contains control characters")
