"""Fixtures for the notify tests: a real SQLite database in tmp_path, a FrozenClock, and
real loopback servers for SMTP and the SMS gateway (see ``notify_support``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from notify.notify_support import Outbox

from sekisho.clock import FrozenClock
from sekisho.db import Database
from sekisho.models import Base
from sekisho.notify.service import Notifier
from sekisho.settings import Settings


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        secret_key="test-secret-key",
        base_url="https://id.example.test",
        smtp_from="sekisho <no-reply@example.test>",
        service_name="sekisho",
        outbox_backoff_base_seconds=5,
        outbox_backoff_max_seconds=60,
        outbox_max_attempts=4,
        outbox_poll_seconds=30,  # long: a test that sees delivery quickly saw wake() work
    )


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'notify.db'}")
    async with db.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    yield db
    await db.dispose()


@pytest.fixture
def notifier(settings: Settings, clock: FrozenClock) -> Notifier:
    return Notifier(settings, clock)


@pytest.fixture
def outbox(database: Database, notifier: Notifier) -> Outbox:
    return Outbox(database, notifier)


