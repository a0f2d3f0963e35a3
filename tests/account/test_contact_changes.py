"""Changing the login email or phone number: step-up, codes, the "this wasn't me" link."""

from __future__ import annotations

import asyncio
import re

from conftest import make_client
from sqlalchemy import select
from support.mailbox import CODE, Mail
from support.pages import csrf_of, submit

from sekisho.sessions.models import Session

PHONE = "+819012345678"
PHONE_TYPED = "090-1234-5678"
PHONE_WIDE = "０９０－１２３４－５６７８"
OTHER_PHONE = "+818011112222"
OTHER_TYPED = "080-1111-2222"
NEW_PASSWORD = "fuji yama kawa sora"
STALE = 601  # seconds: just past step_up_max_age_seconds (idle timeout is 1800)
COOLDOWN = 61  # seconds: just past code_resend_cooldown_seconds
# The mails of this feature; other notices (a login from a new browser, ...) are left out.
CONTACT_MAILS = {"email_change_code", "email_change_taken", "email_changed", "phone_changed",
                 "phone_removed", "password_reset"}
REFERENCE = re.compile(r'class="reference"[^<]*<strong>(R-[0-9A-Z]{4}-[0-9A-Z]{4})</strong>')


# --- helpers ------------------------------------------------------------------------------


async def login(client, identifier, password):
    return await client.post("/api/v1/login",
                             json={"identifier": identifier, "password": password})


async def signed_in(client, member) -> dict[str, str]:
    response = await login(client, member.email, member.password)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['session_token']}"}


async def account_of(client, auth) -> dict:
    response = await client.get("/api/v1/session", headers=auth)
    assert response.status_code == 200, response.text
    return response.json()["account"]


async def notices(mailbox, address) -> list[str]:
    """The templates of this feature's mails to ``address``, oldest first."""
    return [m.template for m in await mailbox.to(address) if m.template in CONTACT_MAILS]


async def latest(mailbox, address, template) -> Mail:
    mails = [m for m in await mailbox.to(address) if m.template == template]
    assert mails, f"no {template} for {address}: {await notices(mailbox, address)}"
    return mails[-1]


def error(response) -> str:
    return response.json()["error"]["code"]


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


def full_width(code: str) -> str:
    """``123456`` as an IME types it: ``１２３－４５６``."""
    wide = "".join(chr(ord(c) + 0xFEE0) for c in code)
    return f"{wide[:3]}－{wide[3:]}"


async def request_email(client, auth, email):
    return await client.post("/api/v1/account/email", headers=auth, json={"email": email})


async def confirm_email(client, auth, code):
    return await client.post("/api/v1/account/email/confirm", headers=auth, json={"code": code})


async def request_phone(client, auth, phone):
    return await client.post("/api/v1/account/phone", headers=auth, json={"phone": phone})


async def confirm_phone(client, auth, code):
    return await client.post("/api/v1/account/phone/confirm", headers=auth, json={"code": code})


async def revert(client, token):
    return await client.post("/api/v1/account/revert", json={"token": token})


async def change_email(client, mailbox, auth, new) -> str:
    """Change the login email to ``new``; returns the undo token mailed to the old address."""
    before = await account_of(client, auth)
    assert (await request_email(client, auth, new)).status_code == 202
    mail = await latest(mailbox, new, "email_change_code")
    done = await confirm_email(client, auth, mail.code)
    assert done.status_code == 200, done.text
    notice = await latest(mailbox, before["email"], "email_changed")
    return notice.link("/account/revert?token=").split("token=", 1)[1]


async def change_phone(client, mailbox, auth, typed, number) -> None:
    assert (await request_phone(client, auth, typed)).status_code == 202
    done = await confirm_phone(client, auth, (await mailbox.last_text(number)).code)
    assert done.status_code == 200, done.text


# --- step-up ------------------------------------------------------------------------------


async def test_stale_session_must_enter_the_password_again(client, factory, mailbox, clock):
    member = await factory.member()
    auth = await signed_in(client, member)
    clock.advance(seconds=STALE)
    refused = await request_email(client, auth, "new.home@example.jp")
    assert refused.status_code == 403
    body = refused.json()["error"]
    assert body["code"] == "auth.step_up_required"
    assert body["methods"] == ["password"]
    assert body["reauthenticate"] == "/api/v1/session/reauthenticate"
    assert (await request_phone(client, auth, PHONE_TYPED)).status_code == 403
    assert await mailbox.to("new.home@example.jp") == []
    assert await mailbox.texts() == []

    bad = await client.post("/api/v1/session/reauthenticate", headers=auth,
                            json={"password": "not my password"})
    assert bad.status_code == 401 and error(bad) == "login.invalid_credentials"
    still = await request_email(client, auth, "new.home@example.jp")
    assert still.status_code == 403 and error(still) == "auth.step_up_required"

    ok = await client.post("/api/v1/session/reauthenticate", headers=auth,
                           json={"password": member.password})
    assert ok.status_code == 200
    assert (await request_email(client, auth, "new.home@example.jp")).status_code == 202
    assert (await mailbox.last("new.home@example.jp")).template == "email_change_code"


async def test_password_entered_ten_minutes_ago_is_still_recent(client, factory, mailbox,
                                                                clock, settings):
    member = await factory.member()
    auth = await signed_in(client, member)
    clock.advance(seconds=settings.step_up_max_age_seconds)
    assert (await request_phone(client, auth, PHONE_TYPED)).status_code == 202
    clock.advance(seconds=COOLDOWN)
    late = await request_phone(client, auth, OTHER_TYPED)
    assert late.status_code == 403 and error(late) == "auth.step_up_required"
    assert [t.to for t in await mailbox.texts()] == [PHONE]


async def test_reauthenticate_with_the_session_cookie(client, factory, mailbox, clock):
    member = await factory.member()
    await signed_in(client, member)  # the client now carries the session cookie
    clock.advance(seconds=STALE)
    stale = await client.post("/api/v1/account/email", json={"email": "cookie@example.jp"})
    assert error(stale) == "auth.step_up_required"
    ok = await client.post("/api/v1/session/reauthenticate", json={"password": member.password})
    assert ok.status_code == 200
    changed = await client.post("/api/v1/account/email", json={"email": "cookie@example.jp"})
    assert changed.status_code == 202
    assert (await mailbox.last("cookie@example.jp")).template == "email_change_code"


async def test_step_up_counts_for_that_session_only(app, client, factory, clock):
    member = await factory.member()
    first = await signed_in(client, member)
    second = await signed_in(client, member)
    clock.advance(seconds=STALE)
    async with make_client(app) as bearer_only:
        ok = await bearer_only.post("/api/v1/session/reauthenticate", headers=first,
                                    json={"password": member.password})
        assert ok.status_code == 200
        assert (await request_email(bearer_only, first, "one@example.jp")).status_code == 202
        other = await request_email(bearer_only, second, "two@example.jp")
    assert other.status_code == 403 and error(other) == "auth.step_up_required"


async def test_reauthenticate_needs_a_session(client):
    response = await client.post("/api/v1/session/reauthenticate",
                                 json={"password": "whatever it is"})
    assert response.status_code == 401 and error(response) == "auth.required"


# --- email change -------------------------------------------------------------------------


async def test_email_change_with_the_code_from_the_new_address(client, factory, mailbox,
                                                               core):
    member = await factory.member(email="taro@example.jp")
    auth = await signed_in(client, member)
    started = await request_email(client, auth, "taro.new@example.jp")
    assert started.status_code == 202
    assert started.json() == {"status": "code_sent", "next": "/api/v1/account/email/confirm"}
    assert await notices(mailbox, "taro.new@example.jp") == ["email_change_code"]
    # Nothing has changed yet: the old address still logs in, the new one does not.
    assert (await login(client, "taro.new@example.jp", member.password)).status_code == 401

    code = (await mailbox.last("taro.new@example.jp")).code
    done = await confirm_email(client, auth, code)
    assert done.status_code == 200
    assert done.json()["account"]["email"] == "taro.new@example.jp"
    assert (await account_of(client, auth))["email"] == "taro.new@example.jp"
    assert (await factory.account(member.account_id)).email == "taro.new@example.jp"

    assert await notices(mailbox, "taro@example.jp") == ["email_changed"]
    told = await latest(mailbox, "taro@example.jp", "email_changed")
    assert told.link("/account/revert?token=")
    assert "taro.new@example.jp" not in told.text  # the new address is masked

    assert (await login(client, "taro.new@example.jp", member.password)).status_code == 200
    old = await login(client, "taro@example.jp", member.password)
    assert old.status_code == 401 and error(old) == "login.invalid_credentials"


async def test_the_code_typed_in_full_width_is_accepted(client, factory, mailbox):
    member = await factory.member()
    auth = await signed_in(client, member)
    await request_email(client, auth, "wide@example.jp")
    code = (await mailbox.last("wide@example.jp")).code
    done = await confirm_email(client, auth, full_width(code))
    assert done.status_code == 200
    assert done.json()["account"]["email"] == "wide@example.jp"


async def test_reset_links_sent_to_the_old_address_stop_working(client, factory, mailbox):
    member = await factory.member()
    await client.post("/api/v1/recovery", json={"identifier": member.email})
    reset = await latest(mailbox, member.email, "password_reset")
    auth = await signed_in(client, member)
    await change_email(client, mailbox, auth, "moved@example.jp")
    late = await client.post("/api/v1/recovery/complete",
                             json={"token": reset.token, "password": NEW_PASSWORD})
    assert late.status_code == 410 and error(late) == "link.superseded"
    by_code = await client.post("/api/v1/recovery/complete", json={
        "identifier": "moved@example.jp", "code": reset.code, "password": NEW_PASSWORD})
    assert by_code.status_code != 200
    assert (await login(client, "moved@example.jp", member.password)).status_code == 200
    assert (await login(client, "moved@example.jp", NEW_PASSWORD)).status_code == 401


async def test_address_of_another_account_gets_a_notice_and_no_code(app, client, factory,
                                                                    mailbox):
    owner = await factory.member(email="hanako@example.jp")
    member = await factory.member(email="jiro@example.jp")
    bystander = await factory.member()
    auth = await signed_in(client, member)
    taken = await request_email(client, auth, "Hanako@Example.jp")
    free = await request_email(client, await signed_in(client, bystander), "free@example.jp")
    assert (taken.status_code, taken.content) == (free.status_code, free.content)

    assert await notices(mailbox, "hanako@example.jp") == ["email_change_taken"]
    notice = await latest(mailbox, "hanako@example.jp", "email_change_taken")
    assert CODE.findall(notice.text) == []
    # Nothing changed for either account.
    assert (await factory.account(member.account_id)).email == "jiro@example.jp"
    assert (await login(client, "hanako@example.jp", owner.password)).status_code == 200
    assert (await login(client, "jiro@example.jp", member.password)).status_code == 200
    assert await notices(mailbox, "jiro@example.jp") == []


async def test_the_current_address_is_refused(client, factory, mailbox):
    member = await factory.member(email="same@example.jp")
    auth = await signed_in(client, member)
    for spelling in ("same@example.jp", " SAME@Example.JP "):
        r = await request_email(client, auth, spelling)
        assert r.status_code == 422
        assert error(r) == "request.invalid"
        assert r.json()["error"]["reason"] == "same_as_current"
    assert await notices(mailbox, "same@example.jp") == []


async def test_resend_waits_for_the_cooldown_and_retires_the_old_code(client, factory,
                                                                      mailbox, clock):
    member = await factory.member()
    auth = await signed_in(client, member)
    await request_email(client, auth, "resend@example.jp")
    first = (await mailbox.last("resend@example.jp")).code
    clock.advance(seconds=20)
    soon = await request_email(client, auth, "resend@example.jp")
    assert soon.status_code == 429 and error(soon) == "code.resend_too_soon"
    wait = soon.json()["error"]["retry_after"]
    assert 0 < wait <= 40
    assert soon.headers["Retry-After"] == str(wait)
    assert len(await mailbox.to("resend@example.jp")) == 1

    clock.advance(seconds=wait)
    assert (await request_email(client, auth, "resend@example.jp")).status_code == 202
    mails = await mailbox.to("resend@example.jp")
    assert [m.template for m in mails] == ["email_change_code"] * 2
    second = mails[-1].code
    if first != second:  # one chance in a million that they are equal
        old = await confirm_email(client, auth, first)
        assert old.status_code != 200 and error(old) == "code.invalid"
    done = await confirm_email(client, auth, second)
    assert done.status_code == 200
    assert done.json()["account"]["email"] == "resend@example.jp"


async def test_a_resend_does_not_restore_spent_attempts(client, factory, mailbox, clock):
    member = await factory.member()
    auth = await signed_in(client, member)
    await request_email(client, auth, "guess@example.jp")
    code = (await mailbox.last("guess@example.jp")).code
    for left in (4, 3, 2):
        r = await confirm_email(client, auth, wrong(code))
        assert error(r) == "code.invalid" and r.json()["error"]["attempts_left"] == left
    clock.advance(seconds=COOLDOWN)
    assert (await request_email(client, auth, "guess@example.jp")).status_code == 202
    fresh = (await mailbox.last("guess@example.jp")).code
    fourth = await confirm_email(client, auth, wrong(fresh))
    assert error(fourth) == "code.invalid" and fourth.json()["error"]["attempts_left"] == 1
    fifth = await confirm_email(client, auth, wrong(fresh))
    assert fifth.status_code == 429 and error(fifth) == "code.too_many_attempts"
    right = await confirm_email(client, auth, fresh)
    assert right.status_code == 429 and error(right) == "code.too_many_attempts"
    assert (await factory.account(member.account_id)).email == member.email


# --- phone --------------------------------------------------------------------------------


async def test_phone_added_by_sms_code_then_logs_in(client, factory, mailbox):
    member = await factory.member()
    auth = await signed_in(client, member)
    started = await request_phone(client, auth, PHONE_TYPED)
    assert started.status_code == 202
    assert started.json()["next"] == "/api/v1/account/phone/confirm"
    texts = await mailbox.texts()
    assert [t.to for t in texts] == [PHONE]
    done = await confirm_phone(client, auth, texts[0].code)
    assert done.status_code == 200
    assert done.json()["account"]["phone"] == PHONE
    assert (await account_of(client, auth))["phone"] == PHONE
    assert await notices(mailbox, member.email) == ["phone_changed"]
    assert len(await mailbox.texts()) == 1  # no old number to tell

    by_phone = await login(client, PHONE_WIDE, member.password)
    assert by_phone.status_code == 200
    session = {"Authorization": f"Bearer {by_phone.json()['session_token']}"}
    assert (await account_of(client, session))["member_id"] == member.member_id


async def test_changing_the_number_tells_the_old_one(client, factory, mailbox, clock):
    member = await factory.member()
    auth = await signed_in(client, member)
    await change_phone(client, mailbox, auth, PHONE_TYPED, PHONE)
    clock.advance(seconds=COOLDOWN)
    await change_phone(client, mailbox, auth, OTHER_TYPED, OTHER_PHONE)

    old_number = await mailbox.texts(PHONE)
    assert len(old_number) == 2  # the code, then the notice
    assert old_number[-1].link("/account/revert?token=")
    assert await notices(mailbox, member.email) == ["phone_changed", "phone_changed"]
    assert (await account_of(client, auth))["phone"] == OTHER_PHONE
    assert (await login(client, PHONE, member.password)).status_code == 401
    assert (await login(client, OTHER_TYPED, member.password)).status_code == 200


async def test_the_current_number_is_refused(client, factory, mailbox):
    member = await factory.member()
    auth = await signed_in(client, member)
    await change_phone(client, mailbox, auth, PHONE_TYPED, PHONE)
    again = await request_phone(client, auth, PHONE_WIDE)
    assert again.status_code == 422
    assert again.json()["error"]["reason"] == "same_as_current"
    assert len(await mailbox.texts(PHONE)) == 1


async def test_a_recycled_number_moves_to_whoever_verifies_it(app, client, factory, mailbox):
    previous = await factory.member(email="previous@example.jp", password="previous own pass")
    current = await factory.member(email="current@example.jp")
    previous_auth = await signed_in(client, previous)
    await change_phone(client, mailbox, previous_auth, PHONE_TYPED, PHONE)
    async with make_client(app, ip="198.51.100.20") as other:
        current_auth = await signed_in(other, current)
        await change_phone(other, mailbox, current_auth, PHONE_WIDE, PHONE)
        assert (await account_of(other, current_auth))["phone"] == PHONE

    assert (await account_of(client, previous_auth))["phone"] is None
    assert await notices(mailbox, "previous@example.jp") == ["phone_changed", "phone_removed"]
    by_phone = await login(client, PHONE_TYPED, current.password)
    assert by_phone.status_code == 200
    session = {"Authorization": f"Bearer {by_phone.json()['session_token']}"}
    assert (await account_of(client, session))["member_id"] == current.member_id
    assert (await login(client, PHONE_TYPED, previous.password)).status_code == 401


# --- "this wasn't me" ---------------------------------------------------------------------


async def test_revert_restores_the_email_and_ends_every_session(app, client, factory,
                                                                mailbox, core):
    member = await factory.member(email="owner@example.jp")
    intruder = await signed_in(client, member)
    elsewhere = await signed_in(client, member)
    token = await change_email(client, mailbox, intruder, "intruder@example.jp")

    async with make_client(app, ip="192.0.2.44") as stranger:  # not logged in
        undone = await revert(stranger, token)
    assert undone.status_code == 200
    assert undone.json() == {"status": "reverted", "next": "recovery"}
    for auth in (intruder, elsewhere):
        assert (await client.get("/api/v1/session", headers=auth)).status_code == 401
    async with core.db.transaction() as db:
        reasons = list(await db.scalars(select(Session.end_reason).where(
            Session.account_id == member.account_id)))
    assert reasons == ["contact_reverted"] * 2

    assert (await factory.account(member.account_id)).email == "owner@example.jp"
    assert (await login(client, "intruder@example.jp", member.password)).status_code == 401
    assert (await login(client, "owner@example.jp", member.password)).status_code == 200
    reset = await latest(mailbox, "owner@example.jp", "password_reset")
    assert not [m for m in await mailbox.to("intruder@example.jp")
                if m.template == "password_reset"]
    fixed = await client.post("/api/v1/recovery/complete",
                              json={"token": reset.token, "password": NEW_PASSWORD})
    assert fixed.status_code == 200
    assert (await login(client, "owner@example.jp", NEW_PASSWORD)).status_code == 200


async def test_revert_link_works_once_and_for_seven_days(client, factory, mailbox, clock):
    first = await factory.member()
    token = await change_email(client, mailbox, await signed_in(client, first),
                               "first.new@example.jp")
    assert (await revert(client, token)).status_code == 200
    twice = await revert(client, token)
    assert twice.status_code == 410 and error(twice) == "link.used"

    second = await factory.member()
    late_token = await change_email(client, mailbox, await signed_in(client, second),
                                    "second.new@example.jp")
    clock.advance(days=8)
    late = await revert(client, late_token)
    assert late.status_code == 410 and error(late) == "link.expired"
    assert (await factory.account(second.account_id)).email == "second.new@example.jp"
    unknown = await revert(client, "no-such-token")
    assert unknown.status_code == 410


async def test_after_two_changes_the_first_address_undoes_both(client, factory, mailbox,
                                                               clock):
    member = await factory.member(email="a@example.jp")
    auth = await signed_in(client, member)
    from_a = await change_email(client, mailbox, auth, "b@example.jp")
    clock.advance(seconds=COOLDOWN)
    from_b = await change_email(client, mailbox, auth, "c@example.jp")

    assert (await revert(client, from_a)).status_code == 200
    assert (await factory.account(member.account_id)).email == "a@example.jp"
    assert (await login(client, "a@example.jp", member.password)).status_code == 200
    for gone in ("b@example.jp", "c@example.jp"):
        assert (await login(client, gone, member.password)).status_code == 401
    refused = await revert(client, from_b)
    assert refused.status_code == 410 and error(refused) == "link.superseded"
    assert (await factory.account(member.account_id)).email == "a@example.jp"
    assert (await notices(mailbox, "a@example.jp"))[-1] == "password_reset"


async def test_revert_kills_a_reset_link_the_intruder_sent_to_the_new_address(client, factory,
                                                                             mailbox):
    member = await factory.member(email="victim@example.jp")
    auth = await signed_in(client, member)
    token = await change_email(client, mailbox, auth, "thief@example.jp")
    await client.post("/api/v1/recovery", json={"identifier": "thief@example.jp"})
    stolen = await latest(mailbox, "thief@example.jp", "password_reset")

    assert (await revert(client, token)).status_code == 200
    used = await client.post("/api/v1/recovery/complete",
                             json={"token": stolen.token, "password": NEW_PASSWORD})
    assert used.status_code == 410 and error(used) == "link.superseded"
    assert (await login(client, "victim@example.jp", member.password)).status_code == 200


async def test_revert_never_mails_the_reset_link_to_the_intruders_address(app, client,
                                                                           factory, mailbox):
    member = await factory.member(email="held@example.jp")
    auth = await signed_in(client, member)
    token = await change_email(client, mailbox, auth, "taker@example.jp")
    # The intruder parks the freed address in an unverified registration of their own.
    async with make_client(app, ip="198.51.100.66") as intruder:
        parked = await intruder.post("/api/v1/registrations", json={
            "email": "held@example.jp", "password": "kaede tsuki hoshi"})
        assert parked.status_code == 202

    undone = await revert(client, token)
    assert undone.status_code == 200
    assert (await client.get("/api/v1/session", headers=auth)).status_code == 401
    # Fails today: the address cannot be restored, so the reset link goes to account.email,
    # which is still the intruder's (see the report).
    to_intruder = [m.template for m in await mailbox.to("taker@example.jp")]
    assert "password_reset" not in to_intruder, to_intruder
    assert (await notices(mailbox, "held@example.jp"))[-1] == "password_reset"


async def test_revert_removes_an_added_phone(client, factory, mailbox):
    member = await factory.member()
    auth = await signed_in(client, member)
    await change_phone(client, mailbox, auth, PHONE_TYPED, PHONE)
    told = await latest(mailbox, member.email, "phone_changed")

    assert (await revert(client, told.token)).status_code == 200
    assert (await client.get("/api/v1/session", headers=auth)).status_code == 401
    assert (await login(client, PHONE, member.password)).status_code == 401
    again = await signed_in(client, member)
    assert (await account_of(client, again))["phone"] is None
    assert (await notices(mailbox, member.email))[-1] == "password_reset"


async def test_revert_from_the_old_number_restores_it(client, factory, mailbox, clock):
    member = await factory.member()
    auth = await signed_in(client, member)
    await change_phone(client, mailbox, auth, PHONE_TYPED, PHONE)
    clock.advance(seconds=COOLDOWN)
    await change_phone(client, mailbox, auth, OTHER_TYPED, OTHER_PHONE)
    notice = await mailbox.last_text(PHONE)

    assert (await revert(client, notice.token)).status_code == 200
    assert (await login(client, OTHER_PHONE, member.password)).status_code == 401
    back = await login(client, PHONE_WIDE, member.password)
    assert back.status_code == 200
    session = {"Authorization": f"Bearer {back.json()['session_token']}"}
    assert (await account_of(client, session))["phone"] == PHONE
    assert (await client.get("/api/v1/session", headers=auth)).status_code == 401
    assert (await notices(mailbox, member.email))[-1] == "password_reset"


# --- pages --------------------------------------------------------------------------------


async def test_account_page_asks_for_the_password_before_an_email_change(client, factory,
                                                                        mailbox, clock):
    member = await factory.member()
    await signed_in(client, member)
    clock.advance(seconds=STALE)
    refused = await submit(client, "/account", "/account/email", {"email": "page@example.jp"})
    assert refused.status_code == 403
    assert 'data-form="reauth"' in refused.text
    assert 'data-code="auth.step_up_required"' in refused.text
    assert 'value="page@example.jp"' in refused.text  # what was typed is kept
    assert await mailbox.to("page@example.jp") == []

    reauth = await client.post("/account/reauth", data={
        "csrf_token": csrf_of(refused.text), "password": member.password})
    assert reauth.status_code == 303
    assert "notice=reauthenticated" in reauth.headers["location"]
    sent = await submit(client, "/account", "/account/email", {"email": "page@example.jp"})
    assert sent.status_code == 303 and "pending=email" in sent.headers["location"]
    code = (await mailbox.last("page@example.jp")).code
    done = await submit(client, "/account?pending=email", "/account/email/confirm",
                        {"code": code})
    assert done.status_code == 303 and "notice=email_changed" in done.headers["location"]
    page = await client.get("/account")
    assert "<dd data-email>page@example.jp</dd>" in page.text


async def test_revert_page_offers_a_button_then_says_why_the_link_is_spent(app, client,
                                                                           factory, mailbox):
    member = await factory.member(email="page.owner@example.jp")
    token = await change_email(client, mailbox, await signed_in(client, member),
                               "page.intruder@example.jp")
    async with make_client(app, ip="192.0.2.80") as browser:
        shown = await browser.get(f"/account/revert?token={token}")
        assert shown.status_code == 200
        assert 'action="/account/revert"' in shown.text
        assert f'name="token" value="{token}"' in shown.text
        # Opening the link (as a mail scanner does) changes nothing.
        assert (await factory.account(member.account_id)).email == "page.intruder@example.jp"
        assert (await revert(browser, token)).status_code == 200
        spent = await browser.get(f"/account/revert?token={token}")
    assert spent.status_code == 410
    assert 'data-code="link.used"' in spent.text
    assert REFERENCE.search(spent.text), spent.text
    assert 'action="/account/revert"' not in spent.text


async def test_pressing_the_undo_button_confirms_on_the_page(app, client, factory, mailbox):
    member = await factory.member(email="button.owner@example.jp")
    token = await change_email(client, mailbox, await signed_in(client, member),
                               "button.intruder@example.jp")
    async with make_client(app, ip="192.0.2.81") as browser:
        shown = await browser.get(f"/account/revert?token={token}")
        pressed = await browser.post("/account/revert",
                                     data={"csrf_token": csrf_of(shown.text), "token": token})
    assert (await factory.account(member.account_id)).email == "button.owner@example.jp"
    assert (await notices(mailbox, "button.owner@example.jp"))[-1] == "password_reset"
    # Fails today: revert.html passes email= to gettext, which takes no keywords, so the
    # member gets a 500 page although the change was undone (see the report).
    assert pressed.status_code == 200, pressed.text[:300]
    assert 'data-notice="reverted"' in pressed.text
    assert "button.owner@example.jp" in pressed.text


# --- races --------------------------------------------------------------------------------


async def test_twenty_concurrent_confirmations_change_the_email_once(client, factory,
                                                                     mailbox, core):
    member = await factory.member(email="race@example.jp")
    auth = await signed_in(client, member)
    await request_email(client, auth, "race.new@example.jp")
    code = (await mailbox.last("race.new@example.jp")).code
    responses = await asyncio.gather(*[confirm_email(client, auth, code) for _ in range(20)])
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == 1, statuses
    assert {error(r) for r in responses if r.status_code != 200} == {"code.expired"}
    assert await notices(mailbox, "race@example.jp") == ["email_changed"]
    assert (await factory.account(member.account_id)).email == "race.new@example.jp"


async def test_twenty_concurrent_reverts_have_one_winner(client, factory, mailbox):
    member = await factory.member(email="race.owner@example.jp")
    token = await change_email(client, mailbox, await signed_in(client, member),
                               "race.intruder@example.jp")
    responses = await asyncio.gather(*[revert(client, token) for _ in range(20)])
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == 1, statuses
    assert {error(r) for r in responses if r.status_code != 200} == {"link.used"}
    resets = [m for m in await mailbox.to("race.owner@example.jp")
              if m.template == "password_reset"]
    assert len(resets) == 1
    assert (await factory.account(member.account_id)).email == "race.owner@example.jp"
