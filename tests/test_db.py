"""The database layer: pooled PostgreSQL connections are checked before use only after an
idle spell, and a dead one is replaced, not handed to a request."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

import sekisho.db
from sekisho.db import Database

PID = text("SELECT pg_backend_pid()")


@pytest.fixture
async def database(postgres_url: str) -> AsyncIterator[Database]:
    db = Database(postgres_url)
    yield db
    await db.dispose()


def count_pings(db: Database) -> list[int]:
    pings: list[int] = []
    dialect = db.engine.sync_engine.dialect
    ping = dialect.do_ping

    def counted(dbapi_connection: object) -> bool:
        pings.append(1)
        return ping(dbapi_connection)

    dialect.do_ping = counted  # type: ignore[method-assign]
    return pings


async def test_a_connection_in_steady_use_is_not_pinged(database, monkeypatch):
    pings = count_pings(database)
    for _ in range(5):
        assert await database.run(lambda conn: conn.scalar(text("SELECT 1"))) == 1
    assert pings == []
    monkeypatch.setattr(sekisho.db, "_PING_AFTER_IDLE_SECONDS", 0.0)  # now it was idle
    assert await database.run(lambda conn: conn.scalar(text("SELECT 1"))) == 1
    assert pings == [1]


async def test_a_connection_that_died_while_idle_is_replaced_before_use(database, postgres_url,
                                                                        monkeypatch):
    first = await database.run(lambda conn: conn.scalar(PID))
    admin = create_async_engine(postgres_url)
    try:
        async with admin.connect() as conn:
            assert await conn.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
    finally:
        await admin.dispose()
    monkeypatch.setattr(sekisho.db, "_PING_AFTER_IDLE_SECONDS", 0.0)
    second = await database.run(lambda conn: conn.scalar(PID), write=True)
    assert second != first
