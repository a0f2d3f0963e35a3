"""Login with every identifier spelling, refusals with references, sessions and rehashing."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select
from support.factories import DEFAULT_PASSWORD
from support.pages import csrf_of, submit

from sekisho.events.models import AuthEvent
from sekisho.identity.models import Account, AccountStatus
from sekisho.sessions.models import Session

REFERENCE = re.compile(r"^R-[2-9A-HJ-NP-Z]{4}-[2-9A-HJ-NP-Z]{4}$")
FW = str.maketrans("0123456789-", "０１２３４５６７８９－")


async def login(client, identifier, password=DEFAULT_PASSWORD, **headers):
    return await client.post("/api/v1/login",
                             json={"identifier": identifier, "password": password},
                             headers=headers)


async def test_every_identifier_spelling_logs_in(client, factory):
    member = await factory.member(email="Yamada.Taro@Example.JP", card="4980123412341234")
    mid = member.member_id
    spellings = [
        "yamada.taro@example.jp", "YAMADA.TARO@EXAMPLE.JP", " yamada.taro@example.jp\u3000",
        "ｙａｍａｄａ．ｔａｒｏ＠ｅｘａｍｐｌｅ．ｊｐ",
        mid, mid.translate(FW), f"{mid[:4]} {mid[4:]}", f"{mid[:3]}-{mid[3:7]}-{mid[7:]}",
        "4980123412341234", "4980-1234-1234-1234", "4980 1234 1234 1234",
        "４９８０－１２３４－１２３４－１２３４", "４９８０ー１２３４ー１２３４ー１２３４",
    ]
    for spelling in spellings:
        response = await login(client, spelling)
        assert response.status_code == 200, (spelling, response.text)
        assert response.json()["account"]["member_id"] == mid


async def test_password_typed_full_width_matches(client, factory):
    await factory.member(email="w@example.jp", password="Sakura2026 Tsuki")
    full_width = "Ｓａｋｕｒａ２０２６\u3000Ｔｓｕｋｉ"
    assert (await login(client, "w@example.jp", full_width)).status_code == 200


async def test_wrong_password_and_unknown_identifier_answer_alike(client, factory, core):
    member = await factory.member()
    wrong = await login(client, member.email, "not the password")
    unknown = await login(client, "nobody@example.jp", "not the password")
    assert wrong.status_code == unknown.status_code == 401
    a, b = wrong.json()["error"], unknown.json()["error"]
    assert a["code"] == b["code"] == "login.invalid_credentials"
    assert {k: v for k, v in a.items() if k != "reference"} == \
        {k: v for k, v in b.items() if k != "reference"}
    assert REFERENCE.match(a["reference"]) and a["reference"] != b["reference"]
    async with core.db.transaction() as db:
        event = await core.events.by_reference(db, a["reference"].lower().replace("-", ""))
    assert event[0].outcome == "login.invalid_credentials"
    assert event[0].account_id == member.account_id
    assert event[0].ip == "203.0.113.7"
    assert event[0].identifier_hash and member.email not in event[0].identifier_hash


async def test_account_state_is_told_only_after_the_right_password(client, factory):
    unverified = await factory.member(email="u@example.jp", verified=False)
    suspended = await factory.member(email="s@example.jp", status=AccountStatus.SUSPENDED)
    dormant = await factory.member(email="d@example.jp", status=AccountStatus.DORMANT)
    for member, code in ((unverified, "account.unverified"), (suspended, "account.suspended"),
                         (dormant, "account.dormant")):
        wrong = await login(client, member.email, "wrong password!")
        assert wrong.json()["error"]["code"] == "login.invalid_credentials"
        right = await login(client, member.email)
        assert right.status_code == 403
        assert right.json()["error"]["code"] == code
    resend = (await login(client, unverified.email)).json()["error"]["resend"]
    assert resend == "/api/v1/verifications/email/resend"


async def test_unverified_member_resends_the_code_with_one_press(client, factory, mailbox):
    member = await factory.member(verified=False)
    page = await submit(client, "/login", "/login",
                        {"identifier": member.member_id, "password": member.password})
    assert page.status_code == 403
    assert 'data-code="account.unverified"' in page.text
    assert 'data-form="verify-resend"' in page.text
    pressed = await client.post("/verify/resend", data={
        "csrf_token": csrf_of(page.text), "email": member.email})
    assert pressed.status_code == 303
    assert (await mailbox.last(member.email)).template == "verify_email"


async def test_old_card_number_logs_in_and_names_the_new_card(client, factory, core):
    member = await factory.member(card="4980111122223333")
    async with core.db.transaction() as db:
        account = await db.get(Account, member.account_id)
        await core.accounts.add_card(db, account, "4980444455556666")
    response = await login(client, "4980-1111-2222-3333")
    assert response.status_code == 200
    assert response.json()["notices"] == [{"code": "card_replaced", "new_card_last4": "6666"}]
    assert response.json()["account"]["card_last4"] == "6666"
    wrong = await login(client, "4980-1111-2222-3333", "wrong password!")
    assert "notices" not in wrong.json()


@pytest.mark.parametrize("bad", ["taro\u200b@example.jp", "12345\x0067890", "ab\tc@example.jp",
                                 "\u202etaro@example.jp"])
async def test_invisible_characters_are_refused_naming_the_field(client, bad):
    response = await login(client, bad)
    assert response.status_code == 422
    error = response.json()["error"]
    assert (error["code"], error["field"], error["reason"]) == \
        ("request.invalid", "identifier", "invisible_character")


async def test_session_cookie_and_bearer_token(client, factory, app):
    member = await factory.member()
    response = await login(client, member.email)
    token = response.json()["session_token"]
    cookie = response.headers["set-cookie"]
    assert "sekisho_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert (await client.get("/api/v1/session")).status_code == 200
    client.cookies.clear()
    assert (await client.get("/api/v1/session")).json()["error"]["code"] == "auth.required"
    bearer = await client.get("/api/v1/session", headers={"Authorization": f"Bearer {token}"})
    assert bearer.status_code == 200
    assert bearer.json()["account"]["member_id"] == member.member_id


async def test_each_login_gets_a_new_session_and_only_a_hash_is_stored(client, factory, core):
    member = await factory.member()
    first = (await login(client, member.email)).json()["session_token"]
    second = (await login(client, member.email)).json()["session_token"]
    assert first != second and len(first) >= 43
    async with core.db.transaction() as db:
        hashes = list(await db.scalars(select(Session.token_hash)))
    assert len(hashes) == 2 and first not in hashes and second not in hashes


async def test_logout_ends_the_session_server_side(client, factory):
    member = await factory.member()
    token = (await login(client, member.email)).json()["session_token"]
    auth = {"Authorization": f"Bearer {token}"}
    assert (await client.post("/api/v1/logout", headers=auth)).status_code == 204
    assert (await client.get("/api/v1/session", headers=auth)).status_code == 401


async def test_idle_and_absolute_timeouts(client, factory, clock, settings):
    member = await factory.member()
    token = (await login(client, member.email)).json()["session_token"]
    auth = {"Authorization": f"Bearer {token}"}
    # Activity keeps the session alive past the idle limit...
    for _ in range(3):
        clock.advance(settings.session_idle_timeout_seconds - 60)
        assert (await client.get("/api/v1/session", headers=auth)).status_code == 200
    # ...then silence ends it.
    clock.advance(settings.session_idle_timeout_seconds + 1)
    assert (await client.get("/api/v1/session", headers=auth)).status_code == 401
    token = (await login(client, member.email)).json()["session_token"]
    auth = {"Authorization": f"Bearer {token}"}
    steps = settings.session_absolute_timeout_seconds // (settings.session_idle_timeout_seconds
                                                          - 60) + 1
    statuses = []
    for _ in range(steps):
        clock.advance(settings.session_idle_timeout_seconds - 60)
        statuses.append((await client.get("/api/v1/session", headers=auth)).status_code)
    assert statuses[0] == 200 and statuses[-1] == 401


async def test_hash_parameters_are_upgraded_at_login(client, factory, core):
    member = await factory.member()
    async with core.db.transaction() as db:
        before = (await db.get(Account, member.account_id)).password_hash
    assert "m=1024" in before
    from sekisho.methods.password.hashing import PasswordHasher

    core.hasher = PasswordHasher(memory_kib=2048, time_cost=2, parallelism=1, concurrency=2,
                                 queue_timeout=5)
    assert (await login(client, member.email)).status_code == 200
    async with core.db.transaction() as db:
        after = (await db.get(Account, member.account_id)).password_hash
        event = await db.scalar(select(AuthEvent).where(AuthEvent.outcome == "ok",
                                                        AuthEvent.kind == "login"))
    assert "m=2048,t=2" in after
    assert event.detail["rehashed"] is True
    assert (await login(client, member.email)).status_code == 200
