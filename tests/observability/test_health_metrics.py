"""``/readyz``, ``/metrics``, and the JSON logs with the request id events also carry."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from asgi_lifespan import LifespanManager
from conftest import make_client
from prometheus_client.parser import text_string_to_metric_families

from notify.notify_support import Outbox

from sekisho.app import create_app
from sekisho.notify.worker import backoff
from sekisho.observability.logs import JsonFormatter


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def test_ready_when_database_answers_and_outbox_keeps_up(client, factory, clock, settings):
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["database"] == "ok"
    # A mail nobody delivers (the worker is off in tests) makes the outbox fall behind.
    await factory.member()
    await client.post("/api/v1/recovery", json={"identifier": "member1@example.jp"})
    clock.advance(seconds=settings.outbox_lag_limit_seconds + 1)
    behind = await client.get("/readyz")
    assert behind.status_code == 503 and behind.json()["status"] == "not_ready"
    assert behind.json()["checks"]["outbox_lag_seconds"] > settings.outbox_lag_limit_seconds


async def test_ready_checks_redis_when_configured(settings, redis_url):
    shared = create_app(settings.model_copy(update={"redis_url": redis_url}))
    async with LifespanManager(shared), make_client(shared) as http:
        ready = await http.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["redis"] == "ok"


async def test_metrics_count_login_outcomes_and_the_outbox(client, factory):
    member = await factory.member()
    await client.post("/api/v1/login", json={"identifier": member.email, "password": "nope nope"})
    await client.post("/api/v1/login", json={"identifier": member.email,
                                             "password": member.password})
    scraped = await client.get("/metrics")
    assert scraped.status_code == 200
    values = samples(scraped.text)
    assert values[("sekisho_events_total", (("kind", "login"),
                                            ("outcome", "login.invalid_credentials")))] == 1
    assert values[("sekisho_events_total", (("kind", "login"), ("outcome", "ok")))] == 1
    assert values[("sekisho_hash_queue_depth", ())] == 0
    assert values[("sekisho_waiting_room_waiting", ())] == 0
    # The new-device notice is waiting in the outbox.
    assert values[("sekisho_outbox_messages", (("channel", "email"), ("state", "pending")))] >= 1


@pytest.mark.parametrize("settings_overrides", [{"metrics_token": "s3cret-token"}])
async def test_metrics_token_guards_the_endpoint(client):
    refused = await client.get("/metrics", headers={"Accept": "application/json"})
    assert refused.status_code == 401
    allowed = await client.get("/metrics", headers={"Authorization": "Bearer s3cret-token"})
    assert allowed.status_code == 200 and "sekisho_hash_queue_depth" in allowed.text


async def test_access_log_is_json_with_the_request_id(client, caplog):
    caplog.set_level(logging.INFO, logger="sekisho.access")
    answer = await client.get("/healthz")
    record = next(r for r in caplog.records if r.name == "sekisho.access")
    line = json.loads(JsonFormatter().format(record))
    assert line["request_id"] == answer.headers["X-Request-Id"]
    assert (line["method"], line["path"], line["status"]) == ("GET", "/healthz", 200)
    assert line["level"] == "info" and "duration_ms" in line


async def test_metrics_count_failed_deliveries_and_show_the_delay(settings, clock, smtp_sink):
    """The mail server is down: every attempt counts at once, the delay from the threshold
    on, long before the message gives up (``sekisho_outbox_messages{state="failed"}``)."""
    mailing = create_app(settings.model_copy(update={"smtp_url": smtp_sink.url}), clock=clock)
    async with LifespanManager(mailing), make_client(mailing) as http:
        worker, core = mailing.state.worker, mailing.state.core

        async def scrape() -> dict[str, tuple[float, float]]:
            """Per channel: (failed attempts, delayed), delayed -1 where not reported."""
            values = samples((await http.get("/metrics")).text)
            return {channel: (values[("sekisho_delivery_failures_total", (("channel", channel),))],
                              values.get(("sekisho_delivery_delayed", (("channel", channel),)), -1))
                    for channel in ("email", "sms", "logout")}

        assert await scrape() == {"email": (0, 0), "sms": (0, 0), "logout": (0, -1)}
        smtp_sink.stop()
        await Outbox(core.db, core.notifier).email()
        for attempts in range(1, settings.delivery_degraded_after_failures + 1):
            assert await worker.run_once() == 1
            clock.advance(backoff(settings, attempts).total_seconds())
            if attempts < settings.delivery_degraded_after_failures:
                assert (await scrape())["email"] == (attempts, 0)
        assert await scrape() == {"email": (3, 1), "sms": (0, 0), "logout": (0, -1)}

        smtp_sink.start()
        assert await worker.run_once() == 1
        assert (await scrape())["email"] == (3, 0)


async def test_an_error_answer_carries_the_request_id_of_its_event_and_log_line(
        client, core, factory, caplog):
    caplog.set_level(logging.INFO, logger="sekisho.errors")
    member = await factory.member()
    refused = await client.post("/api/v1/login", json={"identifier": member.email,
                                                       "password": "nope nope"})
    assert refused.status_code == 401
    request_id = refused.headers["X-Request-Id"]
    reference = refused.json()["error"]["reference"]
    async with core.db.read() as session:
        events = await core.events.by_reference(session, reference)
    assert [(e.outcome, e.request_id) for e in events] == [("login.invalid_credentials",
                                                            request_id)]
    record = next(r for r in caplog.records if r.name == "sekisho.errors")
    line = json.loads(JsonFormatter().format(record))
    assert (line["request_id"], line["reference"], line["code"]) == (
        request_id, reference, "login.invalid_credentials")
    assert request_id not in line["message"]  # a field, not text to parse


async def test_not_ready_when_redis_is_unreachable(settings):
    # Nothing listens on port 1: the lanes, limits and room it would share are unreachable.
    app = create_app(settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"}))
    async with LifespanManager(app), make_client(app) as http:
        ready = await http.get("/readyz")
    assert ready.status_code == 503 and ready.json()["status"] == "not_ready"
    assert ready.json()["checks"]["redis"].startswith("error")
    assert ready.json()["checks"]["database"] == "ok"


@pytest.mark.parametrize("settings_overrides", [{
    "argon2_memory_kib": 65536, "argon2_time_cost": 3, "hash_concurrency": 1,
    "hash_queue_timeout_seconds": 0.05}])
async def test_metrics_show_the_hash_queue_waits_and_refusals(app, client, factory):
    member = await factory.member()
    body = {"identifier": member.email, "password": member.password}
    answers = await asyncio.gather(*[client.post("/api/v1/login", json=body)
                                     for _ in range(8)])
    busy = sum(a.status_code == 503 for a in answers)
    assert busy >= 1
    values = samples((await client.get("/metrics")).text)
    assert values[("sekisho_hash_busy_refusals_total", ())] == busy
    assert values[("sekisho_hash_waits_total", ())] >= busy
    assert values[("sekisho_hash_wait_seconds_total", ())] >= 0.05 * busy
    assert values[("sekisho_hash_queue_depth", ())] == 0


@pytest.mark.parametrize("settings_overrides", [{
    "waiting_room_enabled": True, "waiting_room_capacity": 1,
    "waiting_room_admissions_per_minute": 60}])
async def test_metrics_show_the_waiting_room(app):
    async with make_client(app, ip="203.0.113.1") as first, \
            make_client(app, ip="203.0.113.2") as second:
        assert (await first.get("/login")).status_code == 200
        assert (await second.get("/login")).status_code in (429, 503)
        values = samples((await first.get("/metrics")).text)
    assert values[("sekisho_waiting_room_admitted_total", ())] == 1
    assert values[("sekisho_waiting_room_active", ())] == 1
    assert values[("sekisho_waiting_room_waiting", ())] == 1
