"""During a window, pages and API answer 503 service.maintenance; staff and probes pass."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from conftest import make_client
from maintenance.maintenance_support import log_in, once, tokyo, weekly, yearly

from sekisho.identity.models import Role
from sekisho.maintenance.service import MaintenanceSchedule
from sekisho.notify.models import MEMBER_CHANNELS, Channel
from sekisho.settings import Settings
from sekisho.status.components import Component

REFERENCE = re.compile(r"R-[2-9A-HJ-NP-Z]{4}-[2-9A-HJ-NP-Z]{4}")
SUNDAY_NIGHT = weekly(6, 23, 0, timedelta(hours=8))  # Sunday 23:00 to Monday 07:00, Tokyo


async def login_attempt(client, **headers):
    return await client.post("/api/v1/login", headers=headers,
                             json={"identifier": "nobody@example.jp", "password": "whatever"})


async def test_weekly_window_across_midnight_closes_pages_and_api(client, schedule, clock, core):
    await schedule.add(SUNDAY_NIGHT)
    clock.set(tokyo(2026, 1, 11, 22, 59))
    assert (await client.get("/login")).status_code == 200
    assert (await login_attempt(client)).status_code == 401

    clock.set(tokyo(2026, 1, 12, 1, 0))  # Monday 01:00: six hours left
    page = await client.get("/login")
    assert page.status_code == 503
    assert page.headers["retry-after"] == str(6 * 3600)
    assert 'data-code="service.maintenance"' in page.text
    assert "data-maintenance" in page.text and "2026-01-12 07:00" in page.text
    assert REFERENCE.search(page.text)
    assert page.headers["x-content-type-options"] == "nosniff"  # still inside EdgeMiddleware

    answer = await login_attempt(client)
    assert answer.status_code == 503
    error = answer.json()["error"]
    assert error["code"] == "service.maintenance"
    assert error["retry_after"] == 6 * 3600 == int(answer.headers["retry-after"])
    assert error["ends_at"] == "2026-01-11T22:00:00Z"
    assert "2026-01-12 07:00" in error["remedy"]
    async with core.db.transaction() as db:
        events = await core.events.by_reference(db, error["reference"])
    assert [e.outcome for e in events] == ["service.maintenance"]
    assert events[0].detail["path"] == "/api/v1/login"

    english = (await login_attempt(client, **{"Accept-Language": "en"})).json()["error"]
    assert english["code"] == "service.maintenance"
    assert english["message"] != error["message"] and "2026-01-12 07:00" in english["remedy"]
    page_en = await client.get("/register?lang=en")
    assert page_en.status_code == 503 and '<html lang="en">' in page_en.text

    clock.set(tokyo(2026, 1, 12, 7, 0))
    assert (await client.get("/login")).status_code == 200
    assert (await login_attempt(client)).status_code == 401


async def test_yearly_window_across_new_year(client, schedule, clock):
    await schedule.add(yearly(12, 31, 22, 0, timedelta(days=3)))
    clock.set(tokyo(2026, 12, 31, 21, 59))
    assert (await client.get("/api/v1/session")).json()["error"]["code"] == "auth.required"
    clock.set(tokyo(2027, 1, 2, 12, 0))
    answer = await client.get("/api/v1/session")
    assert answer.status_code == 503
    assert answer.json()["error"]["retry_after"] == 34 * 3600  # to Jan 3 22:00
    assert (await client.get("/account")).status_code == 503
    clock.set(tokyo(2027, 1, 3, 22, 0))
    assert (await client.get("/api/v1/session")).status_code == 401


async def test_probes_status_and_assets_always_answer(client, schedule, clock):
    await schedule.add(SUNDAY_NIGHT)
    clock.set(tokyo(2026, 1, 12, 3, 0))
    for path in ("/healthz", "/status", "/static/sekisho.css"):
        assert (await client.get(path)).status_code == 200, path
    assert (await client.get("/")).status_code == 503


async def test_staff_pass_through_members_do_not(app, client, schedule, clock, factory):
    admin = await factory.member(email="staff@example.jp", role=Role.ADMIN)
    member = await factory.member(email="member@example.jp")
    await schedule.add(SUNDAY_NIGHT)
    clock.set(tokyo(2026, 1, 11, 22, 50))
    async with make_client(app) as staff_client, make_client(app) as member_client:
        staff_token = await log_in(staff_client, admin.email)
        await log_in(member_client, member.email)
        clock.set(tokyo(2026, 1, 11, 23, 10))
        assert (await staff_client.get("/api/v1/session")).status_code == 200
        assert (await staff_client.get("/account")).status_code == 200
        bearer = await client.get("/api/v1/session",
                                  headers={"Authorization": f"Bearer {staff_token}"})
        assert bearer.status_code == 200
        refused = await member_client.get("/api/v1/session")
        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == "service.maintenance"
        assert (await member_client.get("/account")).status_code == 503


async def test_partial_window_closes_only_its_routes(client, schedule, clock):
    await schedule.add(once(tokyo(2026, 1, 5, 11, 0), tokyo(2026, 1, 5, 13, 0),
                            Component.REGISTRATION))
    clock.set(tokyo(2026, 1, 5, 12, 0))
    page = await client.get("/register")
    assert page.status_code == 503
    assert 'data-components="registration"' in page.text
    api = await client.post("/api/v1/registrations",
                            json={"email": "new@example.jp", "password": "kaede tsuki hoshi"})
    assert api.status_code == 503
    assert api.json()["error"]["components"] == ["registration"]
    assert api.json()["error"]["retry_after"] == 3600
    assert (await client.get("/verify")).status_code == 503
    assert (await client.get("/login")).status_code == 200
    assert (await login_attempt(client)).status_code == 401
    assert (await client.get("/recovery")).status_code == 200


async def test_sms_window_closes_sms_routes_and_holds_the_sms_outbox(client, schedule, clock):
    await schedule.add(weekly(6, 23, 0, timedelta(hours=8), Component.SMS))
    clock.set(tokyo(2026, 1, 12, 2, 0))
    sms = await client.post("/api/v1/login/mfa/sms", json={"flow": "x"})
    assert sms.status_code == 503
    assert sms.json()["error"]["components"] == ["sms"]
    assert (await login_attempt(client)).status_code == 401
    assert (await client.get("/login")).status_code == 200
    assert await schedule.held_channels(clock.now()) == {Channel.SMS}
    assert await schedule.held_channels(tokyo(2026, 1, 12, 7, 0)) == frozenset()


async def test_whole_service_window_holds_every_member_channel(schedule, clock):
    # Back-channel logout notices to relying parties keep going: they end sign-ins.
    await schedule.add(SUNDAY_NIGHT)
    assert await schedule.held_channels(tokyo(2026, 1, 12, 2, 0)) == set(MEMBER_CHANNELS)


async def test_windows_are_read_from_memory_between_reloads(core, schedule, clock):
    """The hot path reads the database at most once per reload interval."""
    ticks = [0.0]
    cached = MaintenanceSchedule(core.db, clock, core.settings, monotonic=lambda: ticks[0])
    clock.set(tokyo(2026, 1, 12, 2, 0))
    assert await cached.active(clock.now()) is None  # loads the (empty) list
    await schedule.add(SUNDAY_NIGHT)  # through another process's schedule, as it were
    ticks[0] = cached.reload_seconds - 0.1
    assert await cached.active(clock.now()) is None
    ticks[0] = cached.reload_seconds + 0.1
    window = await cached.active(clock.now())
    assert window is not None and window.ends_at == tokyo(2026, 1, 12, 7, 0)


async def test_status_page_shows_the_components_under_maintenance(client, schedule, clock):
    await schedule.add(weekly(6, 23, 0, timedelta(hours=8), Component.SMS,
                              note_en="Gateway upgrade."))
    clock.set(tokyo(2026, 1, 12, 2, 0))
    states = {c["id"]: c for c in (await client.get("/status.json")).json()["components"]}
    assert states["sms"]["state"] == "maintenance"
    assert states["sms"]["message"]["en"] == "Gateway upgrade."
    assert states["login"]["state"] == "operational"


async def test_a_failing_database_does_not_turn_maintenance_into_errors(
        client, core, schedule, clock, monkeypatch):
    """The window may be for the database itself: the last known windows stay in force, and
    a session that cannot be checked is answered as a member's."""
    await schedule.add(SUNDAY_NIGHT)
    clock.set(tokyo(2026, 1, 12, 2, 0))
    assert await schedule.active(clock.now()) is not None

    async def broken(*args, **kwargs):
        raise ConnectionError("database is down for maintenance")

    monkeypatch.setattr(core.db, "run", broken)
    monkeypatch.setattr(core.sessions, "resolve", broken)
    schedule.invalidate()
    answer = await client.get("/api/v1/session", headers={"Authorization": "Bearer some-token"})
    assert answer.status_code == 503
    assert answer.json()["error"]["code"] == "service.maintenance"
    assert REFERENCE.fullmatch(answer.json()["error"]["reference"])


@pytest.mark.skipif("maintenance_timezone" not in Settings.model_fields,
                    reason="the maintenance_timezone setting arrives with the settings snippet")
@pytest.mark.parametrize("settings_overrides", [{"maintenance_timezone": "Europe/Berlin"}])
async def test_windows_follow_the_configured_time_zone(client, schedule, clock):
    await schedule.add(SUNDAY_NIGHT)  # Sunday 23:00 for 8 hours, now in Berlin
    clock.set(datetime(2026, 1, 11, 21, 59, tzinfo=UTC))  # 22:59 in Berlin, 06:59 in Tokyo
    assert (await client.get("/login")).status_code == 200
    clock.set(datetime(2026, 1, 11, 22, 0, tzinfo=UTC))
    answer = await client.get("/api/v1/session")
    assert answer.status_code == 503 and answer.json()["error"]["retry_after"] == 8 * 3600
