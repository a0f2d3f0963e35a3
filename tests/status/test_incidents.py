"""Incidents: their life through the service and through the admin API, and who may post."""

from __future__ import annotations

from datetime import timedelta

import pytest
from status.status_support import ADMIN_PATH

from sekisho.errors import SekishoError
from sekisho.errors.catalogue import CATALOGUE
from sekisho.status.components import Component
from sekisho.status.models import Impact, IncidentState
from sekisho.status.service import RESOLVED_NOTE, Bilingual

TITLE = {"ja": "メールが届きにくくなっています", "en": "Mail is slow to arrive"}
FIRST = {"ja": "原因を調査しています。", "en": "We are looking into it."}
CAUSE = {"ja": "メール配信事業者の障害です。", "en": "Our mail provider has an outage."}

# Proposed catalogue codes; until they are in the catalogue, the nearest existing ones.
NOT_FOUND = "incident.not_found" if "incident.not_found" in CATALOGUE else "request.not_found"
CLOSED = "incident.resolved" if "incident.resolved" in CATALOGUE else "request.invalid"


def opening(**changes):
    return {"title": TITLE, "message": FIRST, "components": ["email"], "impact": "degraded",
            **changes}


# --- through the service ------------------------------------------------------------------


async def test_lifecycle_through_the_service(incidents, clock):
    opened = await incidents.open(title=Bilingual(**TITLE), body=Bilingual(**FIRST),
                                  components=[Component.EMAIL, Component.EMAIL],
                                  impact=Impact.DEGRADED)
    assert (opened.state, opened.components, opened.resolved_at) == \
        (IncidentState.INVESTIGATING, ["email"], None)
    assert [u.state for u in opened.updates] == [IncidentState.INVESTIGATING]

    clock.advance(minutes=10)
    updated = await incidents.update(opened.id, state=IncidentState.IDENTIFIED,
                                     body=Bilingual(**CAUSE), impact=Impact.OUTAGE)
    assert (updated.state, updated.impact, updated.updated_at) == \
        (IncidentState.IDENTIFIED, Impact.OUTAGE, clock.now())

    clock.advance(minutes=10)
    await incidents.update(opened.id, state=IncidentState.MONITORING,
                           body=Bilingual("復旧を確認中です。", "A fix is in; we are watching."))
    clock.advance(minutes=10)
    resolved = await incidents.resolve(opened.id)
    assert (resolved.state, resolved.resolved_at) == (IncidentState.RESOLVED, clock.now())

    stored = await incidents.get(opened.id)
    # Newest first, each timestamped, in both languages.
    assert [u.state for u in stored.updates] == ["resolved", "monitoring", "identified",
                                                 "investigating"]
    assert [u.posted_at for u in stored.updates] == \
        [clock.now() - timedelta(minutes=m) for m in (0, 10, 20, 30)]
    assert (stored.updates[0].body_ja, stored.updates[0].body_en) == \
        (RESOLVED_NOTE.ja, RESOLVED_NOTE.en)
    assert stored.impact == Impact.OUTAGE  # kept from the update that changed it

    with pytest.raises(SekishoError) as closed:
        await incidents.update(opened.id, state=IncidentState.MONITORING,
                               body=Bilingual(**CAUSE))
    assert closed.value.code == CLOSED
    with pytest.raises(SekishoError) as missing:
        await incidents.get(opened.id + 1000)
    assert missing.value.code == NOT_FOUND


async def test_resolved_incidents_stay_visible_for_the_window(incidents, clock):
    old = await incidents.open(title=Bilingual(**TITLE), body=Bilingual(**FIRST),
                               components=[Component.LOGIN], impact=Impact.OUTAGE)
    await incidents.resolve(old.id)
    clock.advance(hours=1)
    current = await incidents.open(title=Bilingual(**TITLE), body=Bilingual(**FIRST),
                                   components=[Component.SMS], impact=Impact.DEGRADED)
    newer_resolved = await incidents.open(title=Bilingual(**TITLE), body=Bilingual(**FIRST),
                                          components=[Component.SMS], impact=Impact.DEGRADED)
    await incidents.resolve(newer_resolved.id)

    # Open first, then resolved, each newest first.
    assert [i.id for i in await incidents.visible()] == [current.id, newer_resolved.id, old.id]
    clock.advance(days=7)  # 7 days and 1 hour after the first was resolved
    assert [i.id for i in await incidents.visible()] == [current.id, newer_resolved.id]
    clock.advance(hours=1)
    assert [i.id for i in await incidents.visible()] == [current.id]
    # Staff still find them all.
    assert len(await incidents.newest()) == 3


@pytest.mark.parametrize(("change", "field", "reason"), [
    ({"components": []}, "components", "missing"),
    ({"title": Bilingual("", "Title")}, "title", "missing"),
    ({"body": Bilingual("本文", "x" * 4001)}, "message", "too_long"),
    ({"state": IncidentState.RESOLVED}, "state", "wrong_type"),
])
async def test_the_service_refuses_incomplete_incidents(incidents, change, field, reason):
    values = {"title": Bilingual(**TITLE), "body": Bilingual(**FIRST),
              "components": [Component.EMAIL], "impact": Impact.DEGRADED, **change}
    with pytest.raises(SekishoError) as refused:
        await incidents.open(**values)
    assert (refused.value.code, refused.value.field, refused.value.params["reason"]) == \
        ("request.invalid", field, reason)


# --- through the admin API ----------------------------------------------------------------


async def test_lifecycle_through_the_admin_api(staff, client, clock):
    created = await staff.post(ADMIN_PATH, json=opening(components=["email", "sms"]))
    assert created.status_code == 201, created.text
    incident = created.json()["incident"]
    number = incident["id"]
    assert incident["state"] == "investigating" and incident["title"] == TITLE
    assert incident["components"] == ["email", "sms"]
    assert incident["updates"] == [{"state": "investigating", "posted_at": "2026-01-05T03:00:00Z",
                                    "message": FIRST, "posted_by": staff.account_id}]
    assert incident["url"] == f"http://127.0.0.1:8000/status#incident-{number}"

    clock.advance(minutes=5)
    answer = await staff.post(f"{ADMIN_PATH}/{number}/updates",
                              json={"state": "identified", "message": CAUSE, "impact": "outage"})
    assert answer.status_code == 201, answer.text
    assert answer.json()["incident"]["impact"] == "outage"

    public = (await client.get("/status.json")).json()
    email = next(c for c in public["components"] if c["id"] == "email")
    assert (email["state"], email["incidents"]) == ("outage", [number])
    assert "posted_by" not in public["incidents"][0]["updates"][0]  # staff only

    clock.advance(minutes=5)
    closing = {"message": {"ja": "復旧しました。", "en": "Mail is flowing again."}}
    done = await staff.post(f"{ADMIN_PATH}/{number}/resolve", json=closing)
    assert done.status_code == 200, done.text
    resolved = done.json()["incident"]
    assert (resolved["state"], resolved["resolved_at"]) == ("resolved", "2026-01-05T03:10:00Z")
    assert [u["state"] for u in resolved["updates"]] == ["resolved", "identified",
                                                         "investigating"]

    again = await staff.post(f"{ADMIN_PATH}/{number}/updates",
                             json={"state": "monitoring", "message": CAUSE})
    assert again.status_code == CATALOGUE[CLOSED].status
    assert again.json()["error"]["code"] == CLOSED
    fetched = await staff.get(f"{ADMIN_PATH}/{number}")
    assert fetched.json()["incident"] == resolved
    missing = await staff.get(f"{ADMIN_PATH}/{number + 1000}")
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, NOT_FOUND)

    public = (await client.get("/status.json")).json()
    assert {c["state"] for c in public["components"]} == {"operational"}
    assert [i["state"] for i in public["incidents"]] == ["resolved"]


async def test_admin_list_and_resolve_without_a_note(staff):
    first = (await staff.post(ADMIN_PATH, json=opening())).json()["incident"]["id"]
    second = (await staff.post(ADMIN_PATH, json=opening(components=["login"],
                                                        state="identified"))).json()
    second_id = second["incident"]["id"]
    resolved = await staff.post(f"{ADMIN_PATH}/{first}/resolve")
    assert resolved.json()["incident"]["updates"][0]["message"] == \
        {"ja": RESOLVED_NOTE.ja, "en": RESOLVED_NOTE.en}

    listed = (await staff.get(ADMIN_PATH)).json()["incidents"]
    assert [i["id"] for i in listed] == [second_id, first]
    only_open = (await staff.get(ADMIN_PATH, params={"resolved": "false"})).json()
    assert [i["id"] for i in only_open["incidents"]] == [second_id]


@pytest.mark.parametrize(("body", "field"), [
    (opening(components=[]), "components"),
    (opening(components=["mainframe"]), "components"),
    (opening(impact="meh"), "impact"),
    (opening(title={"ja": "題"}), "title"),
    (opening(message={"ja": "", "en": "x"}), "message"),
])
async def test_admin_api_refuses_malformed_incidents(staff, body, field):
    answer = await staff.post(ADMIN_PATH, json=body)
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert (error["code"], error["field"]) == ("request.invalid", field)


async def test_admin_api_takes_json_only(staff):
    answer = await staff.post(ADMIN_PATH, content=b"title=x",
                              headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert answer.status_code == 415


# --- who may post -------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), [
    ("GET", ADMIN_PATH), ("POST", ADMIN_PATH), ("GET", f"{ADMIN_PATH}/1"),
    ("POST", f"{ADMIN_PATH}/1/updates"), ("POST", f"{ADMIN_PATH}/1/resolve"),
])
async def test_admin_api_needs_a_staff_session(client, member_client, method, path):
    anonymous = await client.request(method, path, json=opening())
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "auth.required"

    member = await member_client.request(method, path, json=opening())
    assert member.status_code == 403
    assert member.json()["error"]["code"] == "auth.forbidden"

    assert (await client.get("/status.json")).json()["incidents"] == []
