"""One recorded event per ticket, written in batches off the request path.

Every answer to a waiting visitor carries the reference of their ticket (CONTRACT.md: the
reference names a recorded event), but a crowd must not cost a database write per request:
the event is recorded once, when the ticket is issued, and tickets issued together are
inserted together a moment later. Should the database fail, the references stay valid in
the logs, and the waiting room keeps answering.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from sqlalchemy import Connection, insert

from sekisho.context import RequestContext
from sekisho.db import Database
from sekisho.events.models import AuthEvent, EventKind
from sekisho.events.service import EventLog

log = logging.getLogger("sekisho.waiting_room")

QUEUED = "service.queue"
_FLUSH_SECONDS = 0.25
_MAX_PENDING = 20_000
"""Beyond this (the database has been unreachable for a while), events are logged only."""


class QueueEvents:
    def __init__(self, db: Database, events: EventLog) -> None:
        self._db = db
        self._events = events
        self._pending: list[dict[str, Any]] = []
        self._task: asyncio.Task[None] | None = None

    def add(self, ctx: RequestContext, reference: str, detail: dict[str, Any]) -> None:
        """Record that a visitor was given a ticket, behind ``reference``."""
        log.info("queued reference=%s request_id=%s %s", reference, ctx.request_id, detail)
        if len(self._pending) >= _MAX_PENDING:
            return
        self._pending.append(self._events.values(
            kind=EventKind.REQUEST_REJECTED, outcome=QUEUED, ctx=ctx, detail=detail,
            reference=reference))
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._flush_soon(), name="sekisho-waiting-room-events")

    async def flush(self) -> None:
        """Write what is pending now."""
        rows, self._pending = self._pending, []
        if not rows:
            return

        def write(conn: Connection) -> None:
            conn.execute(insert(AuthEvent), rows)

        try:
            await self._db.run(write, write=True)
        except Exception:  # the references are in the log lines above
            log.exception("could not record %d waiting-room events", len(rows))

    async def close(self) -> None:
        """Let a batch under way finish, then write the rest."""
        if self._task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, timeout=5)
        await self.flush()

    async def _flush_soon(self) -> None:
        while self._pending:
            await asyncio.sleep(_FLUSH_SECONDS)
            await self.flush()
