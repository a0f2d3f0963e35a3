"""Duplicate-safe JSON requests: ``Idempotency-Key`` (draft-ietf-httpapi-idempotency-key-header)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import redis.asyncio
from asgi_lifespan import LifespanManager
from conftest import make_client
from fastapi import FastAPI
from support.factories import Factory
from support.mailbox import Mailbox

from sekisho.app import create_app
from sekisho.errors import SekishoError
from sekisho.settings import Settings
from sekisho.web.idempotency_store import LEASE_SECONDS

DAY = 24 * 60 * 60
REGISTER = "/api/v1/registrations"
PASSWORD = "kaede tsuki hoshi sora"




@contextlib.asynccontextmanager
async def running(settings: Settings, clock: Any) -> AsyncIterator[FastAPI]:
    """One process of a deployment, started and stopped."""
    application = create_app(settings, clock=clock)
    async with LifespanManager(application):
        yield application


def keyed(key: str) -> dict[str, str]:
    return {"Idempotency-Key": f'"{key}"'}


def registration(email: str) -> dict[str, str]:
    return {"email": email, "password": PASSWORD}


def error_code(response: httpx.Response) -> str:
    return str(response.json()["error"]["code"])


def replayed(response: httpx.Response) -> bool:
    return response.headers.get("idempotent-replayed") == "true"


async def test_concurrent_duplicates_run_once_and_answer_alike(client, mailbox):
    answers = await asyncio.gather(*(
        client.post(REGISTER, json=registration("twenty@example.jp"), headers=keyed("k-20"))
        for _ in range(20)))
    assert {(a.status_code, a.content) for a in answers} == {(202, answers[0].content)}
    assert sum(replayed(a) for a in answers) == 19
    # Without the key these would be 1 confirmation mail and 19 "someone tried" mails.
    assert len(await mailbox.to("twenty@example.jp")) == 1


async def test_replay_is_marked_and_another_body_is_a_mismatch(client, mailbox):
    first = await client.post(REGISTER, json=registration("once@example.jp"),
                              headers=keyed("k-1"))
    again = await client.post(REGISTER, json=registration("once@example.jp"),
                              headers=keyed("k-1"))
    other = await client.post(REGISTER, json=registration("other@example.jp"),
                              headers=keyed("k-1"))
    assert (first.status_code, replayed(first)) == (202, False)
    assert (again.status_code, replayed(again), again.json()) == (202, True, first.json())
    assert (other.status_code, error_code(other)) == (422, "request.idempotency_mismatch")
    assert other.json()["error"]["reference"]
    assert len(await mailbox.to("once@example.jp")) == 1
    assert await mailbox.to("other@example.jp") == []


async def test_error_answers_are_kept_and_replayed(client, factory):
    member = await factory.member()
    body = {"identifier": member.email, "password": "not the password"}
    first = await client.post("/api/v1/login", json=body, headers=keyed("wrong"))
    again = await client.post("/api/v1/login", json=body, headers=keyed("wrong"))
    assert error_code(first) == "login.invalid_credentials"
    assert (again.status_code, again.json()) == (first.status_code, first.json())
    assert replayed(again)  # the same reference: one failure was counted, not two


async def test_replayed_login_sends_the_same_session(client, app, factory):
    member = await factory.member()
    body = {"identifier": member.email, "password": member.password}
    first = await client.post("/api/v1/login", json=body, headers=keyed("login"))
    client.cookies.clear()  # the client never saw that answer, which is why it retries
    again = await client.post("/api/v1/login", json=body, headers=keyed("login"))
    cookie = app.state.cookies.session
    assert first.status_code == again.status_code == 200
    assert again.json()["session_token"] == first.json()["session_token"]
    assert again.cookies[cookie] == first.cookies[cookie] == first.json()["session_token"]
    assert replayed(again) and again.headers["x-request-id"] != first.headers["x-request-id"]


async def test_keys_belong_to_one_caller_and_one_endpoint(app, client, factory, mailbox):
    elsewhere = make_client(app, ip="198.51.100.23")
    member = await factory.member()
    login = await client.post("/api/v1/login",
                              json={"identifier": member.email, "password": member.password})
    signed_in = {"Authorization": f"Bearer {login.json()['session_token']}"}
    client.cookies.clear()
    async with elsewhere:
        answers = [
            await client.post(REGISTER, json=registration("a@example.jp"), headers=keyed("same")),
            await elsewhere.post(REGISTER, json=registration("b@example.jp"),
                                 headers=keyed("same")),
            await client.post(REGISTER, json=registration("c@example.jp"),
                              headers={**keyed("same"), **signed_in}),
            await client.post("/api/v1/recovery", json={"identifier": member.email},
                              headers=keyed("same")),
        ]
    assert [(a.status_code, replayed(a)) for a in answers] == [(202, False)] * 4
    for address in ("a@example.jp", "b@example.jp", "c@example.jp"):
        assert len(await mailbox.to(address)) == 1


@pytest.mark.parametrize(("value", "reason"), [
    (b'"' + b"k" * 256 + b'"', "too_long"), (b'""', "missing"),
    ('"caf\u00e9"'.encode(), "wrong_type")])
async def test_malformed_keys_are_invalid_requests(client, mailbox, value, reason):
    answer = await client.post(REGISTER, json=registration("bad-key@example.jp"),
                               headers={"Idempotency-Key": value})
    error = answer.json()["error"]
    assert (answer.status_code, error["code"], error["field"], error["reason"]) == \
        (422, "request.invalid", "idempotency_key", reason)
    assert await mailbox.to("bad-key@example.jp") == []


async def test_a_bare_key_and_requests_without_a_key_work_as_before(client):
    bare = {"Idempotency-Key": "3f0e3b9c-bare"}
    body = registration("bare@example.jp")
    first = await client.post(REGISTER, json=body, headers=bare)
    assert replayed(await client.post(REGISTER, json=body, headers=bare))
    plain = await client.post(REGISTER, json=body)
    assert first.status_code == plain.status_code == 202 and not replayed(plain)
    assert not replayed(await client.get("/api/v1/session", headers=bare))


async def test_answers_asking_for_a_retry_are_not_kept(app, client, monkeypatch, mailbox,
                                                      factory):
    member = await factory.member()
    recovery = app.state.flows.recovery
    real = recovery.request
    failures = [RuntimeError("database went away"),
                SekishoError("request.rate_limited", retry_after=30)]

    async def flaky(**kwargs: Any) -> None:
        if failures:
            raise failures.pop(0)
        await real(**kwargs)

    monkeypatch.setattr(recovery, "request", flaky)
    body = {"identifier": member.email}
    statuses = [(await client.post("/api/v1/recovery", json=body, headers=keyed("r"))).status_code
                for _ in range(3)]
    last = await client.post("/api/v1/recovery", json=body, headers=keyed("r"))
    assert statuses == [500, 429, 202] and replayed(last)
    assert len(await mailbox.to(member.email)) == 1


async def test_a_duplicate_waits_then_gives_up_while_the_first_still_runs(app, client,
                                                                        monkeypatch):
    recovery = app.state.flows.recovery
    started, finish = asyncio.Event(), asyncio.Event()

    async def slow(**kwargs: Any) -> None:
        started.set()
        await finish.wait()

    monkeypatch.setattr(recovery, "request", slow)
    monkeypatch.setattr(app.state.idempotency, "wait_seconds", 0.2)
    body = {"identifier": "slow@example.jp"}
    first = asyncio.create_task(client.post("/api/v1/recovery", json=body, headers=keyed("s")))
    await started.wait()
    busy = await client.post("/api/v1/recovery", json=body, headers=keyed("s"))
    clash = await client.post("/api/v1/recovery", json={"identifier": "x@example.jp"},
                              headers=keyed("s"))
    finish.set()
    assert (await first).status_code == 202
    assert (busy.status_code, error_code(busy)) == (409, "request.idempotency_in_progress")
    assert busy.json()["error"]["retry_after"] == int(busy.headers["retry-after"]) > 0
    assert error_code(clash) == "request.idempotency_mismatch"  # no need to wait for that
    assert replayed(await client.post("/api/v1/recovery", json=body, headers=keyed("s")))


async def test_kept_for_the_ttl_then_the_key_runs_again(app, client, clock, mailbox):
    body = registration("day@example.jp")
    await client.post(REGISTER, json=body, headers=keyed("d"))
    clock.advance(app.state.idempotency.ttl - 1)
    assert replayed(await client.post(REGISTER, json=body, headers=keyed("d")))
    clock.advance(2)
    assert not replayed(await client.post(REGISTER, json=body, headers=keyed("d")))
    assert len(await mailbox.to("day@example.jp")) == 2


async def test_a_dead_request_frees_its_key_after_the_lease(app, clock):
    ledger = app.state.idempotency
    claim = await ledger.begin("ip:x", "POST", "/api/v1/x", "k", "fp", wait=0)
    with pytest.raises(SekishoError) as busy:
        await ledger.begin("ip:x", "POST", "/api/v1/x", "k", "fp", wait=0)
    assert busy.value.code == "request.idempotency_in_progress"
    clock.advance(LEASE_SECONDS + 1)  # its process died: the marker expires, the key is free again
    assert type(await ledger.begin("ip:x", "POST", "/api/v1/x", "k", "fp", wait=0)) is \
        type(claim)


# --- Redis: every process of a deployment sees the same keys ----------------------------------
@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_two_processes_share_keys_through_redis(settings, redis_url, clock):
    shared = settings.model_copy(update={"redis_url": redis_url})
    async with running(shared, clock) as one, running(shared, clock) as two:
        mailbox = Mailbox(one.state.worker, shared.outbox_dir)
        clients = [make_client(one), make_client(two)]
        body = registration("shared@example.jp")
        answers = await asyncio.gather(*(
            clients[n % 2].post(REGISTER, json=body, headers=keyed("across"))
            for n in range(10)))
        later = await clients[1].post(REGISTER, json=body, headers=keyed("across"))
        clash = await clients[0].post(REGISTER, json=registration("no@example.jp"),
                                      headers=keyed("across"))
        for http in clients:
            await http.aclose()
        assert {(a.status_code, a.content) for a in [*answers, later]} == \
            {(202, answers[0].content)}
        assert sum(not replayed(a) for a in answers) == 1 and replayed(later)
        assert error_code(clash) == "request.idempotency_mismatch"
        assert len(await mailbox.to("shared@example.jp")) == 1


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_what_redis_holds_reveals_no_session(settings, redis_url, clock):
    shared = settings.model_copy(update={"redis_url": redis_url})
    async with running(shared, clock) as application:
        member = await Factory(application.state.core).member()
        async with make_client(application) as http:
            body = {"identifier": member.email, "password": member.password}
            first = await http.post("/api/v1/login", json=body, headers=keyed("seal"))
            http.cookies.clear()
            again = await http.post("/api/v1/login", json=body, headers=keyed("seal"))
    assert again.json()["session_token"] == first.json()["session_token"]
    store = redis.asyncio.Redis.from_url(redis_url)
    names = await store.keys("sekisho:idem:*")
    values = [await store.get(n) for n in names]
    await store.aclose()
    assert len(values) == 1
    token = first.json()["session_token"].encode()
    assert all(token not in v and member.email.encode() not in v and b"seal" not in n
               for n, v in zip(names, values, strict=True))

