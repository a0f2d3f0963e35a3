"""Named rate limits: per IP and per key, shared through Redis when configured."""

from __future__ import annotations

import pytest
from conftest import make_client

from sekisho.app import create_app
from sekisho.guard.limits import DEFAULT_RULES, Action, RateLimiter


@pytest.fixture
def settings_overrides():
    return {"rate_limits": {}}  # the shipped defaults


async def test_registration_mails_one_address_at_most_three_times_an_hour(client, mailbox):
    body = {"email": "target@example.jp", "password": "kaede tsuki hoshi"}
    statuses = [(await client.post("/api/v1/registrations", json=body)).status_code
                for _ in range(3)]
    assert statuses == [202, 202, 202]
    refused = await client.post("/api/v1/registrations", json=body)
    assert refused.status_code == 429
    error = refused.json()["error"]
    assert (error["code"], error["limit"]) == ("request.rate_limited", "registration")
    assert int(refused.headers["Retry-After"]) == error["retry_after"] > 0
    assert len(await mailbox.to("target@example.jp")) == 3
    other = await client.post("/api/v1/registrations",
                              json={**body, "email": "someone-else@example.jp"})
    assert other.status_code == 202


async def test_refused_passwords_do_not_use_up_the_registration_limit(client, mailbox):
    body = {"email": "careful@example.jp"}
    for weak in ("short", "password1", "qwertyuiop", "12345678"):
        refused = await client.post("/api/v1/registrations", json={**body, "password": weak})
        assert refused.json()["error"]["code"].startswith("password.")
    accepted = await client.post("/api/v1/registrations",
                                 json={**body, "password": "kaede tsuki hoshi"})
    assert accepted.status_code == 202
    assert [m.template for m in await mailbox.to("careful@example.jp")] == ["verify_email"]


async def test_limit_keys_are_not_stored_in_clear(app, client, core):
    await client.post("/api/v1/recovery", json={"identifier": "private@example.jp"})
    stored = repr(core.limiter.storage.storage) + repr(core.limiter.storage.events)
    assert "private@example.jp" not in stored
    assert core.events.identifier_hash("private@example.jp") in stored


async def test_recovery_limit_is_the_same_for_known_and_unknown(app, factory):
    member = await factory.member()
    bodies = []
    for ip, identifier in (("198.51.100.1", member.email), ("198.51.100.2", "nobody@example.jp")):
        async with make_client(app, ip=ip) as client:
            answers = [await client.post("/api/v1/recovery", json={"identifier": identifier})
                       for _ in range(6)]
        assert [a.status_code for a in answers] == [202] * 5 + [429]
        bodies.append({k: v for k, v in answers[-1].json()["error"].items() if k != "reference"})
    assert bodies[0] == bodies[1]
    # Spelling it differently does not buy more requests: the key is normalised.
    async with make_client(app, ip="198.51.100.3") as client:
        shouted = await client.post("/api/v1/recovery", json={"identifier": member.email.upper()})
    assert shouted.status_code == 429


async def test_login_limit_is_per_client_ip(app, factory):
    member = await factory.member()
    core = app.state.core
    core.limiter = RateLimiter(key_hash=core.events.identifier_hash,
                               overrides={"login": {"per_ip": "3/minute"}})
    creds = {"identifier": member.email, "password": member.password}
    async with make_client(app) as first:
        for _ in range(3):
            assert (await first.post("/api/v1/login", json=creds)).status_code == 200
        refused = await first.post("/api/v1/login", json=creds)
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "request.rate_limited"
    async with make_client(app, ip="198.51.100.9") as second:
        assert (await second.post("/api/v1/login", json=creds)).status_code == 200


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_two_instances_share_counts_through_redis(settings, clock, redis_url):
    shared = settings.model_copy(update={
        "redis_url": redis_url, "rate_limits": {"recovery_request": {"per_key": "4/hour"}}})
    one, two = create_app(shared, clock=clock), create_app(shared, clock=clock)
    body = {"identifier": "shared@example.jp"}
    async with make_client(one) as a, make_client(two) as b:
        statuses = [(await (a if i % 2 else b).post("/api/v1/recovery", json=body)).status_code
                    for i in range(5)]
    assert statuses == [202, 202, 202, 202, 429]
    await one.state.core.db.dispose()
    await two.state.core.db.dispose()


def test_every_action_has_a_rule():
    assert set(DEFAULT_RULES) == set(Action)
