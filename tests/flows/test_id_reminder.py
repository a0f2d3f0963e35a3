"""Forgot login ID: the registered address receives the member ID; strangers learn nothing."""

from __future__ import annotations

import pytest
from conftest import make_client
from sqlalchemy import select
from support.pages import submit

from sekisho.events.models import AuthEvent, EventKind


async def remind(client, email: str):
    return await client.post("/api/v1/recovery/id", json={"email": email})


async def test_registered_address_receives_member_id_and_card_digits(client, factory, mailbox):
    member = await factory.member(card="4980123456781234", locale="en")
    answer = await remind(client, "  " + member.email.upper())
    assert answer.status_code == 202
    mail = await mailbox.last(member.email)
    assert mail.template == "login_id_reminder"
    assert member.member_id in mail.text and member.email in mail.text
    assert "ending in 1234" in mail.text
    assert "4980123456781234" not in mail.text and "49801234" not in mail.text


async def test_japanese_member_gets_it_in_japanese(client, factory, mailbox):
    member = await factory.member()
    await remind(client, member.email)
    mail = await mailbox.last(member.email)
    assert "会員番号" in mail.text and member.member_id in mail.text
    assert "カード番号" not in mail.text  # no card: no card line


async def test_unknown_address_gets_the_same_answer_and_no_mail(client, factory, mailbox, core):
    member = await factory.member()
    known = await remind(client, member.email)
    unknown = await remind(client, "nobody@example.jp")
    assert (known.status_code, known.content) == (unknown.status_code, unknown.content)
    assert [m.to for m in await mailbox.all()] == [member.email]
    async with core.db.read() as db:
        outcomes = list(await db.scalars(select(AuthEvent.outcome).where(
            AuthEvent.kind == EventKind.ID_REMINDER).order_by(AuthEvent.id)))
    assert outcomes == ["ok", "unknown"]


async def test_neither_an_address_nor_a_number_is_refused_and_sends_nothing(client, factory,
                                                                              mailbox):
    member = await factory.member()
    answer = await remind(client, member.member_id)
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert (error["code"], error["field"], error["reason"]) == (
        "request.invalid", "contact", "email_or_phone")
    assert await mailbox.all() == []


@pytest.mark.parametrize("settings_overrides", [{"rate_limits": {}}])
async def test_one_address_cannot_be_flooded(app, factory, mailbox):
    member = await factory.member()
    answers = []
    for n in range(6):
        async with make_client(app, ip=f"198.51.100.{n + 1}") as stranger:
            answers.append(await remind(stranger, member.email))
    assert [a.status_code for a in answers] == [202] * 5 + [429]
    assert len(await mailbox.to(member.email)) == 5


async def test_page_sends_it_and_says_so(client, factory, mailbox):
    member = await factory.member()
    done = await submit(client, "/recovery/id", "/recovery/id", {"contact": member.email})
    assert done.status_code == 303
    shown = await client.get(done.headers["location"])
    assert 'data-notice="id_reminder_sent"' in shown.text
    assert (await mailbox.last(member.email)).template == "login_id_reminder"
