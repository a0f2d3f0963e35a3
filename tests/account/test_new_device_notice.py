"""New-device notices: one mail per login from a browser the account has not seen, the
setting that turns them off, and the "this wasn't me" link they carry."""

from __future__ import annotations

import pyotp
from conftest import make_client
from sqlalchemy import select

from sekisho.sessions.models import Session

NEW_PASSWORD = "a new long passphrase"
HOME_IP = "203.0.113.7"  # the ``client`` fixture's address
OTHER_IP = "198.51.100.23"
THIRD_IP = "192.0.2.57"


# --- helpers ------------------------------------------------------------------------------


def error(response) -> str:
    return response.json()["error"]["code"]


def bearer(response) -> dict[str, str]:
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['session_token']}"}


async def login(client, member, password=None):
    return await client.post("/api/v1/login", json={
        "identifier": member.email, "password": password or member.password})


async def signed_in(client, member, password=None) -> dict[str, str]:
    return bearer(await login(client, member, password))


async def notices(mailbox, address) -> list:
    return [m for m in await mailbox.to(address) if m.template == "new_device_login"]


async def latest(mailbox, address, template):
    mails = [m for m in await mailbox.to(address) if m.template == template]
    assert mails, f"no {template} for {address}"
    return mails[-1]


def not_me_token(mail) -> str:
    return mail.link("/account/not-me?token=").split("token=", 1)[1]


async def not_me(client, token):
    return await client.post("/api/v1/account/not-me", json={"token": token})


async def reset_password(client, mailbox, member, password=NEW_PASSWORD) -> None:
    reset = await latest(mailbox, member.email, "password_reset")
    token = reset.link("/recovery/reset?token=").split("token=", 1)[1]
    done = await client.post("/api/v1/recovery/complete",
                             json={"token": token, "password": password})
    assert done.status_code == 200, done.text


async def enrol_totp(client, auth, clock) -> str:
    started = await client.post("/api/v1/account/second-factors/totp", headers=auth,
                                json={"name": "iPhone"})
    assert started.status_code == 201, started.text
    secret = started.json()["secret"]
    confirmed = await client.post(started.json()["confirm"], headers=auth,
                                  json={"code": pyotp.TOTP(secret).at(clock.now())})
    assert confirmed.status_code == 200, confirmed.text
    return secret


def totp_now(secret, clock) -> str:
    return pyotp.TOTP(secret).at(clock.now())


# --- the notice ---------------------------------------------------------------------------


async def test_first_login_from_a_browser_sends_one_notice(client, factory, mailbox):
    member = await factory.member()
    await signed_in(client, member)
    sent = await notices(mailbox, member.email)
    assert len(sent) == 1
    assert HOME_IP in sent[0].text
    assert sent[0].link("/account/not-me?token=").startswith(
        "http://127.0.0.1:8000/account/not-me?token=")
    assert "sekisho_known" in client.cookies


async def test_a_known_browser_gets_no_notice_and_a_new_one_does(app, client, factory,
                                                                 mailbox):
    member = await factory.member()
    await signed_in(client, member)
    await signed_in(client, member)
    await signed_in(client, member)
    assert len(await notices(mailbox, member.email)) == 1
    async with make_client(app, ip=OTHER_IP) as other:
        await signed_in(other, member)
        await signed_in(other, member)
    sent = await notices(mailbox, member.email)
    assert len(sent) == 2
    assert OTHER_IP in sent[1].text and HOME_IP not in sent[1].text
    assert not_me_token(sent[0]) != not_me_token(sent[1])


async def test_a_browser_known_to_another_account_is_new_to_this_one(client, factory,
                                                                     mailbox):
    first = await factory.member()
    second = await factory.member()
    await signed_in(client, first)
    await signed_in(client, second)
    assert len(await notices(mailbox, first.email)) == 1
    assert len(await notices(mailbox, second.email)) == 1


async def test_a_wrong_password_sends_no_notice(app, factory, mailbox):
    member = await factory.member()
    async with make_client(app, ip=OTHER_IP) as stranger:
        refused = await login(stranger, member, "not the password at all")
    assert refused.status_code == 401
    assert await notices(mailbox, member.email) == []


async def test_notices_can_be_turned_off_and_on(app, client, factory, mailbox):
    member = await factory.member()
    auth = await signed_in(client, member)
    off = await client.put("/api/v1/account/notices", headers=auth,
                           json={"new_device_login": False})
    assert off.status_code == 200
    assert off.json() == {"notices": {"new_device_login": False}}
    session = await client.get("/api/v1/session", headers=auth)
    assert session.json()["account"]["notices"] == {"new_device_login": False}
    async with make_client(app, ip=OTHER_IP) as other:
        await signed_in(other, member)
    assert len(await notices(mailbox, member.email)) == 1  # the first login's only

    on = await client.put("/api/v1/account/notices", headers=auth,
                          json={"new_device_login": True})
    assert on.status_code == 200
    assert (await client.get("/api/v1/session", headers=auth)).json()["account"][
        "notices"] == {"new_device_login": True}
    async with make_client(app, ip=THIRD_IP) as third:
        await signed_in(third, member)
    sent = await notices(mailbox, member.email)
    assert len(sent) == 2 and THIRD_IP in sent[1].text


async def test_the_notice_setting_needs_a_session(app):
    async with make_client(app, ip=OTHER_IP) as anonymous:
        response = await anonymous.put("/api/v1/account/notices",
                                       json={"new_device_login": False})
    assert response.status_code == 401 and error(response) == "auth.required"


# --- with a second factor -----------------------------------------------------------------


async def test_with_a_second_factor_the_notice_waits_for_the_second_step(app, client, factory,
                                                                        mailbox, clock):
    member = await factory.member()
    secret = await enrol_totp(client, await signed_in(client, member), clock)
    clock.advance(seconds=30)
    async with make_client(app, ip=OTHER_IP) as other:
        stage = await login(other, member)
        assert stage.json()["next"] == "mfa"
        assert len(await notices(mailbox, member.email)) == 1  # the enrolling browser's
        done = await other.post("/api/v1/login/mfa", json={
            "flow": stage.json()["flow"], "method": "totp", "code": totp_now(secret, clock)})
        assert done.status_code == 200, done.text
    sent = await notices(mailbox, member.email)
    assert len(sent) == 2 and OTHER_IP in sent[1].text


async def test_a_second_step_never_finished_sends_no_notice(app, client, factory, mailbox,
                                                            clock):
    member = await factory.member()
    secret = await enrol_totp(client, await signed_in(client, member), clock)
    wrong = f"{(int(totp_now(secret, clock)) + 1) % 10**6:06d}"
    async with make_client(app, ip=OTHER_IP) as other:
        flow = (await login(other, member)).json()["flow"]
        for _ in range(10):
            await other.post("/api/v1/login/mfa",
                             json={"flow": flow, "method": "totp", "code": wrong})
    assert len(await notices(mailbox, member.email)) == 1


async def test_a_known_browser_with_a_second_factor_gets_no_notice(client, factory, mailbox,
                                                                   clock):
    member = await factory.member()
    secret = await enrol_totp(client, await signed_in(client, member), clock)
    clock.advance(seconds=30)
    stage = await login(client, member)
    done = await client.post("/api/v1/login/mfa", json={
        "flow": stage.json()["flow"], "method": "totp", "code": totp_now(secret, clock)})
    assert done.status_code == 200, done.text
    assert len(await notices(mailbox, member.email)) == 1


# --- "this wasn't me" ---------------------------------------------------------------------


async def test_not_me_shuts_the_account_until_a_reset(app, client, factory, mailbox, core,
                                                      clock):
    member = await factory.member()
    owner = await signed_in(client, member)
    async with make_client(app, ip=OTHER_IP) as intruder_browser:
        intruder = await signed_in(intruder_browser, member)
    token = not_me_token((await notices(mailbox, member.email))[-1])
    clock.advance(minutes=20)  # the owner reads the mail

    async with make_client(app, ip=THIRD_IP) as phone:  # no login, no cookies
        pressed = await not_me(phone, token)
    assert pressed.status_code == 200
    assert pressed.json() == {"status": "secured", "next": "recovery"}
    for auth in (owner, intruder):
        assert (await client.get("/api/v1/session", headers=auth)).status_code == 401
    async with core.db.transaction() as db:
        reasons = list(await db.scalars(select(Session.end_reason).where(
            Session.account_id == member.account_id)))
    assert reasons == ["not_me", "not_me"]

    # Password login is off until the reset. The browsers it trusted were forgotten, so
    # the answer is what any stranger gets (it tells no one whether the password was right).
    disabled = await login(client, member)
    assert disabled.status_code == 401 and error(disabled) == "login.invalid_credentials"
    assert (await latest(mailbox, member.email, "password_reset")).link(
        "/recovery/reset?token=")
    await reset_password(client, mailbox, member)
    assert (await login(client, member)).status_code == 401
    assert (await login(client, member, NEW_PASSWORD)).status_code == 200


async def test_not_me_forgets_the_trusted_browsers(client, factory, mailbox, clock):
    member = await factory.member()
    await signed_in(client, member)
    clock.advance(minutes=5)
    await signed_in(client, member)  # known: no second notice
    sent = await notices(mailbox, member.email)
    assert len(sent) == 1
    clock.advance(minutes=5)

    assert (await not_me(client, not_me_token(sent[0]))).status_code == 200
    assert "sekisho_known" in client.cookies  # the browser still sends its old cookie
    clock.advance(seconds=30)  # reading the reset mail
    await reset_password(client, mailbox, member)
    await signed_in(client, member, NEW_PASSWORD)
    sent = await notices(mailbox, member.email)
    assert len(sent) == 2, "the old device cookie still counted as a known browser"
    # From then on this browser is known again.
    await signed_in(client, member, NEW_PASSWORD)
    assert len(await notices(mailbox, member.email)) == 2


async def test_not_me_takes_away_the_old_browsers_own_lockout_lane(app, client, factory,
                                                                   mailbox, clock, settings):
    member = await factory.member()
    await signed_in(client, member)  # this browser gets its own lane
    token = not_me_token((await notices(mailbox, member.email))[0])
    clock.advance(minutes=5)
    assert (await not_me(client, token)).status_code == 200
    await reset_password(client, mailbox, member)
    # Someone elsewhere locks the lane of untrusted browsers for this identifier.
    async with make_client(app, ip=OTHER_IP) as stranger:
        for _ in range(settings.lockout_threshold):
            assert (await login(stranger, member, "wrong guess here")).status_code == 401
        locked = await login(stranger, member, NEW_PASSWORD)
        assert locked.status_code == 429 and error(locked) == "login.throttled", locked.text
    # The old browser's cookie no longer puts it in a lane of its own.
    refused = await login(client, member, NEW_PASSWORD)
    assert refused.status_code == 429 and error(refused) == "login.throttled", refused.text


async def test_not_me_link_works_once(client, factory, mailbox, clock):
    member = await factory.member()
    await signed_in(client, member)
    token = not_me_token((await notices(mailbox, member.email))[0])
    assert (await not_me(client, token)).status_code == 200
    again = await not_me(client, token)
    assert again.status_code == 410 and error(again) == "link.used"
    resets = [m for m in await mailbox.to(member.email) if m.template == "password_reset"]
    assert len(resets) == 1


async def test_pressing_one_notice_retires_the_others(app, client, factory, mailbox):
    member = await factory.member()
    await signed_in(client, member)
    async with make_client(app, ip=OTHER_IP) as other:
        await signed_in(other, member)
    first, second = await notices(mailbox, member.email)
    assert (await not_me(client, not_me_token(second))).status_code == 200
    older = await not_me(client, not_me_token(first))
    assert older.status_code == 410
    assert error(older) in {"link.superseded", "link.used"}


async def test_not_me_link_lasts_seven_days(app, client, factory, mailbox, clock, settings):
    assert settings.not_me_link_lifetime_seconds == 7 * 24 * 3600
    early = await factory.member()
    await signed_in(client, early)
    early_token = not_me_token((await notices(mailbox, early.email))[0])
    clock.advance(days=1)
    late = await factory.member()
    async with make_client(app, ip=OTHER_IP) as other:
        await signed_in(other, late)
    late_token = not_me_token((await notices(mailbox, late.email))[0])

    clock.advance(days=6, seconds=-1)  # the early link is 7 days less a second old
    assert (await not_me(client, early_token)).status_code == 200
    clock.advance(days=1, seconds=1)  # the late link is 7 days old
    expired = await not_me(client, late_token)
    assert expired.status_code == 410 and error(expired) == "link.expired"
    assert (await login(client, late)).status_code == 200  # nothing happened to it
    unknown = await not_me(client, "no-such-token")
    assert unknown.status_code == 410 and error(unknown) == "link.expired"


async def test_not_me_stops_a_second_step_already_under_way(app, client, factory, mailbox,
                                                            clock):
    member = await factory.member()
    secret = await enrol_totp(client, await signed_in(client, member), clock)
    token = not_me_token((await notices(mailbox, member.email))[0])
    clock.advance(seconds=30)
    async with make_client(app, ip=OTHER_IP) as intruder:
        flow = (await login(intruder, member)).json()["flow"]
        assert (await not_me(client, token)).status_code == 200
        clock.advance(seconds=30)
        late = await intruder.post("/api/v1/login/mfa", json={
            "flow": flow, "method": "totp", "code": totp_now(secret, clock)})
        assert late.status_code == 410 and error(late) == "login.flow_expired", late.text
        assert (await intruder.get("/api/v1/session")).status_code == 401



async def test_a_browser_trusted_in_the_same_second_is_forgotten_too(client, factory, mailbox):
    member = await factory.member()
    await signed_in(client, member)
    sent = await notices(mailbox, member.email)
    # Pressed within the second the cookie was issued (the clock does not move).
    assert (await not_me(client, not_me_token(sent[0]))).status_code == 200
    await reset_password(client, mailbox, member)
    await signed_in(client, member, NEW_PASSWORD)
    # A cookie issued in the very second of the press counts as forgotten too.
    assert len(await notices(mailbox, member.email)) == 2
