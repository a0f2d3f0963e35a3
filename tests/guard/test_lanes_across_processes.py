"""Two ``sekisho serve`` processes sharing a database (one SQLite file, or PostgreSQL) and
Redis see the same lockout lanes."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select
from support import live
from support.factories import seed_members

from sekisho.core import build_core
from sekisho.notify.models import OutboxMessage

PASSWORD = "kaede tsuki hoshi"
EMAIL = "shared-lanes@example.jp"


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def lock_mails(settings) -> int:
    core = build_core(settings)
    try:
        async with core.db.read() as db:
            return int(await db.scalar(select(func.count()).select_from(OutboxMessage)
                                       .where(OutboxMessage.template == "login_locked")))
    finally:
        await core.close()


def login(client: httpx.Client, password: str) -> tuple[int, str | None]:
    answer = client.post("/api/v1/login", json={"identifier": EMAIL, "password": password})
    return answer.status_code, (answer.json()["error"]["code"]
                                if answer.status_code >= 400 else None)


async def test_two_processes_share_lanes_through_redis(settings, redis_url, tmp_path):
    shared = settings.model_copy(update={"redis_url": redis_url, "rate_limits": {}})
    await seed_members(shared, [EMAIL], PASSWORD)
    env = live.settings_env(shared.model_dump())
    with live.serve_process(env, log_dir=tmp_path / "a") as one, \
            live.serve_process(env, log_dir=tmp_path / "b") as two:
        with httpx.Client(base_url=one.url) as owner_on_one, \
                httpx.Client(base_url=two.url) as owner_on_two:
            assert login(owner_on_one, PASSWORD) == (200, None)
            # The device cookie issued by one process is honoured by the other.
            owner_on_two.cookies.update(owner_on_one.cookies)
            answers = []
            for n in range(8):
                with httpx.Client(base_url=(one if n % 2 else two).url) as attacker:
                    answers.append(login(attacker, "not my password"))
            assert answers == [(401, "login.invalid_credentials")] * 5 + \
                [(429, "login.throttled")] * 3
            assert login(owner_on_two, PASSWORD) == (200, None)
            with httpx.Client(base_url=one.url) as stranger:
                assert login(stranger, PASSWORD) == (429, "login.throttled")
    assert await lock_mails(shared) == 1
