"""Password recovery through the JSON API."""

from __future__ import annotations

import asyncio

from sqlalchemy import select
from support.factories import DEFAULT_PASSWORD
from support.pages import csrf_of

from sekisho.codes.models import Challenge
from sekisho.sessions.models import Session

NEW = "fuji yama kawa sora"


async def request_reset(client, identifier):
    return await client.post("/api/v1/recovery", json={"identifier": identifier})


async def login(client, identifier, password):
    return await client.post("/api/v1/login",
                             json={"identifier": identifier, "password": password})


async def test_unknown_identifier_gets_byte_identical_answer(client, factory, mailbox):
    member = await factory.member()
    known = await request_reset(client, member.member_id)
    unknown = await request_reset(client, "1999999999")
    assert (known.status_code, known.content) == (unknown.status_code, unknown.content)
    assert known.status_code == 202
    assert [m.template for m in await mailbox.all()] == ["password_reset"]


async def test_reset_by_link_ends_sessions_and_notifies(client, factory, mailbox, core):
    member = await factory.member()
    token = (await login(client, member.email, member.password)).json()["session_token"]
    await request_reset(client, member.email)
    mail = await mailbox.last(member.email)
    link = mail.link("/recovery/reset?token=")
    response = await client.post("/api/v1/recovery/complete",
                                 json={"token": link.split("token=")[1], "password": NEW})
    assert response.status_code == 200
    again = await client.get("/api/v1/session", headers={"Authorization": f"Bearer {token}"})
    assert again.status_code == 401
    assert (await login(client, member.email, DEFAULT_PASSWORD)).status_code == 401
    assert (await login(client, member.email, NEW)).status_code == 200
    assert (await mailbox.last(member.email)).template == "password_changed"
    async with core.db.transaction() as db:
        reasons = set(await db.scalars(select(Session.end_reason)))
    assert "password_reset" in reasons


async def test_reset_by_code_with_any_identifier_spelling(client, factory, mailbox):
    member = await factory.member(card="4980555566667777")
    await request_reset(client, "4980 5555 6666 7777")
    code = (await mailbox.last(member.email)).code
    response = await client.post("/api/v1/recovery/complete", json={
        "identifier": member.email.upper(), "code": f"{code[:3]}-{code[3:]}", "password": NEW})
    assert response.status_code == 200
    assert (await login(client, member.member_id, NEW)).status_code == 200


async def test_superseded_used_and_expired_links(client, factory, mailbox, clock, settings):
    member = await factory.member()
    await request_reset(client, member.email)
    first = (await mailbox.last(member.email)).token
    clock.advance(settings.code_resend_cooldown_seconds + 5)
    await request_reset(client, member.email)
    second = (await mailbox.last(member.email)).token
    old = await client.post("/api/v1/recovery/complete", json={"token": first, "password": NEW})
    assert old.status_code == 410
    error = old.json()["error"]
    assert error["code"] == "link.superseded"
    assert error["newest_sent_at"].startswith(clock.now().isoformat()[:16])
    ok = await client.post("/api/v1/recovery/complete", json={"token": second, "password": NEW})
    assert ok.status_code == 200
    used = await client.post("/api/v1/recovery/complete", json={"token": second, "password": NEW})
    assert used.json()["error"]["code"] == "link.used"
    clock.advance(settings.code_resend_cooldown_seconds + 5)
    await request_reset(client, member.email)
    third = (await mailbox.last(member.email)).token
    clock.advance(settings.reset_lifetime_seconds + 1)
    late = await client.post("/api/v1/recovery/complete", json={"token": third, "password": NEW})
    assert late.json()["error"]["code"] == "link.expired"


async def test_bad_new_password_keeps_the_link_usable(client, factory, mailbox):
    member = await factory.member(email="taro.yamada@example.jp")
    await request_reset(client, member.email)
    token = (await mailbox.last(member.email)).token
    for password, code in (("short", "password.too_short"),
                           ("taro.yamada2026", "password.too_personal")):
        r = await client.post("/api/v1/recovery/complete",
                              json={"token": token, "password": password})
        assert r.json()["error"]["code"] == code
    ok = await client.post("/api/v1/recovery/complete", json={"token": token, "password": NEW})
    assert ok.status_code == 200


async def test_twenty_concurrent_completions_have_one_winner(client, factory, mailbox):
    member = await factory.member()
    await request_reset(client, member.email)
    token = (await mailbox.last(member.email)).token
    responses = await asyncio.gather(*[
        client.post("/api/v1/recovery/complete", json={"token": token, "password": f"{NEW} {i}"})
        for i in range(20)])
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(200) == 1
    assert {r.json()["error"]["code"] for r in responses if r.status_code != 200} == {"link.used"}
    winner = next(i for i, r in enumerate(responses) if r.status_code == 200)
    assert (await login(client, member.email, f"{NEW} {winner}")).status_code == 200


async def test_twenty_concurrent_code_completions_have_one_winner(client, factory, mailbox):
    member = await factory.member()
    await request_reset(client, member.email)
    code = (await mailbox.last(member.email)).code
    responses = await asyncio.gather(*[
        client.post("/api/v1/recovery/complete",
                    json={"identifier": member.email, "code": code, "password": f"{NEW} {i}"})
        for i in range(20)])
    assert sorted(r.status_code for r in responses).count(200) == 1


async def test_reset_request_within_cooldown_sends_nothing_more(client, factory, mailbox):
    member = await factory.member()
    first = await request_reset(client, member.email)
    second = await request_reset(client, member.email)
    assert first.content == second.content
    assert len(await mailbox.to(member.email)) == 1


async def test_concurrent_reset_requests_send_one_mail_and_leave_one_live_link(
        client, factory, mailbox, core):
    member = await factory.member()
    answers = await asyncio.gather(*[request_reset(client, member.email) for _ in range(10)])
    assert {a.status_code for a in answers} == {202}
    assert len(await mailbox.to(member.email)) == 1
    async with core.db.transaction() as db:
        live = list(await db.scalars(select(Challenge).where(
            Challenge.account_id == member.account_id, Challenge.superseded_at.is_(None))))
    assert len(live) == 1


async def test_a_spent_link_offers_one_press_to_a_new_one(client, factory, mailbox, clock):
    member = await factory.member()
    await request_reset(client, member.email)
    token = (await mailbox.last(member.email)).token
    done = await client.post("/api/v1/recovery/complete", json={"token": token, "password": NEW})
    assert done.status_code == 200
    page = await client.get(f"/recovery/reset?token={token}", headers={"Accept": "text/html"})
    assert page.status_code == 410 and 'data-code="link.used"' in page.text
    assert 'data-action="resend"' in page.text
    clock.advance(minutes=2)  # past the resend cool-down
    sent = await client.post("/recovery/resend",
                             data={"csrf_token": csrf_of(page.text), "token": token})
    assert sent.status_code == 303 and "notice=reset_link_sent" in sent.headers["location"]
    fresh = await mailbox.last(member.email)
    assert fresh.template == "password_reset" and fresh.token != token
    final = await client.post("/api/v1/recovery/complete",
                              json={"token": fresh.token, "password": "umi sora kaze hana"})
    assert final.status_code == 200


async def test_resend_from_a_link_answers_alike_and_respects_the_cooldown(client, factory,
                                                                          mailbox):
    member = await factory.member()
    await request_reset(client, member.email)
    token = (await mailbox.last(member.email)).token
    api = await client.post("/api/v1/recovery/resend", json={"token": token})
    bogus = await client.post("/api/v1/recovery/resend", json={"token": "not-a-real-token"})
    assert (api.status_code, api.content) == (bogus.status_code, bogus.content)
    assert api.status_code == 202
    # Within the cool-down nothing more is sent: still one reset mail.
    assert [m.template for m in await mailbox.to(member.email)] == ["password_reset"]
