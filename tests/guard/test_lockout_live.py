"""The owner-versus-attacker scenario over real HTTP: a ``sekisho serve`` process behind a
trusted proxy (this test, naming each client in ``X-Forwarded-For``), on each database, with
lanes in the process and in Redis."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select
from support import live
from support.factories import seed_members

from sekisho.core import build_core
from sekisho.notify.models import OutboxMessage

PASSWORD = "kaede tsuki hoshi"
MEMBER = "live-owner@example.jp"
NOBODY = "live-nobody@example.jp"


@pytest.fixture(params=["memory", "redis"])
def lanes(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def server(settings, lanes, request, tmp_path):
    values: dict[str, Any] = {
        "trusted_proxies": ["127.0.0.1/32"],
        # The owner's hundred logins would take days at the shipped limit; the per-IP
        # failure budget stays as shipped (the botnet spreads over 200 addresses).
        "rate_limits": {"login": {"per_ip": "10000/minute"}}}
    if lanes == "redis":
        values["redis_url"] = request.getfixturevalue("redis_url")
    shared = settings.model_copy(update=values)
    with live.serve_process(live.settings_env(shared.model_dump()), log_dir=tmp_path) as s:
        yield shared, s


def login(client: httpx.Client, identifier: str, password: str, ip: str) -> tuple[int, dict]:
    answer = client.post("/api/v1/login", json={"identifier": identifier, "password": password},
                         headers={"X-Forwarded-For": ip})
    body = answer.json()
    return answer.status_code, {k: v for k, v in body.get("error", {}).items()
                                if k != "reference"}


def attack(bot: httpx.Client, identifier: str, start: int, attempts: int
           ) -> list[tuple[int, dict]]:
    """Wrong passwords from rotating addresses, each from a browser with no cookies."""
    answers = []
    for n in range(start, start + attempts):
        bot.cookies.clear()
        answers.append(login(bot, identifier, "not my password", f"198.51.100.{n % 200 + 1}"))
    return answers


async def mails(settings) -> list[tuple[str, str]]:
    core = build_core(settings)
    try:
        async with core.db.read() as db:
            rows = await db.execute(select(OutboxMessage.recipient, OutboxMessage.template))
            return [(r, t) for r, t in rows]
    finally:
        await core.close()


async def test_a_thousand_attempts_never_keep_the_owner_out(server):
    settings, s = server
    await seed_members(settings, [MEMBER], PASSWORD)
    owner_statuses, attacker = [], []
    with httpx.Client(base_url=s.url, timeout=10) as owner, \
            httpx.Client(base_url=s.url, timeout=10) as bot:
        assert login(owner, MEMBER, PASSWORD, "203.0.113.50")[0] == 200
        for round_ in range(100):
            attacker += attack(bot, MEMBER, round_ * 10, 10)
            owner_statuses.append(login(owner, MEMBER, PASSWORD, "203.0.113.50")[0])
        # The same sequence against an identifier nobody has: the same answers.
        stranger = attack(bot, NOBODY, 0, 30)
    assert owner_statuses == [200] * 100
    assert [status for status, _ in attacker[:5]] == [401] * 5
    assert {(status, body["code"]) for status, body in attacker[5:]} == {
        (429, "login.throttled")}
    assert all(body["retry_after"] > 0 for _, body in attacker[5:])
    assert stranger == attacker[:30]
    sent = await mails(settings)
    assert sent.count((MEMBER, "login_locked")) == 1
    assert sent.count((MEMBER, "new_device_login")) == 1  # the owner's first login only
