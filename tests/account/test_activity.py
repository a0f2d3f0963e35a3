"""A member's sessions and login history: list, end one, end the others, read the history."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import make_client
from sqlalchemy import select
from support.pages import csrf_of, submit

from sekisho.account.activity import HistoryEntry
from sekisho.account.routes_activity import describe
from sekisho.context import RequestContext
from sekisho.events.models import AuthEvent, EventKind
from sekisho.sessions.models import Session
from sekisho.web.i18n import translations

CHROME = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/120.0.0.0 Safari/537.36")
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"
EN = {"Accept-Language": "en"}
SESSIONS = "/api/v1/account/sessions"
HISTORY = "/api/v1/account/history"


async def login(client, member, password=None, **headers):
    return await client.post("/api/v1/login", headers=headers, json={
        "identifier": member.email, "password": password or member.password})


async def signed_in(client, member, **headers) -> dict[str, str]:
    response = await login(client, member, **headers)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['session_token']}"}


async def sessions_of(client, auth) -> list[dict]:
    response = await client.get(SESSIONS, headers=auth)
    assert response.status_code == 200, response.text
    return response.json()["sessions"]


async def history_of(client, auth, **headers) -> list[dict]:
    response = await client.get(HISTORY, headers={**auth, **headers})
    assert response.status_code == 200, response.text
    return response.json()["entries"]


# --- sessions -------------------------------------------------------------------------------


async def test_lists_both_browsers_newest_first_and_flags_this_one(app, client, factory, clock):
    member = await factory.member()
    mine = await signed_in(client, member, **{"User-Agent": CHROME})
    clock.advance(60)
    async with make_client(app, ip="198.51.100.20", **{"User-Agent": FIREFOX}) as other:
        await signed_in(other, member)
        gone = await signed_in(other, member)
        assert (await other.post("/api/v1/logout", headers=gone)).status_code == 204
    stranger = await factory.member()
    await signed_in(client, stranger)
    listed = await sessions_of(client, mine)
    assert [(s["device"], s["ip"], s["current"]) for s in listed] == [
        ("Firefox 121 / Linux", "198.51.100.20", False),
        ("Chrome 120 / Windows 10", "203.0.113.7", True)]
    assert set(listed[0]) == {"id", "device", "ip", "created_at", "last_seen_at", "current"}
    assert listed[0]["created_at"] > listed[1]["created_at"]


async def test_idle_and_expired_sessions_are_not_listed(app, client, factory, clock, settings):
    member = await factory.member()
    async with make_client(app) as other:
        await signed_in(other, member)
    clock.advance(settings.session_idle_timeout_seconds)
    mine = await signed_in(client, member)
    assert [s["current"] for s in await sessions_of(client, mine)] == [True]


async def test_ending_the_other_session_logs_it_out(app, client, factory, core):
    member = await factory.member()
    mine = await signed_in(client, member)
    async with make_client(app, ip="198.51.100.20") as other:
        theirs = await signed_in(other, member)
        other_id = next(s["id"] for s in await sessions_of(client, mine) if not s["current"])
        ended = await client.delete(f"{SESSIONS}/{other_id}", headers=mine)
        assert ended.status_code == 200 and ended.json() == {"status": "ended", "current": False}
        assert (await other.get("/api/v1/session", headers=theirs)).status_code == 401
    assert (await client.get("/api/v1/session", headers=mine)).status_code == 200
    assert [s["id"] for s in await sessions_of(client, mine)] != [other_id]
    async with core.db.transaction() as db:
        row = await db.get(Session, other_id)
        event = await db.scalar(select(AuthEvent).where(AuthEvent.kind == EventKind.LOGOUT))
    assert row is not None and row.end_reason == "ended_by_member"
    assert event is not None and event.account_id == member.account_id
    assert event.detail["by"] == "member" and event.detail["session_id"] == other_id
    again = await client.delete(f"{SESSIONS}/{other_id}", headers=mine)
    assert again.status_code == 404 and again.json()["error"]["code"] == "request.not_found"


async def test_ending_the_current_session_is_a_logout(client, factory):
    member = await factory.member()
    await signed_in(client, member)  # the client now holds the session cookie
    current = (await sessions_of(client, {}))[0]
    response = await client.delete(f"{SESSIONS}/{current['id']}")
    assert response.json() == {"status": "ended", "current": True}
    cleared = response.headers["set-cookie"].lower()
    assert cleared.startswith("sekisho_session=") and "max-age=0" in cleared
    assert (await client.get("/api/v1/session")).json()["error"]["code"] == "auth.required"


async def test_end_others_keeps_only_this_session(app, client, factory, core):
    member = await factory.member()
    mine = await signed_in(client, member)
    async with make_client(app, ip="198.51.100.20") as other:
        theirs = [await signed_in(other, member) for _ in range(2)]
        response = await client.post(f"{SESSIONS}/end-others", headers=mine)
        assert response.status_code == 200 and response.json() == {"ended": 2}
        for auth in theirs:
            assert (await other.get("/api/v1/session", headers=auth)).status_code == 401
    assert [s["current"] for s in await sessions_of(client, mine)] == [True]
    assert (await client.post(f"{SESSIONS}/end-others", headers=mine)).json() == {"ended": 0}
    async with core.db.transaction() as db:
        logouts = list(await db.scalars(select(AuthEvent).where(
            AuthEvent.kind == EventKind.LOGOUT)))
    assert len(logouts) == 2 and all(e.detail["by"] == "member" for e in logouts)


@pytest.mark.parametrize("target", ["strangers", "unknown", "huge"])
async def test_another_members_session_is_not_found_and_stays(app, client, factory, target):
    member, stranger = await factory.member(), await factory.member()
    mine = await signed_in(client, member)
    async with make_client(app, ip="198.51.100.20") as other:
        theirs = await signed_in(other, stranger)
        their_id = (await sessions_of(other, theirs))[0]["id"]
        session_id = {"strangers": their_id, "unknown": their_id + 1000,
                      "huge": 2**70}[target]
        response = await client.delete(f"{SESSIONS}/{session_id}", headers=mine)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "request.not_found"
        assert (await other.get("/api/v1/session", headers=theirs)).status_code == 200
    assert (await client.get("/api/v1/session", headers=mine)).status_code == 200


@pytest.mark.parametrize(("method", "path"), [("GET", SESSIONS), ("GET", HISTORY),
                                              ("POST", f"{SESSIONS}/end-others"),
                                              ("DELETE", f"{SESSIONS}/1")])
async def test_endpoints_need_a_session(client, method, path):
    response = await client.request(method, path)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "auth.required"


async def test_json_endpoints_are_documented_and_pages_are_not(client):
    paths = (await client.get("/api/v1/openapi.json")).json()["paths"]
    assert {SESSIONS, f"{SESSIONS}/{{session_id}}", f"{SESSIONS}/end-others", HISTORY} <= set(paths)
    assert not any(path.startswith("/account/activity") for path in paths)


# --- history --------------------------------------------------------------------------------


async def test_history_in_plain_words(app, client, factory, clock):
    member = await factory.member()
    wrong = await login(client, member, "wrong horse battery")
    assert wrong.json()["error"]["code"] == "login.invalid_credentials"
    clock.advance(60)
    await signed_in(client, member, **{"User-Agent": CHROME})
    clock.advance(60)
    auth = await signed_in(client, member, password=member.password.upper())
    entries = await history_of(client, auth, **EN)
    assert [(e["outcome"], e["text"]) for e in entries] == [
        ("ok", "Logged in (Caps Lock corrected)"), ("ok", "Logged in"),
        ("login.invalid_credentials", "Wrong password")]
    assert entries[1]["device"] == "Chrome 120 / Windows 10"
    assert entries[1]["ip"] == "203.0.113.7"
    assert datetime.fromisoformat(entries[0]["at"]) == clock.now()
    assert (await client.get(HISTORY, headers=auth)).json()["days"] == 90


async def test_history_shows_the_lock(app, client, factory):
    member = await factory.member()
    auth = await signed_in(client, member)
    async with make_client(app, ip="198.51.100.20") as guesser:
        outcomes = [(await login(guesser, member, f"wrong guess {n}")).status_code
                    for n in range(6)]
    assert outcomes == [401] * 5 + [429]
    entries = await history_of(client, auth, **EN)
    # 12:00 in Tokyo when the clock reads 03:00 UTC; the first lock lasts 15 minutes.
    assert [e["text"] for e in entries] == [
        "Refused: logins paused after several wrong passwords",
        "Wrong password; logins paused until 12:15"] + ["Wrong password"] * 4 + ["Logged in"]
    assert entries[0]["outcome"] == "login.throttled"


async def test_history_forgets_after_90_days(client, factory, clock):
    member = await factory.member()
    await login(client, member, "wrong horse battery")
    await signed_in(client, member)
    clock.advance(days=91)
    auth = await signed_in(client, member)
    assert [e["text"] for e in await history_of(client, auth, **EN)] == ["Logged in"]


async def test_history_is_capped_and_shows_only_this_member(client, factory, core):
    member, stranger = await factory.member(), await factory.member()
    async with core.db.transaction() as db:
        for account_id in [member.account_id] * 105 + [stranger.account_id]:
            await core.events.record(db, kind=EventKind.LOGIN, outcome="ok",
                                     ctx=RequestContext(ip="192.0.2.1"), account_id=account_id)
        await core.events.record(db, kind=EventKind.PASSWORD_CHANGE, outcome="ok",
                                 ctx=RequestContext(), account_id=member.account_id)
    auth = await signed_in(client, stranger)
    entries = await history_of(client, auth)
    assert [e["ip"] for e in entries] == ["203.0.113.7", "192.0.2.1"]
    auth = await signed_in(client, member)
    assert len(await history_of(client, auth)) == 100


def _entry(outcome: str, kind: str = "login", **detail) -> HistoryEntry:
    return HistoryEntry(at=datetime(2026, 1, 5, 3, 0, tzinfo=UTC), kind=kind, outcome=outcome,
                        detail=detail, device="-", ip=None)


def _tokyo(moment: datetime) -> str:
    return (moment + timedelta(hours=9)).strftime("%Y-%m-%d %H:%M")


@pytest.mark.parametrize(("entry", "text"), [
    (_entry("ok", correction="first_letter"), "Logged in (first letter's case corrected)"),
    (_entry("ok", method="passkey"), "Logged in with a passkey"),
    (_entry("ok", method="totp"), "Logged in with an authenticator app"),
    (_entry("ok", second_factor="totp", correction="caps_lock"),
     "Logged in with an authenticator app (Caps Lock corrected)"),
    (_entry("ok", second_factor="recovery_code"), "Logged in with a recovery code"),
    (_entry("second_factor_required"), "Password accepted; second step asked for"),
    (_entry("code.invalid"), "The code is not correct."),
    (_entry("ok", kind="second_factor", action="added", method="passkey"), "Passkey added"),
    (_entry("ok", kind="second_factor", action="recovery_codes_regenerated"),
     "New recovery codes made"),
    (_entry("ok", kind="second_factor", action="renamed"), "Login steps changed"),
    (_entry("ok", kind="reauthentication"), "Confirmed it was you with your password"),
    (_entry("ok", kind="reauthentication", method="sms"),
     "Confirmed it was you with your password"),
    (_entry("ok", method="carrier pigeon"), "Logged in"),
    # A lock ending on another day names the date as well.
    (_entry("login.invalid_credentials",
            locked_until=datetime(2026, 1, 5, 16, 0, tzinfo=UTC).timestamp()),
     "Wrong password; logins paused until 2026-01-06 01:00"),
    (_entry("login.password_disabled"), "Refused: password login disabled"),
    (_entry("account.suspended"), "This account is suspended."),
    (_entry("something.new"), "Not completed"),
])
def test_each_outcome_in_plain_words(entry, text):
    assert describe(entry, "en", _tokyo) == text


def test_catalogue_outcomes_speak_japanese_too():
    assert describe(_entry("account.dormant"), "ja", _tokyo) == \
        "このアカウントは長期間ご利用がないため休止中です。"


# --- the page -------------------------------------------------------------------------------


def location(response) -> tuple[str, dict[str, list[str]]]:
    parts = urlsplit(response.headers["location"])
    return parts.path, parse_qs(parts.query)


async def page_login(client, member):
    response = await submit(client, "/login", "/login",
                            {"identifier": member.email, "password": member.password})
    assert response.status_code == 303, response.text


async def test_page_needs_a_login(client):
    response = await client.get("/account/activity")
    assert response.status_code == 303
    assert location(response) == ("/login", {"next": ["/account/activity"]})


async def test_page_lists_sessions_and_ends_the_other_one(app, client, factory):
    member = await factory.member()
    await page_login(client, member)
    async with make_client(app, ip="198.51.100.20", **{"User-Agent": FIREFOX}) as other:
        theirs = await signed_in(other, member)
        page = await client.get("/account/activity", params={"lang": "en"})
        assert page.status_code == 200
        rows = re.findall(r'<tr data-session="(\d+)"( data-current)?', page.text)
        assert len(rows) == 2 and [current for _, current in rows] == ["", " data-current"]
        assert "Firefox 121 / Linux" in page.text and "198.51.100.20" in page.text
        assert 'data-form="end-others"' in page.text
        other_id = rows[0][0]
        ended = await submit(client, "/account/activity",
                             f"/account/activity/sessions/{other_id}/end", {})
        assert ended.status_code == 303
        assert location(ended) == ("/account/activity", {"notice": ["session_ended"]})
        assert (await other.get("/api/v1/session", headers=theirs)).status_code == 401
    page = await client.get(ended.headers["location"])
    assert 'data-notice="session_ended"' in page.text
    assert len(re.findall(r"<tr data-session=", page.text)) == 1
    assert 'data-form="end-others"' not in page.text


async def test_page_shows_the_history_in_the_display_time_zone(client, factory):
    member = await factory.member()
    await login(client, member, "wrong horse battery")
    await page_login(client, member)
    page = await client.get("/account/activity", params={"lang": "en"})
    history = page.text.split("data-history>", 1)[1]
    assert 'data-outcome="login.invalid_credentials"' in history
    assert 'data-outcome="ok"' in history
    assert "2026-01-05 12:00" in history  # 03:00 UTC


async def test_page_end_others_and_a_forged_form(app, client, factory):
    member = await factory.member()
    await page_login(client, member)
    async with make_client(app, ip="198.51.100.20") as other:
        theirs = [await signed_in(other, member) for _ in range(2)]
        forged = await client.post("/account/activity/end-others",
                                   data={"csrf_token": "x" * 43})
        assert forged.status_code == 403 and 'data-code="request.csrf_failed"' in forged.text
        assert (await other.get("/api/v1/session", headers=theirs[0])).status_code == 200
        ended = await submit(client, "/account/activity", "/account/activity/end-others", {})
        assert location(ended) == ("/account/activity",
                                   {"notice": ["others_ended"], "ended": ["2"]})
        for auth in theirs:
            assert (await other.get("/api/v1/session", headers=auth)).status_code == 401
    page = await client.get(ended.headers["location"] + "&lang=en")
    shown = translations("en").ngettext("Logged out %(num)d other session.",
                                        "Logged out %(num)d other sessions.", 2) % {"num": 2}
    assert 'data-notice="others_ended"' in page.text and shown in page.text


async def test_page_unknown_session_shows_the_error(client, factory):
    member = await factory.member()
    await page_login(client, member)
    # Alone, the page shows no form: take the browser's token from the account page.
    shown = await client.get("/account")
    response = await client.post("/account/activity/sessions/999999/end",
                                 data={"csrf_token": csrf_of(shown.text)})
    assert response.status_code == 404
    assert 'data-code="request.not_found"' in response.text and "data-current" in response.text


async def test_page_ending_this_session_logs_out(client, factory):
    member = await factory.member()
    await page_login(client, member)
    current = (await sessions_of(client, {}))[0]["id"]
    response = await submit(client, "/account", f"/account/activity/sessions/{current}/end", {})
    assert location(response) == ("/login", {"notice": ["logged_out"]})
    assert (await client.get("/account/activity")).status_code == 303
