"""Second factors through the JSON API: enrolment, the login's second stage, managing them,
and the step-up (recent password) that guards the sensitive changes."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import timedelta

import pyotp
import pytest
from conftest import make_client
from sqlalchemy import func, select

from sekisho.flows.login.models import PendingLogin
from sekisho.sessions.models import Session

PHONE = "+819012345678"
PHONE_TYPED = "090-1234-5678"
NEW_PASSWORD = "fuji yama kawa sora"
STALE = 601  # seconds: just past step_up_max_age_seconds
STEP = 30  # seconds: one TOTP time step
RECOVERY_CODE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{5}$")
FACTOR_MAILS = {"second_factor_added", "second_factor_removed", "recovery_codes_regenerated"}
SMS_ON = {"sms_second_factor": True}


@dataclass
class Enrolled:
    id: int
    secret: str
    recovery_codes: list[str]
    auth: dict[str, str]
    """The session that enrolled it."""


# --- helpers ------------------------------------------------------------------------------


def error(response) -> str:
    return response.json()["error"]["code"]


def totp_at(secret: str, clock, steps: int = 0) -> str:
    """The authenticator app's code ``steps`` time steps from now."""
    return pyotp.TOTP(secret).at(clock.now() + timedelta(seconds=STEP * steps))


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


def misread(code: str) -> str:
    """``code`` copied by hand: lower case, 0 as O, and 1 as I and l in turn."""
    ones = iter("Il" * len(code))
    return "".join("O" if c == "0" else next(ones) if c == "1" else c.lower() for c in code)


def full_width(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


async def login(client, member, password=None):
    return await client.post("/api/v1/login", json={
        "identifier": member.email, "password": password or member.password})


async def signed_in(client, member) -> dict[str, str]:
    response = await login(client, member)
    assert response.status_code == 200, response.text
    assert "session_token" in response.json(), response.text
    return {"Authorization": f"Bearer {response.json()['session_token']}"}


async def password_stage(client, member) -> dict:
    """The password stage of a member with a second factor: the open flow's answer."""
    response = await login(client, member)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["next"] == "mfa", body
    return body


async def mfa(client, flow, method, code):
    return await client.post("/api/v1/login/mfa",
                             json={"flow": flow, "method": method, "code": code})


async def signed_in_with(client, member, method, code) -> dict[str, str]:
    done = await mfa(client, (await password_stage(client, member))["flow"], method, code)
    assert done.status_code == 200, done.text
    return {"Authorization": f"Bearer {done.json()['session_token']}"}


async def enrol(client, auth, clock, name="iPhone") -> Enrolled:
    """Enrol an authenticator app and confirm it with its current code."""
    started = await client.post("/api/v1/account/second-factors/totp", headers=auth,
                                json={"name": name})
    assert started.status_code == 201, started.text
    body = started.json()
    confirmed = await client.post(body["confirm"], headers=auth,
                                  json={"code": totp_at(body["secret"], clock)})
    assert confirmed.status_code == 200, confirmed.text
    return Enrolled(body["id"], body["secret"], confirmed.json()["recovery_codes"], auth)


async def member_with_totp(client, factory, clock, **kwargs):
    """A member with a confirmed authenticator app; the clock is moved one step on, so the
    app's current code has not been used yet."""
    member = await factory.member(**kwargs)
    factor = await enrol(client, await signed_in(client, member), clock)
    clock.advance(seconds=STEP)
    return member, factor


async def reauthenticate(client, auth, member):
    response = await client.post("/api/v1/session/reauthenticate", headers=auth,
                                 json={"password": member.password})
    assert response.status_code == 200, response.text


async def templates(mailbox, address) -> list[str]:
    return [m.template for m in await mailbox.to(address) if m.template in FACTOR_MAILS]


async def listed(client, auth) -> dict:
    response = await client.get("/api/v1/account/second-factors", headers=auth)
    assert response.status_code == 200, response.text
    return response.json()


async def live_sessions(core, account_id) -> int:
    async with core.db.transaction() as db:
        return int(await db.scalar(select(func.count()).select_from(Session).where(
            Session.account_id == account_id, Session.ended_at.is_(None))))


def session_cookie_set(response) -> bool:
    return any(c.startswith("sekisho_session=") and not c.startswith('sekisho_session="";')
               for c in response.headers.get_list("set-cookie"))


async def add_phone(client, mailbox, auth) -> None:
    asked = await client.post("/api/v1/account/phone", headers=auth, json={"phone": PHONE_TYPED})
    assert asked.status_code == 202, asked.text
    code = (await mailbox.last_text(PHONE)).code
    done = await client.post("/api/v1/account/phone/confirm", headers=auth, json={"code": code})
    assert done.status_code == 200, done.text


# --- enrolment ----------------------------------------------------------------------------


async def test_enrolment_confirms_with_the_first_code_and_shows_ten_recovery_codes(
        client, factory, mailbox, clock):
    member = await factory.member()
    auth = await signed_in(client, member)
    started = await client.post("/api/v1/account/second-factors/totp", headers=auth,
                                json={"name": "  Taro's   iPhone "})
    assert started.status_code == 201
    body = started.json()
    assert body["otpauth_uri"].startswith("otpauth://totp/")
    assert f"secret={body['secret']}" in body["otpauth_uri"]
    assert body["secret_grouped"].replace(" ", "") == body["secret"]
    assert body["qr_svg"].lstrip().startswith("<svg")
    assert body["confirm"] == f"/api/v1/account/second-factors/totp/{body['id']}/confirm"
    # Not a second factor until confirmed: login still needs only the password.
    assert (await listed(client, auth))["authenticators"] == []
    assert "session_token" in (await login(client, member)).json()

    code = totp_at(body["secret"], clock)
    bad = await client.post(body["confirm"], headers=auth, json={"code": wrong(code)})
    assert bad.status_code == 400 and error(bad) == "second_factor.invalid_code"
    assert await templates(mailbox, member.email) == []

    ok = await client.post(body["confirm"], headers=auth, json={"code": code})
    assert ok.status_code == 200
    codes = ok.json()["recovery_codes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    assert all(RECOVERY_CODE.match(c) for c in codes), codes
    assert await templates(mailbox, member.email) == ["second_factor_added"]
    state = await listed(client, auth)
    assert [(a["kind"], a["name"]) for a in state["authenticators"]] == [
        ("totp", "Taro's iPhone")]
    assert state["recovery_codes_left"] == 10
    stage = await password_stage(client, member)
    assert stage["methods"] == ["totp", "recovery_code"]


async def test_enrolment_needs_a_recent_password(client, factory, clock):
    member = await factory.member()
    auth = await signed_in(client, member)
    clock.advance(seconds=STALE)
    refused = await client.post("/api/v1/account/second-factors/totp", headers=auth,
                                json={"name": "iPhone"})
    assert refused.status_code == 403 and error(refused) == "auth.step_up_required"
    await reauthenticate(client, auth, member)
    factor = await enrol(client, auth, clock)
    assert len(factor.recovery_codes) == 10


async def test_a_second_authenticator_keeps_the_recovery_codes(client, factory, mailbox,
                                                               clock):
    member, first = await member_with_totp(client, factory, clock)
    auth = first.auth
    second = await enrol(client, auth, clock, name="iPad")
    assert second.recovery_codes is None
    assert (await listed(client, auth))["recovery_codes_left"] == 10
    assert await templates(mailbox, member.email) == ["second_factor_added"] * 2
    clock.advance(seconds=STEP)
    # Either app finishes a login, and the first set of recovery codes still works.
    for secret in (first.secret, second.secret):
        done = await mfa(client, (await password_stage(client, member))["flow"], "totp",
                         totp_at(secret, clock))
        assert done.status_code == 200, done.text
    done = await mfa(client, (await password_stage(client, member))["flow"], "recovery_code",
                     first.recovery_codes[0])
    assert done.status_code == 200


async def test_another_members_pending_authenticator_cannot_be_confirmed(app, client, factory,
                                                                         clock):
    owner = await factory.member()
    started = await client.post("/api/v1/account/second-factors/totp",
                                headers=await signed_in(client, owner), json={"name": "x"})
    body = started.json()
    other = await factory.member()
    async with make_client(app, ip="198.51.100.30") as elsewhere:
        other_auth = await signed_in(elsewhere, other)
        taken = await elsewhere.post(body["confirm"], headers=other_auth,
                                     json={"code": totp_at(body["secret"], clock)})
        assert taken.status_code == 404 and error(taken) == "second_factor.not_found"
        assert (await listed(elsewhere, other_auth))["authenticators"] == []
        assert "session_token" in (await login(elsewhere, other)).json()


# --- the second stage of a login ----------------------------------------------------------


async def test_password_stage_gives_a_flow_and_no_session(app, client, factory, clock, core):
    member, factor = await member_with_totp(client, factory, clock)
    sessions_before = await live_sessions(core, member.account_id)
    async with make_client(app, ip="198.51.100.31") as browser:
        response = await login(browser, member)
        assert response.status_code == 200
        body = response.json()
        assert body["next"] == "mfa"
        assert body["methods"] == ["totp", "recovery_code"]
        assert body["flow"] and "session_token" not in body and "account" not in body
        assert not session_cookie_set(response)
        assert (await browser.get("/api/v1/session")).status_code == 401
        assert await live_sessions(core, member.account_id) == sessions_before

        done = await mfa(browser, body["flow"], "totp", totp_at(factor.secret, clock))
        assert done.status_code == 200
        assert done.json()["account"]["member_id"] == member.member_id
        assert session_cookie_set(done)
        token = done.json()["session_token"]
        me = await browser.get("/api/v1/session", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200
        assert await live_sessions(core, member.account_id) == sessions_before + 1
        # The flow made its session: it cannot make another.
        clock.advance(seconds=STEP)
        again = await mfa(browser, body["flow"], "totp", totp_at(factor.secret, clock))
        assert again.status_code == 410 and error(again) == "login.flow_expired"
    assert await live_sessions(core, member.account_id) == sessions_before + 1


async def test_totp_one_step_either_side_is_accepted(client, factory, clock):
    member, factor = await member_with_totp(client, factory, clock)
    clock.advance(seconds=10 * STEP)
    behind = await mfa(client, (await password_stage(client, member))["flow"], "totp",
                       totp_at(factor.secret, clock, steps=-1))
    assert behind.status_code == 200, behind.text
    ahead = await mfa(client, (await password_stage(client, member))["flow"], "totp",
                      totp_at(factor.secret, clock, steps=+1))
    assert ahead.status_code == 200, ahead.text


async def test_totp_two_steps_away_is_refused(client, factory, clock):
    member, factor = await member_with_totp(client, factory, clock)
    clock.advance(seconds=10 * STEP)
    flow = (await password_stage(client, member))["flow"]
    for steps in (-2, +2):
        refused = await mfa(client, flow, "totp", totp_at(factor.secret, clock, steps=steps))
        assert refused.status_code == 400, (steps, refused.text)
        assert error(refused) == "second_factor.invalid_code"
    done = await mfa(client, flow, "totp", totp_at(factor.secret, clock))
    assert done.status_code == 200


async def test_a_totp_code_works_once_even_across_logins(app, client, factory, clock):
    member, factor = await member_with_totp(client, factory, clock)
    code = totp_at(factor.secret, clock)
    first = await mfa(client, (await password_stage(client, member))["flow"], "totp", code)
    assert first.status_code == 200
    async with make_client(app, ip="198.51.100.32") as thief:
        flow = (await password_stage(thief, member))["flow"]
        replay = await mfa(thief, flow, "totp", code)
        assert replay.status_code == 400 and error(replay) == "second_factor.invalid_code"
        # An older code, still inside the drift window, is refused too.
        older = await mfa(thief, flow, "totp", totp_at(factor.secret, clock, steps=-1))
        assert older.status_code == 400 and error(older) == "second_factor.invalid_code"
        newer = await mfa(thief, flow, "totp", totp_at(factor.secret, clock, steps=+1))
        assert newer.status_code == 200


async def test_full_width_totp_code_is_accepted(client, factory, clock):
    member, factor = await member_with_totp(client, factory, clock)
    code = totp_at(factor.secret, clock)
    typed = full_width(f"{code[:3]} {code[3:]}")
    done = await mfa(client, (await password_stage(client, member))["flow"], "totp", typed)
    assert done.status_code == 200, done.text


async def test_recovery_code_typed_as_people_type_it(client, factory, clock):
    member, factor = await member_with_totp(client, factory, clock)
    codes = list(factor.recovery_codes)
    auth = await signed_in_with(client, member, "recovery_code", codes.pop(0))
    # A code with a 0 or 1 in it, read back as O, I or l.
    lookalike = next((c for c in codes if set(c) & {"0", "1"}), None)
    while lookalike is None:  # at 65 random bits per code, all but never needed
        await reauthenticate(client, auth, member)
        regenerated = await client.post("/api/v1/account/recovery-codes", headers=auth)
        codes = regenerated.json()["recovery_codes"]
        lookalike = next((c for c in codes if set(c) & {"0", "1"}), None)
    codes.remove(lookalike)
    spellings = [
        misread(lookalike),
        codes[0].lower().replace("-", ""),
        full_width(codes[1]),
        f"  {codes[2][:4]} {codes[2][5:9]}\u30fc{codes[2][10:]} ",
    ]
    for spelling in spellings:
        done = await mfa(client, (await password_stage(client, member))["flow"],
                         "recovery_code", spelling)
        assert done.status_code == 200, (spelling, done.text)
    left = (await listed(client, await signed_in_with(
        client, member, "recovery_code", codes[3])))["recovery_codes_left"]
    assert left == len(codes) - 4


async def test_a_recovery_code_works_once(client, factory, clock):
    member, factor = await member_with_totp(client, factory, clock)
    code = factor.recovery_codes[0]
    assert (await mfa(client, (await password_stage(client, member))["flow"],
                      "recovery_code", code)).status_code == 200
    again = await mfa(client, (await password_stage(client, member))["flow"],
                      "recovery_code", code.lower())
    assert again.status_code == 400 and error(again) == "second_factor.invalid_code"
    assert again.json()["error"]["attempts_left"] == 9


async def test_malformed_entries_are_not_counted_as_guesses(client, factory, clock):
    member, factor = await member_with_totp(client, factory, clock)
    flow = (await password_stage(client, member))["flow"]
    for code in ("ABCD-EFGH-JKMN", "ABCD-EFGH-JKMNPQ", "UUUU-UUUU-UUUUU", "ＡＢＣＤ-ＥＦＧＨ-ü"):
        refused = await mfa(client, flow, "recovery_code", code)
        assert refused.status_code == 422, (code, refused.text)
        body = refused.json()["error"]
        assert body["code"] == "request.invalid" and body["reason"] == "not_a_recovery_code"
    for code in ("12345", "1234567", "12a456"):
        refused = await mfa(client, flow, "totp", code)
        assert refused.status_code == 422 and error(refused) == "request.invalid", code
    counted = await mfa(client, flow, "totp", wrong(totp_at(factor.secret, clock)))
    assert counted.status_code == 400
    assert counted.json()["error"]["attempts_left"] == 9
    assert (await mfa(client, flow, "totp", totp_at(factor.secret, clock))).status_code == 200


async def test_ten_wrong_codes_end_the_flow_but_not_the_password(app, client, factory, clock,
                                                                 mailbox, core):
    member, factor = await member_with_totp(client, factory, clock)
    right = totp_at(factor.secret, clock)
    async with make_client(app, ip="198.51.100.33") as browser:  # an untrusted browser
        for _ in range(2):  # 20 wrong entries: more than the lockout threshold (5)
            flow = (await password_stage(browser, member))["flow"]
            answers = [await mfa(browser, flow, "totp", wrong(right)) for _ in range(10)]
            assert [a.json()["error"].get("attempts_left") for a in answers[:9]] == \
                list(range(9, 0, -1))
            assert {error(a) for a in answers[:9]} == {"second_factor.invalid_code"}
            assert answers[9].status_code == 410 and error(answers[9]) == "login.flow_expired"
            dead = await mfa(browser, flow, "totp", right)
            assert dead.status_code == 410 and error(dead) == "login.flow_expired"
            dead = await mfa(browser, flow, "recovery_code", factor.recovery_codes[0])
            assert dead.status_code == 410 and error(dead) == "login.flow_expired"
        # Wrong second factors are not wrong passwords: no lockout, no cap, no lock mail.
        assert (await factory.account(member.account_id)).failed_logins == 0
        locks = [m.template for m in await mailbox.to(member.email)
                 if m.template in {"login_locked", "password_login_disabled"}]
        assert locks == []
        flow = (await password_stage(browser, member))["flow"]
        done = await mfa(browser, flow, "totp", right)
        assert done.status_code == 200, done.text
    # The dead flow did not spend the recovery code it was shown.
    assert (await listed(client, {"Authorization": f"Bearer {done.json()['session_token']}"})
            )["recovery_codes_left"] == 10


async def test_the_flow_expires_after_ten_minutes(client, factory, clock, settings):
    member, factor = await member_with_totp(client, factory, clock)
    early = (await password_stage(client, member))["flow"]
    late = (await password_stage(client, member))["flow"]
    clock.advance(seconds=settings.second_factor_flow_lifetime_seconds - 1)
    done = await mfa(client, early, "totp", totp_at(factor.secret, clock))
    assert done.status_code == 200, done.text
    clock.advance(seconds=2)
    expired = await mfa(client, late, "recovery_code", factor.recovery_codes[0])
    assert expired.status_code == 410 and error(expired) == "login.flow_expired"


async def test_unknown_flow_is_expired(client, factory, clock):
    _, factor = await member_with_totp(client, factory, clock)
    response = await mfa(client, "not-a-flow", "totp", totp_at(factor.secret, clock))
    assert response.status_code == 410 and error(response) == "login.flow_expired"


async def test_a_method_not_offered_is_refused_and_not_counted(client, factory, clock,
                                                               mailbox):
    member, factor = await member_with_totp(client, factory, clock)
    auth = await signed_in_with(client, member, "totp", totp_at(factor.secret, clock))
    await add_phone(client, mailbox, auth)  # a verified phone, but SMS is off
    texts_before = len(await mailbox.texts(PHONE))
    stage = await password_stage(client, member)
    assert stage["methods"] == ["totp", "recovery_code"]
    for method in ("sms", "passkey", "password"):
        refused = await mfa(client, stage["flow"], method, "123456")
        assert refused.status_code == 422, (method, refused.text)
        body = refused.json()["error"]
        assert body["code"] == "request.invalid" and body["reason"] == "method_unavailable"
    sms = await client.post("/api/v1/login/mfa/sms", json={"flow": stage["flow"]})
    assert sms.status_code == 422 and sms.json()["error"]["reason"] == "method_unavailable"
    assert len(await mailbox.texts(PHONE)) == texts_before
    clock.advance(seconds=STEP)
    counted = await mfa(client, stage["flow"], "totp", wrong(totp_at(factor.secret, clock)))
    assert counted.json()["error"]["attempts_left"] == 9


async def test_recovery_code_is_not_offered_once_all_are_used(client, factory, clock):
    member, factor = await member_with_totp(client, factory, clock)
    for code in factor.recovery_codes:
        auth = await signed_in_with(client, member, "recovery_code", code)
    assert (await listed(client, auth))["recovery_codes_left"] == 0
    stage = await password_stage(client, member)
    assert stage["methods"] == ["totp"]
    refused = await mfa(client, stage["flow"], "recovery_code", factor.recovery_codes[0])
    assert refused.status_code == 422 and refused.json()["error"]["reason"] == \
        "method_unavailable"
    assert (await mfa(client, stage["flow"], "totp",
                      totp_at(factor.secret, clock))).status_code == 200


# --- SMS, where the operator turned it on -------------------------------------------------


@pytest.mark.parametrize("settings_overrides", [SMS_ON])
async def test_sms_code_finishes_a_login(client, factory, mailbox, clock):
    member = await factory.member()
    auth = await signed_in(client, member)
    await add_phone(client, mailbox, auth)
    await enrol(client, auth, clock)
    stage = await password_stage(client, member)
    assert stage["methods"] == ["totp", "recovery_code", "sms"]
    texts_before = len(await mailbox.texts(PHONE))
    sent = await client.post("/api/v1/login/mfa/sms", json={"flow": stage["flow"]})
    assert sent.status_code == 202, sent.text
    texts = await mailbox.texts(PHONE)
    assert len(texts) == texts_before + 1
    code = texts[-1].code
    bad = await mfa(client, stage["flow"], "sms", wrong(code))
    assert bad.status_code == 400 and error(bad) == "second_factor.invalid_code"
    done = await mfa(client, stage["flow"], "sms", code)
    assert done.status_code == 200, done.text
    # Used once: a new login cannot reuse it.
    again = await mfa(client, (await password_stage(client, member))["flow"], "sms", code)
    assert again.status_code == 400 and error(again) == "second_factor.invalid_code"


@pytest.mark.parametrize("settings_overrides", [SMS_ON])
async def test_a_phone_alone_does_not_ask_for_a_second_factor(client, factory, mailbox):
    member = await factory.member()
    await add_phone(client, mailbox, await signed_in(client, member))
    response = await login(client, member)
    assert response.status_code == 200 and "session_token" in response.json()


@pytest.mark.parametrize("settings_overrides", [SMS_ON])
async def test_sms_is_not_offered_without_a_verified_phone(client, factory, mailbox, clock):
    member, _ = await member_with_totp(client, factory, clock)
    stage = await password_stage(client, member)
    assert stage["methods"] == ["totp", "recovery_code"]
    refused = await client.post("/api/v1/login/mfa/sms", json={"flow": stage["flow"]})
    assert refused.status_code == 422 and refused.json()["error"]["reason"] == \
        "method_unavailable"
    assert await mailbox.texts() == []


# --- managing factors ---------------------------------------------------------------------


async def test_removing_the_last_factor_needs_step_up_and_ends_the_second_stage(
        client, factory, mailbox, clock):
    member, factor = await member_with_totp(client, factory, clock)
    auth = await signed_in_with(client, member, "totp", totp_at(factor.secret, clock))
    clock.advance(seconds=STALE)
    refused = await client.delete(f"/api/v1/account/second-factors/{factor.id}", headers=auth)
    assert refused.status_code == 403 and error(refused) == "auth.step_up_required"
    assert len((await listed(client, auth))["authenticators"]) == 1

    await reauthenticate(client, auth, member)
    removed = await client.delete(f"/api/v1/account/second-factors/{factor.id}", headers=auth)
    assert removed.status_code == 204
    assert await templates(mailbox, member.email) == ["second_factor_added",
                                                      "second_factor_removed"]
    assert await listed(client, auth) == {"authenticators": [], "recovery_codes_left": 0}
    response = await login(client, member)
    assert response.status_code == 200 and "session_token" in response.json()


async def test_another_members_factor_cannot_be_removed(app, client, factory, mailbox, clock):
    owner, factor = await member_with_totp(client, factory, clock)
    other = await factory.member()
    async with make_client(app, ip="198.51.100.34") as elsewhere:
        other_auth = await signed_in(elsewhere, other)
        refused = await elsewhere.delete(f"/api/v1/account/second-factors/{factor.id}",
                                         headers=other_auth)
    assert refused.status_code == 404 and error(refused) == "second_factor.not_found"
    assert await templates(mailbox, owner.email) == ["second_factor_added"]
    assert (await password_stage(client, owner))["methods"] == ["totp", "recovery_code"]


async def test_new_recovery_codes_replace_the_old_ones(client, factory, mailbox, clock):
    member, factor = await member_with_totp(client, factory, clock)
    auth = await signed_in_with(client, member, "totp", totp_at(factor.secret, clock))
    clock.advance(seconds=STALE)
    stale = await client.post("/api/v1/account/recovery-codes", headers=auth)
    assert stale.status_code == 403 and error(stale) == "auth.step_up_required"
    assert "recovery_codes_regenerated" not in await templates(mailbox, member.email)

    await reauthenticate(client, auth, member)
    fresh = await client.post("/api/v1/account/recovery-codes", headers=auth)
    assert fresh.status_code == 200
    codes = fresh.json()["recovery_codes"]
    assert len(codes) == 10 and all(RECOVERY_CODE.match(c) for c in codes)
    assert not set(codes) & set(factor.recovery_codes)
    assert (await templates(mailbox, member.email))[-1] == "recovery_codes_regenerated"
    assert (await listed(client, auth))["recovery_codes_left"] == 10

    flow = (await password_stage(client, member))["flow"]
    old = await mfa(client, flow, "recovery_code", factor.recovery_codes[1])
    assert old.status_code == 400 and error(old) == "second_factor.invalid_code"
    assert (await mfa(client, flow, "recovery_code", codes[0])).status_code == 200


async def test_recovery_codes_need_a_second_factor(client, factory, mailbox):
    member = await factory.member()
    auth = await signed_in(client, member)
    refused = await client.post("/api/v1/account/recovery-codes", headers=auth)
    assert refused.status_code == 404 and error(refused) == "second_factor.not_found"
    assert await templates(mailbox, member.email) == []


# --- races --------------------------------------------------------------------------------


async def test_twenty_concurrent_totp_entries_make_one_session(client, factory, clock, core):
    member, factor = await member_with_totp(client, factory, clock)
    before = await live_sessions(core, member.account_id)
    flow = (await password_stage(client, member))["flow"]
    code = totp_at(factor.secret, clock)
    answers = await asyncio.gather(*[mfa(client, flow, "totp", code) for _ in range(20)])
    statuses = [a.status_code for a in answers]
    assert statuses.count(200) == 1, statuses
    assert {error(a) for a in answers if a.status_code != 200} <= {
        "second_factor.invalid_code", "login.flow_expired"}
    assert await live_sessions(core, member.account_id) == before + 1


async def test_ten_concurrent_entries_of_one_recovery_code_make_one_session(client, factory,
                                                                            clock, core):
    member, factor = await member_with_totp(client, factory, clock)
    before = await live_sessions(core, member.account_id)
    flow = (await password_stage(client, member))["flow"]
    code = factor.recovery_codes[0]
    answers = await asyncio.gather(*[mfa(client, flow, "recovery_code", code)
                                     for _ in range(10)])
    statuses = [a.status_code for a in answers]
    assert statuses.count(200) == 1, statuses
    assert {error(a) for a in answers if a.status_code != 200} <= {
        "second_factor.invalid_code", "login.flow_expired"}
    assert await live_sessions(core, member.account_id) == before + 1
    auth = {"Authorization": f"Bearer {answers[statuses.index(200)].json()['session_token']}"}
    assert (await listed(client, auth))["recovery_codes_left"] == 9


async def test_concurrent_wrong_entries_all_count(client, factory, clock, core):
    member, factor = await member_with_totp(client, factory, clock)
    flow = (await password_stage(client, member))["flow"]
    bad = wrong(totp_at(factor.secret, clock))
    answers = await asyncio.gather(*[mfa(client, flow, "totp", bad) for _ in range(15)])
    assert all(a.status_code in (400, 410) for a in answers)
    async with core.db.transaction() as db:
        spent = await db.scalar(select(PendingLogin.failed_attempts).where(
            PendingLogin.account_id == member.account_id))
    assert spent >= 10
    dead = await mfa(client, flow, "totp", totp_at(factor.secret, clock))
    assert dead.status_code == 410 and error(dead) == "login.flow_expired"


# --- step-up ------------------------------------------------------------------------------


async def test_password_change_needs_a_recent_password(client, factory, mailbox, clock):
    member = await factory.member()
    auth = await signed_in(client, member)
    clock.advance(seconds=STALE)
    body = {"current_password": member.password, "new_password": NEW_PASSWORD}
    refused = await client.post("/api/v1/account/password", headers=auth, json=body)
    assert refused.status_code == 403 and error(refused) == "auth.step_up_required"
    assert refused.json()["error"]["reauthenticate"] == "/api/v1/session/reauthenticate"
    assert "password_changed" not in [m.template for m in await mailbox.to(member.email)]
    assert (await login(client, member, NEW_PASSWORD)).status_code == 401

    await reauthenticate(client, auth, member)
    changed = await client.post("/api/v1/account/password", headers=auth, json=body)
    assert changed.status_code == 200, changed.text
    assert (await mailbox.last(member.email)).template == "password_changed"
    assert (await login(client, member, NEW_PASSWORD)).status_code == 200


async def test_recent_authentication_check(client, factory, clock, settings):
    member = await factory.member()
    auth = await signed_in(client, member)
    fresh = await client.get("/api/v1/session/recent", headers=auth)
    assert fresh.status_code == 200 and fresh.json()["status"] == "recent"
    assert fresh.json()["authenticated_at"] == clock.now().isoformat()

    clock.advance(seconds=61)
    assert (await client.get("/api/v1/session/recent", headers=auth)).status_code == 200
    tight = await client.get("/api/v1/session/recent?max_age=60", headers=auth)
    assert tight.status_code == 403 and error(tight) == "auth.step_up_required"

    clock.advance(seconds=settings.step_up_max_age_seconds - 60)
    stale = await client.get("/api/v1/session/recent", headers=auth)
    assert stale.status_code == 403 and error(stale) == "auth.step_up_required"
    assert stale.json()["error"]["methods"] == ["password"]

    await reauthenticate(client, auth, member)
    again = await client.get("/api/v1/session/recent?max_age=60", headers=auth)
    assert again.status_code == 200
    assert again.json()["authenticated_at"] == clock.now().isoformat()
    assert (await client.get("/api/v1/session/recent?max_age=0",
                             headers=auth)).status_code == 422


async def test_recent_check_needs_a_session(app):
    async with make_client(app, ip="198.51.100.35") as anonymous:
        response = await anonymous.get("/api/v1/session/recent")
    assert response.status_code == 401 and error(response) == "auth.required"


async def test_step_up_with_the_authenticator_app(client, factory, clock):
    member, factor = await member_with_totp(client, factory, clock)
    clock.advance(seconds=STALE)
    stale = await client.get("/api/v1/session/recent", headers=factor.auth)
    assert stale.status_code == 403
    assert stale.json()["error"]["methods"] == ["password", "totp"]

    wrong_code = await client.post("/api/v1/session/reauthenticate", headers=factor.auth,
                                   json={"method": "totp", "code": wrong(totp_at(
                                       factor.secret, clock))})
    assert wrong_code.status_code == 400 and error(wrong_code) == "second_factor.invalid_code"
    assert (await client.get("/api/v1/session/recent", headers=factor.auth)).status_code == 403

    confirmed = await client.post("/api/v1/session/reauthenticate", headers=factor.auth,
                                  json={"method": "totp", "code": totp_at(factor.secret, clock)})
    assert confirmed.status_code == 200, confirmed.text
    assert (await client.get("/api/v1/session/recent", headers=factor.auth)).status_code == 200
    not_enrolled = await client.post("/api/v1/session/reauthenticate", headers=factor.auth,
                                     json={"method": "sms", "code": "123456"})
    assert not_enrolled.status_code == 422
    assert not_enrolled.json()["error"]["reason"] == "method_unavailable"
