"""Operator policy: every member must have a second factor (``second_factor_required``).
A member without one sets up an authenticator app during login, then gets the session."""

from __future__ import annotations

import re

import pyotp
import pytest
from support.pages import csrf_of

pytestmark = pytest.mark.parametrize("settings_overrides", [{"second_factor_required": True}])


async def password_stage(client, member):
    response = await client.post("/api/v1/login", json={"identifier": member.email,
                                                        "password": member.password})
    assert response.status_code == 200, response.text
    return response.json()


async def test_login_without_a_factor_enrols_one_first(client, factory, clock, mailbox):
    member = await factory.member()
    stage = await password_stage(client, member)
    assert stage["next"] == "enrol" and stage["methods"] == ["totp"]
    assert "session_token" not in stage
    assert (await client.get("/api/v1/session")).status_code == 401
    # The enrolment stage is not a second-factor stage: nothing can be entered there.
    wrong_stage = await client.post("/api/v1/login/mfa", json={
        "flow": stage["flow"], "method": "totp", "code": "123456"})
    assert wrong_stage.status_code == 410

    app = await client.post("/api/v1/login/enrol/totp", json={"flow": stage["flow"],
                                                               "name": "iPhone"})
    assert app.status_code == 201 and app.json()["qr_svg"].startswith("<svg")
    secret = app.json()["secret"]
    wrong = await client.post(app.json()["confirm"], json={"flow": stage["flow"],
                                                           "code": "000000"})
    assert wrong.json()["error"]["code"] == "second_factor.invalid_code"
    done = await client.post(app.json()["confirm"], json={
        "flow": stage["flow"], "code": pyotp.TOTP(secret).at(clock.now())})
    assert done.status_code == 200, done.text
    assert done.json()["session_token"] and len(done.json()["recovery_codes"]) == 10
    assert (await client.get("/api/v1/session")).status_code == 200
    assert "second_factor_added" in [m.template for m in await mailbox.to(member.email)]

    # From now on the factor is asked for, as for any member who has one.
    await client.post("/api/v1/logout")
    assert (await password_stage(client, member))["next"] == "mfa"


async def test_the_flow_cannot_enrol_twice(client, factory, clock):
    member = await factory.member()
    stage = await password_stage(client, member)
    app = (await client.post("/api/v1/login/enrol/totp", json={"flow": stage["flow"]})).json()
    body = {"flow": stage["flow"], "code": pyotp.TOTP(app["secret"]).at(clock.now())}
    assert (await client.post(app["confirm"], json=body)).status_code == 200
    again = await client.post("/api/v1/login/enrol/totp", json={"flow": stage["flow"]})
    assert again.status_code == 410 and again.json()["error"]["code"] == "login.flow_expired"


async def test_login_page_leads_through_the_app_set_up(client, factory, clock):
    member = await factory.member()
    page = await client.get("/login")
    setup = await client.post("/login", data={"csrf_token": csrf_of(page.text),
                                              "identifier": member.email,
                                              "password": member.password, "next": "/account"})
    assert setup.status_code == 200 and 'data-notice="second_factor_required"' in setup.text
    secret = re.search(r"data-secret>([A-Z2-7 ]+)<", setup.text).group(1).replace(" ", "")
    hidden = dict(re.findall(r'type="hidden" name="(flow|authenticator|next)" value="([^"]*)"',
                             setup.text))
    fields = {"csrf_token": csrf_of(setup.text), **hidden}
    wrong = await client.post("/login/enrol", data={**fields, "code": "000000"})
    assert wrong.status_code == 400 and "data-secret" in wrong.text  # the same app, again
    done = await client.post("/login/enrol", data={
        **fields, "code": pyotp.TOTP(secret).at(clock.now())})
    assert done.status_code == 200 and len(re.findall(r"<li><code>", done.text)) == 10
    assert 'href="/account" data-continue' in done.text
    assert (await client.get("/account")).status_code == 200
