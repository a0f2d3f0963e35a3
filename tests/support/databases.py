"""Real databases for tests: a migrated SQLite template, and a PostgreSQL test database.

In CI (``CI=true``) an unreachable PostgreSQL or Redis is a failure, not a skip.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import text

from sekisho.db import make_engine
from sekisho.migrations.runner import upgrade
from sekisho.models import Base

PG_ADMIN_URL = os.environ.get("SEKISHO_TEST_PG_ADMIN",
                              "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
PG_DB = os.environ.get("SEKISHO_TEST_PG_DB", f"sekisho_test_{os.getpid()}")
T = TypeVar("T")
REDIS_URL = os.environ.get("SEKISHO_TEST_REDIS", "redis://127.0.0.1:6379/15")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def in_thread(fn: Callable[..., T], *args: Any) -> T:
    """Run blocking set-up (``asyncio.run``, Alembic) off the test's running event loop."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn, *args).result()


def unavailable(what: str, why: object) -> None:
    message = f"{what} is not reachable: {why}"
    if IN_CI:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


async def _pg_exec(statements: list[str]) -> None:
    engine = make_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            for statement in statements:
                await conn.execute(text(statement))
    finally:
        await engine.dispose()


def create_pg_database() -> str:
    """A fresh, migrated PostgreSQL database for this test session; returns its URL."""
    statements = [f'DROP DATABASE IF EXISTS "{PG_DB}" WITH (FORCE)', f'CREATE DATABASE "{PG_DB}"']
    try:
        in_thread(asyncio.run, _pg_exec(statements))
    except Exception as error:  # noqa: BLE001 - any connection failure
        unavailable("PostgreSQL", error)
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{PG_DB}"
    in_thread(upgrade, url)
    return url


def drop_pg_database() -> None:
    in_thread(asyncio.run, _pg_exec([f'DROP DATABASE IF EXISTS "{PG_DB}" WITH (FORCE)']))


async def truncate_pg(url: str) -> None:
    tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    finally:
        await engine.dispose()


def sqlite_template(directory: Path) -> Path:
    path = directory / "template.db"
    in_thread(upgrade, f"sqlite+aiosqlite:///{path}")
    return path


def sqlite_copy(template: Path, target_dir: Path) -> str:
    target = target_dir / "sekisho.db"
    shutil.copyfile(template, target)
    return f"sqlite+aiosqlite:///{target}"
