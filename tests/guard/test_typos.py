"""Forgiving password check: Caps Lock and a flipped first letter, never towards a common one."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from support.pages import submit

from sekisho.events.models import AuthEvent, EventKind
from sekisho.methods.password.policy import PasswordPolicy

PASSWORD = "Kyoto Station 2026"


async def login(client, identifier: str, password: str):
    return await client.post("/api/v1/login",
                             json={"identifier": identifier, "password": password})


async def last_login_event(core) -> AuthEvent:
    async with core.db.read() as db:
        return await db.scalar(select(AuthEvent).where(AuthEvent.kind == EventKind.LOGIN)
                               .order_by(AuthEvent.id.desc()).limit(1))


@pytest.mark.parametrize(("typed", "correction"), [
    ("kYOTO sTATION 2026", "caps_lock"),
    ("ｋＹＯＴＯ　ｓＴＡＴＩＯＮ　２０２６", "caps_lock"),  # full-width and Caps Lock together
    ("kyoto Station 2026", "first_letter"),
])
async def test_corrected_password_logs_in_and_says_so(client, factory, core, typed, correction):
    member = await factory.member(password=PASSWORD)
    answer = await login(client, member.email, typed)
    assert answer.status_code == 200
    assert [n["code"] for n in answer.json()["notices"]] == [f"password_{correction}"]
    event = await last_login_event(core)
    assert event.outcome == "ok" and event.detail["correction"] == correction


async def test_exact_password_is_not_reported_as_corrected(client, factory, core):
    member = await factory.member(password=PASSWORD)
    answer = await login(client, member.email, PASSWORD)
    assert answer.json()["notices"] == []
    assert (await last_login_event(core)).detail["correction"] is None


async def test_other_typos_are_not_forgiven(client, factory):
    member = await factory.member(password=PASSWORD)
    for typed in ("Kyoto Station 2025", "KYOTO STATION 2026", "kyoto station 2026"):
        answer = await login(client, member.email, typed)
        assert answer.json()["error"]["code"] == "login.invalid_credentials", typed


async def test_no_correction_towards_a_common_password(client, factory):
    # An old account can still hold a common password (set before the blocklist existed).
    member = await factory.member(password="Password1")
    assert (await login(client, member.email, "pASSWORD1")).status_code == 401
    assert (await login(client, member.email, "password1")).status_code == 401
    assert (await login(client, member.email, "Password1")).status_code == 200


@pytest.mark.parametrize("settings_overrides", [{"password_typo_correction": False}])
async def test_correction_can_be_turned_off(client, factory):
    member = await factory.member(password=PASSWORD)
    assert (await login(client, member.email, "kYOTO sTATION 2026")).status_code == 401


async def test_html_login_shows_the_caps_lock_hint(client, factory):
    member = await factory.member(password=PASSWORD)
    done = await submit(client, "/login", "/login", {"identifier": member.email,
                                                     "password": "kYOTO sTATION 2026"})
    assert done.status_code == 303
    shown = await client.get(done.headers["location"])
    assert 'data-notice="password_caps_lock"' in shown.text


def test_candidates_respect_length_and_blocklist():
    policy = PasswordPolicy(min_length=8)
    assert policy.corrections("kYOTO sTATION") == [("caps_lock", "Kyoto Station"),
                                                    ("first_letter", "KYOTO sTATION")]
    assert policy.corrections("1234 5678") == []  # no letters: nothing to correct
    assert policy.corrections("pASSWORD1") == []  # "Password1" is common
    assert policy.corrections("aBCDEFG") == []  # too short either way
