"""/api/v1/admin/maintenance: staff only; list, create, delete; changes apply at once."""

from __future__ import annotations

import pytest
from conftest import make_client
from maintenance.maintenance_support import log_in, tokyo
from sqlalchemy import select

from sekisho.events.models import AuthEvent
from sekisho.identity.models import Role

API = "/api/v1/admin/maintenance"
SUNDAY_NIGHT = {"recurrence": "weekly", "weekday": "sun", "start_time": "23:00",
                "duration_minutes": 480, "note_ja": "定期メンテナンス"}
EVERY_CALL = (("GET", API, None), ("POST", API, SUNDAY_NIGHT), ("DELETE", f"{API}/1", None))


@pytest.fixture
async def staff(app, factory, clock):
    """A client logged in as an admin (on Monday 2026-01-05, 12:00 in Tokyo)."""
    clock.set(tokyo(2026, 1, 5, 12, 0))
    admin = await factory.member(email="staff@example.jp", role=Role.ADMIN)
    async with make_client(app) as http:
        await log_in(http, admin.email)
        yield http


async def test_without_a_session_401_as_a_member_403(client, factory):
    for method, path, body in EVERY_CALL:
        answer = await client.request(method, path, json=body)
        assert answer.status_code == 401, (method, answer.text)
        assert answer.json()["error"]["code"] == "auth.required"
    member = await factory.member()
    await log_in(client, member.email)
    for method, path, body in EVERY_CALL:
        answer = await client.request(method, path, json=body)
        assert answer.status_code == 403, (method, answer.text)
        assert answer.json()["error"]["code"] == "auth.forbidden"


async def test_admin_creates_lists_and_deletes(staff, core):
    created = await staff.post(API, json=SUNDAY_NIGHT)
    assert created.status_code == 201, created.text
    window = created.json()
    assert window["recurrence"] == "weekly" and window["weekday"] == "sun"
    assert window["start_time"] == "23:00" and window["duration_minutes"] == 480
    assert window["components"] == [] and window["timezone"] == "Asia/Tokyo"
    assert window["next"] == {"starts_at": "2026-01-11T14:00:00Z",
                              "ends_at": "2026-01-11T22:00:00Z", "active": False}
    assert window["summary"] == "weekly sun 23:00 for 8h (Asia/Tokyo): all"

    one_off = await staff.post(API, json={
        "recurrence": "once", "starts_at": "2026-12-31T22:00",
        "ends_at": "2027-01-03T22:00+09:00", "components": ["registration"]})
    assert one_off.status_code == 201, one_off.text
    assert one_off.json()["starts_at"] == "2026-12-31T13:00:00Z"  # no offset: Tokyo time
    one_off_id = one_off.json()["id"]

    listed = (await staff.get(API)).json()
    assert [w["id"] for w in listed["windows"]] == [window["id"], one_off_id]

    assert (await staff.delete(f"{API}/{window['id']}")).status_code == 204
    gone = await staff.delete(f"{API}/{window['id']}")
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "request.not_found"
    assert [w["id"] for w in (await staff.get(API)).json()["windows"]] == [one_off_id]

    async with core.db.transaction() as db:
        events = (await db.scalars(select(AuthEvent).order_by(AuthEvent.id))).all()
    audited = [(e.detail["action"], e.detail["window_id"]) for e in events
               if "window_id" in (e.detail or {})]
    assert audited == [("maintenance_added", window["id"]), ("maintenance_added", one_off_id),
                       ("maintenance_removed", window["id"])]


@pytest.mark.parametrize(("body", "field", "reason"), [
    ({**SUNDAY_NIGHT, "duration_minutes": 7 * 24 * 60}, "duration", "out_of_range"),
    ({**SUNDAY_NIGHT, "weekday": "someday"}, "weekday", "wrong_type"),
    ({**SUNDAY_NIGHT, "start_time": "25:00"}, "start_time", "out_of_range"),
    ({**SUNDAY_NIGHT, "components": ["frontend"]}, "components", "unknown_component"),
    ({"recurrence": "yearly", "month": 2, "day": 30, "start_time": "00:00",
      "duration_minutes": 60}, "day", "out_of_range"),
    ({"recurrence": "once", "starts_at": "2026-01-02T00:00", "ends_at": "2026-01-01T00:00"},
     "ends_at", "ends_before_start"),
    ({**SUNDAY_NIGHT, "colour": "red"}, "colour", "wrong_type"),
])
async def test_invalid_windows_are_request_invalid(staff, body, field, reason):
    answer = await staff.post(API, json=body)
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert (error["code"], error["field"], error["reason"]) == ("request.invalid", field, reason)
    assert (await staff.get(API)).json()["windows"] == []


async def test_a_window_created_now_applies_at_once(staff, client, factory):
    member = await factory.member()
    await log_in(client, member.email)
    created = await staff.post(API, json={"recurrence": "once", "starts_at": "2026-01-05T11:00",
                                          "ends_at": "2026-01-05T13:00"})
    assert created.json()["next"]["active"] is True
    refused = await client.get("/api/v1/session")
    assert refused.status_code == 503
    assert refused.json()["error"]["retry_after"] == 3600
    assert (await staff.get(API)).status_code == 200  # staff keep working
    assert (await staff.delete(f"{API}/{created.json()['id']}")).status_code == 204
    assert (await client.get("/api/v1/session")).status_code == 200
