"""What members see: ``/status``, ``/status.json``, ``/status.atom``, and the notice an error
page gets for a component in trouble."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from xml.etree import ElementTree as ET

import pytest
from fastapi import Request
from support.pages import submit

from sekisho.status.board import MaintenanceNote, build_board, components_for_path
from sekisho.status.components import Component
from sekisho.status.models import Impact, IncidentState
from sekisho.status.notice import status_notice
from sekisho.status.service import Bilingual

A = "{http://www.w3.org/2005/Atom}"
# RFC 3339 §5.6 date-time.
RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")
COMPONENT_KEYS = {"id", "name", "state", "message", "since", "incidents"}
INCIDENT_KEYS = {"id", "state", "impact", "components", "title", "opened_at", "updated_at",
                 "resolved_at", "url", "updates"}


def code_of(html: str) -> str:
    found = re.search(r'<section class="error" role="alert" data-code="([^"]+)"', html)
    assert found, "no error on the page"
    return found.group(1)


async def outage(incidents, clock, components=(Component.LOGIN,), impact=Impact.OUTAGE):
    return await incidents.open(
        title=Bilingual("ログインできない状態です", "Logins fail"),
        body=Bilingual("調査中です。", "We are investigating."),
        components=list(components), impact=impact)


# --- /status.json -------------------------------------------------------------------------


async def test_json_when_all_is_well(client):
    answer = await client.get("/status.json")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    body = answer.json()
    assert set(body) == {"updated", "status", "components", "incidents"}
    assert body["updated"] == "2026-01-05T03:00:00Z" and body["status"] == "operational"
    assert [c["id"] for c in body["components"]] == [c.value for c in Component]
    for component in body["components"]:
        assert set(component) == COMPONENT_KEYS
        assert (component["state"], component["message"], component["since"],
                component["incidents"]) == ("operational", None, None, [])
        assert set(component["name"]) == {"ja", "en"}
    email = body["components"][2]
    assert email["name"]["en"] == "Email delivery" and email["name"]["ja"] == "メール配信"
    assert body["incidents"] == []


async def test_json_with_incidents(client, incidents, clock):
    login = await outage(incidents, clock)
    clock.advance(minutes=3)
    sms = await outage(incidents, clock, (Component.SMS,), Impact.DEGRADED)
    clock.advance(minutes=3)
    await incidents.update(login.id, state=IncidentState.IDENTIFIED,
                           body=Bilingual("原因が判明しました。", "We found the cause."))

    body = (await client.get("/status.json")).json()
    assert body["status"] == "outage"
    states = {c["id"]: (c["state"], c["incidents"], c["since"]) for c in body["components"]}
    assert states["login"] == ("outage", [login.id], "2026-01-05T03:00:00Z")
    assert states["sms"] == ("degraded", [sms.id], "2026-01-05T03:03:00Z")
    assert states["email"] == ("operational", [], None)
    assert [i["id"] for i in body["incidents"]] == [sms.id, login.id]  # newest first
    first = body["incidents"][1]
    assert set(first) == INCIDENT_KEYS
    assert first["title"] == {"ja": "ログインできない状態です", "en": "Logins fail"}
    assert [(u["state"], u["posted_at"]) for u in first["updates"]] == [
        ("identified", "2026-01-05T03:06:00Z"), ("investigating", "2026-01-05T03:00:00Z")]
    assert first["updates"][0]["message"] == {"ja": "原因が判明しました。",
                                              "en": "We found the cause."}
    for stamp in (first["opened_at"], first["updated_at"], body["updated"]):
        assert RFC3339.fullmatch(stamp)


async def test_worst_open_incident_decides_and_resolution_clears(client, incidents, clock):
    degraded = await outage(incidents, clock, (Component.LOGIN,), Impact.DEGRADED)
    down = await outage(incidents, clock, (Component.LOGIN, Component.REGISTRATION))
    states = {c["id"]: c for c in (await client.get("/status.json")).json()["components"]}
    assert states["login"]["state"] == "outage"
    assert sorted(states["login"]["incidents"]) == sorted([degraded.id, down.id])
    await incidents.resolve(down.id)
    states = {c["id"]: c for c in (await client.get("/status.json")).json()["components"]}
    assert (states["login"]["state"], states["registration"]["state"]) == \
        ("degraded", "operational")


# --- maintenance (the hook for sekisho.maintenance) ---------------------------------------


class Planned:
    """A stand-in schedule: login is under maintenance until 05:00 UTC."""

    async def components_in_maintenance(self, now: datetime) -> dict[Component,
                                                                      MaintenanceNote]:
        return {Component.LOGIN: MaintenanceNote(now + timedelta(hours=2), "05:00まで",
                                                 "Until 05:00")}


async def test_maintenance_schedule_shows_components_under_maintenance(app, core, client,
                                                                        incidents, clock):
    app.state.status = build_board(core, app.state.worker, Planned())
    states = {c["id"]: c for c in (await client.get("/status.json")).json()["components"]}
    assert states["login"]["state"] == "maintenance"
    assert states["login"]["message"] == {"ja": "05:00まで", "en": "Until 05:00"}
    page = await client.get("/status", params={"lang": "en"})
    assert 'data-component="login" data-state="maintenance"' in page.text
    assert "Until 05:00" in page.text
    # An outage during maintenance is still an outage.
    await outage(incidents, clock)
    states = {c["id"]: c for c in (await client.get("/status.json")).json()["components"]}
    assert states["login"]["state"] == "outage"


# --- /status.atom -------------------------------------------------------------------------


def parse_feed(data: bytes) -> ET.Element:
    root = ET.fromstring(data)
    assert root.tag == f"{A}feed"
    for name in ("id", "title", "updated"):
        element = root.find(f"{A}{name}")
        assert element is not None and (element.text or "").strip(), name
    assert RFC3339.fullmatch(root.findtext(f"{A}updated") or "")
    assert root.find(f"{A}author/{A}name") is not None  # RFC 4287 §4.1.1: an author
    assert root.find(f"{A}link[@rel='self']") is not None
    for entry in root.findall(f"{A}entry"):
        for name in ("id", "title", "updated", "content"):
            element = entry.find(f"{A}{name}")
            assert element is not None and (element.text or "").strip(), name
        assert RFC3339.fullmatch(entry.findtext(f"{A}updated") or "")
    return root


async def test_atom_feed_is_valid_and_localised(client, incidents, clock):
    empty = await client.get("/status.atom")
    assert empty.status_code == 200
    assert empty.headers["content-type"] == "application/atom+xml; charset=utf-8"
    assert parse_feed(empty.content).findall(f"{A}entry") == []

    incident = await outage(incidents, clock)
    clock.advance(minutes=20)
    await incidents.resolve(incident.id)

    ja = parse_feed((await client.get("/status.atom")).content)
    en = parse_feed((await client.get("/status.atom", params={"lang": "en"})).content)
    assert ja.get("{http://www.w3.org/XML/1998/namespace}lang") == "ja"
    assert ja.findtext(f"{A}id") != en.findtext(f"{A}id")  # one feed per language
    assert ja.findtext(f"{A}updated") == "2026-01-05T03:20:00Z"
    (entry,) = en.findall(f"{A}entry")
    assert entry.findtext(f"{A}id") == f"http://127.0.0.1:8000/status#incident-{incident.id}"
    assert entry.findtext(f"{A}title") == "[Resolved] Logins fail"
    assert entry.findtext(f"{A}updated") == "2026-01-05T03:20:00Z"
    assert entry.findtext(f"{A}published") == "2026-01-05T03:00:00Z"
    content = entry.find(f"{A}content")
    assert content is not None and content.get("type") == "text"
    # Newest update first, times in the display time zone (Asia/Tokyo).
    assert content.text is not None
    assert content.text.index("This incident has been resolved.") < \
        content.text.index("We are investigating.")
    assert "2026-01-05 12:20" in content.text
    (ja_entry,) = ja.findall(f"{A}entry")
    assert "ログインできない状態です" in (ja_entry.findtext(f"{A}title") or "")


# --- the page -----------------------------------------------------------------------------


async def test_page_lists_components_and_incidents(client, incidents, clock):
    quiet = await client.get("/status")
    assert "<h1>サービスの状況</h1>" in quiet.text and "data-no-incidents" in quiet.text
    incident = await outage(incidents, clock)
    page = await client.get("/status", params={"lang": "en"})
    assert page.status_code == 200
    assert 'data-component="login" data-state="outage"' in page.text
    assert f'id="incident-{incident.id}"' in page.text
    assert "Logins fail" in page.text and "We are investigating." in page.text
    assert "2026-01-05 12:00" in page.text  # 03:00 UTC, shown in Asia/Tokyo
    ja = await client.get("/status")
    assert "ログインできない状態です" in ja.text and "Logins fail" not in ja.text


# --- notices for error pages --------------------------------------------------------------


@pytest.mark.parametrize(("path", "expected"), [
    ("/login", (Component.LOGIN,)),
    ("/api/v1/login", (Component.LOGIN,)),
    ("/login/mfa/sms", (Component.SMS, Component.SECOND_FACTORS, Component.LOGIN)),
    ("/verify/resend", (Component.REGISTRATION, Component.EMAIL)),
    ("/api/v1/verifications/email", (Component.REGISTRATION, Component.EMAIL)),
    ("/recovery/code", (Component.LOGIN, Component.EMAIL, Component.SMS)),
    ("/loginx", ()),
    ("/status", ()),
])
def test_components_for_path(path, expected):
    assert components_for_path(path) == expected


async def test_error_page_notice_links_the_incident(app, client, incidents, clock):
    async def probe(request: Request) -> dict:
        return {"notice": await status_notice(request)}

    app.add_api_route("/login/probe", probe)
    app.add_api_route("/status/probe", probe)
    assert (await client.get("/login/probe")).json() == {"notice": None}

    incident = await outage(incidents, clock)
    notice = (await client.get("/login/probe", params={"lang": "en"})).json()["notice"]
    assert notice == {"state": "outage", "component": "login", "incident": incident.id,
                      "href": f"/status?lang=en#incident-{incident.id}",
                      "text": "We know of a problem that may be behind this: Logins fail"}
    ja = (await client.get("/login/probe")).json()["notice"]
    assert "ログインできない状態です" in ja["text"]
    assert (await client.get("/status/probe")).json() == {"notice": None}  # no component


@pytest.mark.parametrize(("component", "page", "fields", "code"), [
    (Component.LOGIN, "/login", {"password": "not the password"}, "login.invalid_credentials"),
    (Component.REGISTRATION, "/register", {"email": "new@example.jp", "password": "short"},
     "password.too_short"),
])
async def test_a_form_error_links_the_incident(client, factory, incidents, clock, component,
                                               page, fields, code):
    member = await factory.member()
    fields = {"identifier": member.email, **fields}
    quiet = await submit(client, page, page, fields)
    assert code_of(quiet.text) == code and "data-status-notice" not in quiet.text

    incident = await outage(incidents, clock, (component,))
    refused = await submit(client, page, page, fields)
    # The form itself again, its error inline, and under it the incident it may be down to.
    assert refused.status_code in (400, 401, 422) and code_of(refused.text) == code
    assert f'action="{page}"' in refused.text
    assert 'data-status-notice="outage"' in refused.text
    assert f'href="/status?lang=ja#incident-{incident.id}"' in refused.text
    assert "ログインできない状態です" in refused.text

    await incidents.resolve(incident.id)
    assert "data-status-notice" not in (await submit(client, page, page, fields)).text


async def test_an_error_page_links_the_incident(client, incidents, clock):
    incident = await outage(incidents, clock)
    missing = await client.get("/login/nowhere", params={"lang": "en"})
    assert missing.status_code == 404 and code_of(missing.text) == "request.not_found"
    assert f'href="/status?lang=en#incident-{incident.id}"' in missing.text
    assert "We know of a problem that may be behind this: Logins fail" in missing.text


async def test_notice_survives_a_broken_database(app, core, client, incidents, clock):
    await outage(incidents, clock)
    board = build_board(core, app.state.worker)

    async def broken() -> list:
        raise ConnectionError("database went away")

    board.incidents.visible = broken  # type: ignore[method-assign]
    assert await board.notice_for([Component.LOGIN]) is None


class Broken:
    async def components_in_maintenance(self, now: datetime) -> dict[Component,
                                                                      MaintenanceNote]:
        raise RuntimeError("schedule unreadable")


async def test_a_failing_maintenance_schedule_does_not_take_status_down(app, core, client):
    app.state.status = build_board(core, app.state.worker, Broken())
    answer = await client.get("/status.json")
    assert answer.status_code == 200
    assert {c["state"] for c in answer.json()["components"]} == {"operational"}
