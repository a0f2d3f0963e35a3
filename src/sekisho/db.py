"""Database engine, declarative base and shared column types (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import (
    BigInteger,
    Connection,
    DateTime,
    Engine,
    Integer,
    MetaData,
    create_engine,
    event,
)
from sqlalchemy.engine import URL, Dialect
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import StaticPool
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

_READ_ONLY = "sekisho_read_only"
T = TypeVar("T")

# Integer primary keys: BIGINT on PostgreSQL, INTEGER (the rowid alias) on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both databases (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def make_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An async engine; SQLite gets WAL, foreign keys and a busy timeout on every connection."""
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30}, **kwargs)
        _configure_sqlite(engine.sync_engine)
        return engine
    engine = create_async_engine(url, **kwargs)
    _ping_after_idle(engine.sync_engine)
    return engine


_PING_AFTER_IDLE_SECONDS = 5.0
"""A pooled connection idle this long is pinged before use (a server restart or an idle
timeout may have closed it). One in steady use is not: SQLAlchemy's ``pool_pre_ping`` pinged
at every checkout, a round trip that on PostgreSQL cost 10% of the logins a second (two
checkouts per login). A connection that died while busy fails its request, and that failure
tells the pool to replace every connection older than it."""


def _ping_after_idle(engine: Engine) -> None:
    @event.listens_for(engine, "checkin")
    def _returned(_dbapi_connection: Any, record: Any) -> None:
        record.info["returned_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _lent(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        returned = record.info.get("returned_at")
        if returned is None or time.monotonic() - returned < _PING_AFTER_IDLE_SECONDS:
            return  # new, or in steady use
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as error:
            # The pool drops this connection and lends a fresh one instead.
            raise DisconnectionError(str(error)) from error


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
        # Let us issue BEGIN ourselves (below) instead of the driver's deferred BEGIN.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _sqlite_begin_immediate(conn: Any) -> None:
        # A deferred transaction that reads, then writes, fails at once with SQLITE_BUSY when
        # another writer got in between; busy_timeout cannot help it. Taking the write lock
        # up front makes concurrent requests queue instead. Read-only units of work
        # (``Database.read``) skip the lock: WAL lets them run beside the writer.
        read_only = conn.get_execution_options().get(_READ_ONLY, False)
        # Straight to the driver: through exec_driver_sql it cost a statement's overhead.
        cursor = conn.connection.dbapi_connection.cursor()
        cursor.execute("BEGIN" if read_only else "BEGIN IMMEDIATE")
        cursor.close()


class Database:
    """The engine and a session factory; one per app."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = make_engine(url, **engine_kwargs)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        self._sqlite: _DirectSQLite | None = None
        if self.engine.dialect.name == "sqlite":
            self._sqlite = _DirectSQLite(self.engine.url.set(drivername="sqlite"))

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One unit of work: committed on success, rolled back on any exception."""
        async with self.sessionmaker() as session, session.begin():
            yield session

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A unit of work that only reads (the hot paths use :meth:`run` instead).

        On SQLite it does not take the write lock, so lookups never queue behind writers.
        Writing inside it is a bug; on SQLite it may fail with "database is locked".
        """
        async with self.sessionmaker() as session:
            await session.connection(execution_options={_READ_ONLY: True})
            # Closing (not rolling back) keeps what was loaded readable after the block.
            yield session

    async def run(self, work: Callable[[Connection], T], *, write: bool = False) -> T:
        """One unit of work written as plain SQLAlchemy Core statements, for the hot paths
        (login, session checks), committed if ``write``.

        On SQLite the whole unit runs in a single hop to one dedicated thread, instead of a
        hop per statement, and that thread takes units one at a time, so a writer never
        sleeps in SQLite's busy handler while another holds the lock between awaits. On
        PostgreSQL it runs on the async engine (asyncpg needs no threads).
        """
        if self._sqlite is not None:
            return await self._sqlite.run(work, write)
        async with self.engine.connect() as conn:
            if not write:
                return await conn.run_sync(work)
            async with conn.begin():
                return await conn.run_sync(work)

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self._sqlite is not None:
            await self._sqlite.close()


class _DirectSQLite:
    """One thread holding one synchronous SQLite connection for :meth:`Database.run`.

    The connection stays open for the thread's life: no pool checkout, reset and checkin
    per unit of work, which on the hot paths cost more than the statements themselves.
    """

    def __init__(self, url: URL) -> None:
        self._engine = create_engine(url, poolclass=StaticPool,
                                     connect_args={"timeout": 30, "check_same_thread": False})
        _configure_sqlite(self._engine)
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="sekisho-sqlite")
        self._conn: Connection | None = None

    async def run(self, work: Callable[[Connection], T], write: bool) -> T:
        return await asyncio.get_running_loop().run_in_executor(
            self._thread, self._run, work, write)

    def _run(self, work: Callable[[Connection], T], write: bool) -> T:
        if self._conn is None:
            self._conn = self._engine.connect()
        conn = self._conn.execution_options(**{_READ_ONLY: not write})
        with conn.begin():
            return work(conn)

    async def close(self) -> None:
        def close_connection() -> None:
            if self._conn is not None:
                self._conn.close()
            self._engine.dispose()

        await asyncio.get_running_loop().run_in_executor(self._thread, close_connection)
        self._thread.shutdown(wait=True)
