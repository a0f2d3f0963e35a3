"""Which address a request counts against: the socket's peer, or, behind a configured trusted
proxy, the first address in ``X-Forwarded-For`` that no trusted proxy added."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import make_client
from sqlalchemy import select

from sekisho.events.models import AuthEvent

PROXY = "10.0.0.5"
WRONG = "not my password"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"trusted_proxies": ["10.0.0.0/8"],
            "rate_limits": {"login_failed": {"per_ip": "3/hour"}}}


async def fail(app, peer: str, forwarded_for: str | None, identifier: str):
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    async with make_client(app, ip=peer, **headers) as browser:
        answer = await browser.post("/api/v1/login",
                                    json={"identifier": identifier, "password": WRONG})
    return answer.status_code, answer.json()["error"]


async def recorded_ip(core, reference: str) -> str | None:
    async with core.db.read() as db:
        event = await db.scalar(select(AuthEvent).where(AuthEvent.reference == reference))
    return event.ip


async def use_up_budget(app, core, client: str) -> None:
    """The three failures a client behind the proxy may make in an hour, counted to it."""
    for n in range(3):
        status, error = await fail(app, PROXY, client, f"victim{n}@example.jp")
        assert (status, error["code"]) == (401, "login.invalid_credentials")
    assert await recorded_ip(core, error["reference"]) == client


async def test_behind_a_trusted_proxy_each_client_has_its_own_budget(app, core):
    await use_up_budget(app, core, "203.0.113.9")
    status, error = await fail(app, PROXY, "203.0.113.9", "victim9@example.jp")
    assert (status, error["code"]) == (429, "request.rate_limited")
    # Another client behind the same proxy is not held back by the first one's failures.
    status, error = await fail(app, PROXY, "203.0.113.10", "victim10@example.jp")
    assert (status, error["code"]) == (401, "login.invalid_credentials")
    assert await recorded_ip(core, error["reference"]) == "203.0.113.10"


async def test_a_client_cannot_choose_its_address(app, core):
    await use_up_budget(app, core, "203.0.113.9")
    # Not a trusted proxy: its header is ignored, the peer is the client.
    status, error = await fail(app, "198.51.100.7", "203.0.113.20", "other@example.jp")
    assert (status, error["code"]) == (401, "login.invalid_credentials")
    assert await recorded_ip(core, error["reference"]) == "198.51.100.7"
    # Through the proxy, an address written by the client itself (left of what the proxy
    # appended) is neither believed nor charged: the limited client cannot shift its failures
    # onto someone else, nor escape its own budget by naming another address.
    status, error = await fail(app, PROXY, "203.0.113.30, 203.0.113.9", "victim8@example.jp")
    assert (status, error["code"]) == (429, "request.rate_limited")
    status, error = await fail(app, PROXY, "203.0.113.9, 203.0.113.31", "victim7@example.jp")
    assert (status, error["code"]) == (401, "login.invalid_credentials")
    assert await recorded_ip(core, error["reference"]) == "203.0.113.31"
    # Hops our own proxies added are skipped: two proxies in a row.
    status, error = await fail(app, PROXY, "203.0.113.32, 10.0.0.6", "victim6@example.jp")
    assert await recorded_ip(core, error["reference"]) == "203.0.113.32"
