"""The door: who is asked to wait, what they see, and who walks past the line."""

from __future__ import annotations

import asyncio
import math
import re

import httpx
import pytest
from conftest import make_client
from sqlalchemy import select
from support.factories import DEFAULT_PASSWORD

from sekisho.events.models import AuthEvent, EventKind
from sekisho.identity.models import Role
from sekisho.waiting_room.passes import RoomTokens
from sekisho.waiting_room.service import MAX_REFRESH_SECONDS, MIN_REFRESH_SECONDS

ONE_SLOT = {"waiting_room_enabled": True, "waiting_room_capacity": 1,
            "waiting_room_admissions_per_minute": 60, "waiting_room_pass_seconds": 120}
EVERYTHING = {**ONE_SLOT, "waiting_room_paths": ["/"]}
COOKIE = "sekisho_waiting_room"
REFERENCE = re.compile(r"お問い合わせ番号: <strong>(R-[2-9A-Z]{4}-[2-9A-Z]{4})</strong>")


def room(app):
    return app.state.waiting_room


async def login(client, email: str, password: str = DEFAULT_PASSWORD):
    return await client.post("/api/v1/login", json={"identifier": email, "password": password})


@pytest.mark.parametrize("room_settings", [EVERYTHING])
async def test_probes_assets_and_the_switch_never_wait(app, client):
    await room(app).hold(None)
    for path in ("/healthz", "/readyz", "/metrics", "/static/sekisho.css",
                 "/api/v1/admin/waiting-room"):
        answer = await client.get(path)
        assert answer.status_code != 429, path
    assert (await client.get("/healthz")).status_code == 200
    assert (await client.get("/static/sekisho.css")).status_code == 200
    # Everything else waits, here: the operator put the whole site behind the room.
    assert (await client.get("/status")).status_code == 429
    # A path that would send the refreshing page elsewhere is folded back onto this site.
    answer = await client.get(httpx.URL("http://127.0.0.1:8000//elsewhere.example/login"),
                              headers={"Accept": "text/html"})
    assert answer.headers["Refresh"].endswith("; url=/elsewhere.example/login")


async def test_only_the_configured_paths_wait(app, client):
    await room(app).hold(None)
    assert (await client.get("/login")).status_code == 429
    assert (await client.get("/login/mfa")).status_code == 429  # below a guarded prefix
    assert (await client.get("/register")).status_code == 429
    assert (await client.get("/recovery")).status_code == 200
    assert (await client.get("/loginx")).status_code == 404  # a prefix of whole segments
    assert (await client.options("/api/v1/login")).status_code != 429  # CORS preflights


@pytest.mark.parametrize("room_settings", [ONE_SLOT])
async def test_the_waiting_page_in_japanese_and_english(app, client):
    async with make_client(app, ip="192.0.2.1") as other:
        assert (await other.get("/login")).status_code == 200  # takes the one slot
    page = await client.get("/login?next=/account")
    assert page.status_code == 429 and page.headers["content-type"].startswith("text/html")
    assert page.headers["Refresh"] == f"{page.headers['Retry-After']}; url=/login?next=/account"
    assert page.headers["Cache-Control"] == "no-store"
    assert 'data-position="1"' in page.text and "ただいま混み合っているため" in page.text
    reference = REFERENCE.search(page.text)
    assert reference, page.text
    again = await client.get("/login?lang=en")
    assert 'data-position="1"' in again.text and "You are in line" in again.text
    assert reference.group(1) in again.text  # the same ticket, the same reference
    posted = await client.post("/login", data={"identifier": "x"})
    assert posted.status_code == 429 and posted.headers["Refresh"].endswith("; url=/login")


async def test_the_api_answer_and_clients_that_keep_no_cookies(app, client, clock):
    await room(app).hold(None)
    first = await login(client, "someone@example.jp", "whatever")
    error = first.json()["error"]
    assert first.status_code == 429 and error["code"] == "service.queue"
    assert (error["position"], error["eta_seconds"], error["opens_at"]) == (None, None, None)
    assert error["retry_after"] == MAX_REFRESH_SECONDS
    assert first.headers["Retry-After"] == str(MAX_REFRESH_SECONDS)
    ticket = error["ticket"]
    assert first.headers["Sekisho-Waiting-Room"] == ticket
    await room(app).open()
    client.cookies.clear()  # an app without a cookie store sends the ticket back instead
    second = await client.post("/api/v1/login", json={"identifier": "a@example.jp",
                                                      "password": "whatever"},
                               headers={"Sekisho-Waiting-Room": ticket})
    # The room opened with budget to spare: its first in line goes straight through.
    assert second.status_code == 401
    pass_ = second.headers["Sekisho-Waiting-Room"]
    assert pass_.startswith("p.")
    client.cookies.clear()
    third = await client.get("/login", headers={"Sekisho-Waiting-Room": pass_})
    assert third.status_code == 200 and "Sekisho-Waiting-Room" not in third.headers


async def test_a_forged_or_expired_pass_counts_for_nothing(app, client, clock):
    assert (await client.get("/login")).status_code == 200
    genuine = client.cookies[COOKIE]
    await room(app).hold(None)
    assert (await client.get("/login")).status_code == 200  # a pass outlives a hold
    forged = RoomTokens(b"some other secret").issue_pass("d1", clock.now().timestamp() + 60)
    tampered = genuine[:-2] + ("AA" if not genuine.endswith("AA") else "BB")
    for value in (forged, tampered, genuine.replace(".d1.", ".d2.")):
        async with make_client(app) as other:
            other.cookies.set(COOKIE, value)
            assert (await other.get("/login")).status_code == 429, value
    clock.advance(120)
    assert (await client.get("/login")).status_code == 429


@pytest.mark.parametrize("room_settings", [ONE_SLOT])
async def test_logging_in_frees_the_slot_for_the_next_in_line(app, factory, clock):
    member = await factory.member(email="room-member@example.jp")
    async with make_client(app, ip="192.0.2.1") as first, \
            make_client(app, ip="192.0.2.2") as second:
        assert (await first.get("/login")).status_code == 200
        assert (await second.get("/login")).status_code == 429  # the one slot is taken
        clock.advance(5)
        assert (await second.get("/login")).status_code == 429  # budget, but no slot
        answer = await login(first, member.email)
        assert answer.status_code == 200
        cleared = [c for c in answer.headers.get_list("set-cookie") if c.startswith(COOKIE)]
        assert cleared and "Max-Age=0" in cleared[0]
        assert COOKIE not in first.cookies
        assert (await second.get("/login")).status_code == 200
        status = await room(app).status()
        assert (status.active, status.waiting, status.admitted_total) == (1, 0, 2)


async def called_while_away(app, factory, clock, called, next_) -> None:
    """``called`` heads the line and is called once the one slot frees, while away;
    ``next_`` waits behind."""
    member = await factory.member(email="room-member@example.jp")
    async with make_client(app, ip="192.0.2.1") as first:
        assert (await first.get("/login")).status_code == 200
        assert (await called.get("/login")).status_code == 429
        assert (await next_.get("/login")).status_code == 429
        assert (await login(first, member.email)).status_code == 200  # the slot is free
    clock.advance(2)
    waiting = await next_.get("/login", headers={"Accept": "application/json"})
    assert waiting.json()["error"]["position"] == 1


@pytest.mark.parametrize("room_settings", [ONE_SLOT])
async def test_a_called_visitor_back_within_the_longest_refresh_gets_the_slot(app, factory,
                                                                             clock):
    async with make_client(app, ip="192.0.2.2") as called, \
            make_client(app, ip="192.0.2.3") as next_:
        await called_while_away(app, factory, clock, called, next_)
        clock.advance(MAX_REFRESH_SECONDS)
        assert (await called.get("/login")).status_code == 200
        assert (await next_.get("/login")).status_code == 429


@pytest.mark.parametrize("room_settings", [ONE_SLOT])
async def test_a_called_visitor_who_left_holds_the_slot_only_until_the_page_would_have_refreshed(
        app, factory, clock):
    async with make_client(app, ip="192.0.2.2") as called, \
            make_client(app, ip="192.0.2.3") as next_:
        await called_while_away(app, factory, clock, called, next_)
        clock.advance(MAX_REFRESH_SECONDS)  # they may still be on their way
        assert (await next_.get("/login")).status_code == 429
        clock.advance(10)  # not any more: the slot goes to the next in line
        assert (await next_.get("/login")).status_code == 200
        assert (await room(app).status()).missed == 1


async def test_staff_walk_past_a_held_room(app, factory):
    admin = await factory.member(email="room-boss@example.jp", role=Role.ADMIN)
    member = await factory.member(email="room-member@example.jp")
    async with make_client(app, ip="192.0.2.1") as staff, \
            make_client(app, ip="192.0.2.2") as someone:
        signed_in = await login(staff, admin.email)
        assert signed_in.status_code == 200
        assert (await login(someone, member.email)).status_code == 200
        # Logging in handed the slots back and cleared the passes.
        assert COOKIE not in staff.cookies and COOKIE not in someone.cookies
        await room(app).hold(None)
        assert (await someone.get("/login")).status_code == 429  # members wait like all
        assert (await staff.get("/login")).status_code == 303  # signed in: on to the account
        assert staff.cookies[COOKIE].startswith("s.")  # from now on, one cookie check
    bearer = {"Authorization": f"Bearer {signed_in.json()['session_token']}"}
    async with make_client(app, ip="192.0.2.3") as staff_app:
        assert (await staff_app.get("/login", headers=bearer)).status_code == 303
    async with make_client(app, ip="192.0.2.4") as stranger:
        answer = await stranger.get("/login", headers={"Authorization": "Bearer nonsense"})
        assert answer.status_code == 429
    assert (await room(app).status()).active == 0  # staff hold no slot


async def test_the_reference_names_one_recorded_event_per_ticket(app, client, core):
    await room(app).hold(None)
    answers = [await login(client, "someone@example.jp", "x") for _ in range(3)]
    references = {a.json()["error"]["reference"] for a in answers}
    assert len(references) == 1
    reference = references.pop()
    for _ in range(40):  # written in batches, a moment later
        async with core.db.read() as db:
            events = (await db.scalars(select(AuthEvent).where(
                AuthEvent.reference == reference))).all()
        if events:
            break
        await asyncio.sleep(0.05)
    assert [(e.kind, e.outcome) for e in events] == [(EventKind.REQUEST_REJECTED,
                                                      "service.queue")]
    assert events[0].detail["path"] == "/api/v1/login" and events[0].detail["ticket"] == 1
    assert events[0].ip == "203.0.113.7"


async def test_a_failing_store_lets_everyone_through(app, client, monkeypatch):
    async def broken(*args, **kwargs):
        raise ConnectionError("redis is down")

    await room(app).hold(None)
    monkeypatch.setattr(room(app).store, "visit", broken)
    assert (await client.get("/login")).status_code == 200


@pytest.mark.parametrize("room_settings", [{**ONE_SLOT, "waiting_room_enabled": False}])
async def test_a_disabled_room_guards_nothing(app, client):
    await room(app).hold(None)
    assert (await client.get("/login")).status_code == 200
    assert COOKIE not in client.cookies


async def test_visitors_answered_together_do_not_come_back_together(app, client):
    # CROWD_ROOM: 100 admissions a minute. 300 visitors arrive at the same instant (a frozen
    # clock); a refresh at exactly a share of the wait would bring each second's worth back
    # at once.
    await room(app).hold(None)
    await room(app).open()
    answers = []
    for n in range(300):
        async with make_client(app, ip=f"198.51.{n // 250}.{n % 250 + 1}") as visitor:
            answers.append((await login(visitor, f"v{n}@example.jp", "whatever")).json())
    waiting = [a["error"] for a in answers if a.get("error", {}).get("code") == "service.queue"]
    assert len(waiting) > 250
    by_due: dict[int, set[int]] = {}
    for error in waiting:
        # Four fifths of the wait, within 2-30 s ...
        due = min(max(math.ceil(error["eta_seconds"] * 0.8), MIN_REFRESH_SECONDS),
                  MAX_REFRESH_SECONDS)
        # ... drawn from a range a quarter as wide as that (at least a second).
        width = max(1, due // 4)
        earliest = max(MIN_REFRESH_SECONDS, due - width)
        assert earliest <= error["retry_after"] <= min(MAX_REFRESH_SECONDS, earliest + width)
        by_due.setdefault(due, set()).add(error["retry_after"])
    # The back of the line (due in 30 s): most of a crowd, all told the same before.
    assert len(by_due[MAX_REFRESH_SECONDS]) >= 4, by_due
    assert sum(len(times) > 1 for times in by_due.values()) >= len(by_due) // 2, by_due
