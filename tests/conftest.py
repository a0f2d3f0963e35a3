"""Shared fixtures: the app on SQLite and PostgreSQL, an HTTP client, the mailbox, factories."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from notify.notify_support import SmsSink, SmtpSink
from support import databases
from support.factories import Factory
from support.mailbox import Mailbox

from sekisho.app import create_app
from sekisho.clock import FrozenClock
from sekisho.core import Core
from sekisho.guard.limits import Action
from sekisho.settings import Settings

# Cheap argon2 parameters keep the suite fast; tests of the real cost set their own.
FAST_HASH = {"argon2_memory_kib": 1024, "argon2_time_cost": 1, "argon2_parallelism": 1}
BASE_URL = "http://127.0.0.1:8000"
# Most tests repeat actions far faster than a person; tests of the limits use the defaults.
NO_LIMITS = {a.value: {"per_ip": None, "per_key": None} for a in Action}


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return databases.sqlite_template(tmp_path_factory.mktemp("template"))


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    url = databases.create_pg_database()
    yield url
    databases.drop_pg_database()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path,
                       sqlite_template: Path) -> str:
    if backend == "sqlite":
        return databases.sqlite_copy(sqlite_template, tmp_path)
    url: str = request.getfixturevalue("postgres_url")
    await databases.truncate_pg(url)
    return url


@pytest.fixture
async def redis_url() -> AsyncIterator[str]:
    """Redis for state shared between processes, emptied before and after the test."""
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(databases.REDIS_URL)
    try:
        await client.flushdb()
    except Exception as error:  # noqa: BLE001 - any connection failure
        databases.unavailable("Redis", error)
    yield databases.REDIS_URL
    await client.flushdb()
    await client.aclose()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Override in a test module to change settings for its tests."""
    return {}


@pytest.fixture
def settings(tmp_path: Path, database_url: str, settings_overrides: dict[str, Any]) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path / "var", "database_url": database_url, "secret_key": "test-secret",
        "run_outbox_worker": False, "base_url": BASE_URL, "rate_limits": NO_LIMITS,
        # As with the limits: a frozen clock never refills the room's admission budget.
        "waiting_room_enabled": False,
        # An app started in the test process would keep pytest (and every server and browser
        # it starts later) on one CPU.
        "python_on_one_cpu": False,
        **FAST_HASH, **settings_overrides,
    }
    return Settings(**values)


@pytest.fixture
async def app(settings: Settings, clock: FrozenClock) -> AsyncIterator[FastAPI]:
    application = create_app(settings, clock=clock)
    async with LifespanManager(application):
        yield application


@pytest.fixture
def core(app: FastAPI) -> Core:
    return app.state.core  # type: ignore[no-any-return]


def make_client(app: FastAPI, ip: str = "203.0.113.7", **headers: str) -> httpx.AsyncClient:
    """A client calling the app in process, seen as coming from ``ip``."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=(ip, 50000))
    return httpx.AsyncClient(transport=transport, base_url=BASE_URL, headers=headers)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(app) as http:
        yield http


@pytest.fixture
def mailbox(app: FastAPI, settings: Settings) -> Mailbox:
    return Mailbox(app.state.worker, settings.outbox_dir)


@pytest.fixture
def factory(core: Core) -> Factory:
    return Factory(core)


# Real servers on loopback, for tests that deliver over SMTP and the SMS webhook.
@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    sink.start()
    yield sink
    sink.stop()


@pytest.fixture
def sms_sink() -> Iterator[SmsSink]:
    sink = SmsSink()
    yield sink
    sink.close()
