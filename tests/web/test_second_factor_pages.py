"""Second factors through the pages, as a browser without JavaScript uses them."""

from __future__ import annotations

import re

import pyotp
from support.pages import csrf_of

from sekisho.methods.recovery_codes import ALPHABET


def code_of(html: str) -> str:
    found = re.search(r'data-code="([^"]+)"', html)
    assert found, "no error on the page"
    return found.group(1)


async def log_in(client, member):
    page = await client.get("/login")
    return await client.post("/login", data={
        "csrf_token": csrf_of(page.text), "identifier": member.email,
        "password": member.password})


async def add_authenticator_app(client, clock) -> list[str]:
    """Through the account page: scan (read the key), a wrong code, then the right one."""
    account = await client.get("/account")
    setup = await client.post("/account/totp", data={"csrf_token": csrf_of(account.text),
                                                     "name": "iPhone"})
    assert setup.status_code == 200 and "<svg" in setup.text
    grouped = re.search(r"data-secret>([A-Z2-7 ]+)<", setup.text).group(1)
    secret = grouped.replace(" ", "")
    action = re.search(r'action="(/account/totp/\d+/confirm)"', setup.text).group(1)
    wrong = await client.post(action, data={"csrf_token": csrf_of(setup.text), "code": "000000"})
    assert wrong.status_code == 400 and code_of(wrong.text) == "second_factor.invalid_code"
    assert f"data-secret>{grouped}<" in wrong.text  # the same key, shown again
    done = await client.post(action, data={"csrf_token": csrf_of(setup.text),
                                           "code": pyotp.TOTP(secret).at(clock.now())})
    assert done.status_code == 200
    return re.findall(r"<code>([0-9A-Z-]+)</code>", done.text)


async def test_enrol_then_log_in_with_a_recovery_code(client, factory, clock, mailbox):
    member = await factory.member()
    assert (await log_in(client, member)).status_code == 303
    codes = await add_authenticator_app(client, clock)
    assert len(codes) == 10 and all(set(c.replace("-", "")) <= set(ALPHABET) for c in codes)
    assert "second_factor_added" in [m.template for m in await mailbox.to(member.email)]
    await client.post("/logout", data={"csrf_token": csrf_of((await client.get("/account")).text)})

    stage = await log_in(client, member)
    assert stage.status_code == 200 and 'data-form="second-factor"' in stage.text
    flow = re.search(r'name="flow" value="([^"]+)"', stage.text).group(1)
    fields = {"csrf_token": csrf_of(stage.text), "flow": flow, "method": "recovery_code",
              "methods": "totp,recovery_code"}
    malformed = await client.post("/login/mfa", data={**fields, "code": "zzzz"})
    assert malformed.status_code == 422 and code_of(malformed.text) == "request.invalid"
    assert 'value="recovery_code"' in malformed.text  # the form is offered again
    done = await client.post("/login/mfa", data={**fields, "code": codes[0].lower()})
    assert done.status_code == 303
    account = await client.get("/account")
    assert "iPhone" in account.text
    assert "9" in re.search(r"data-recovery-codes-left>([^<]+)<", account.text).group(1)


async def test_not_me_page_secures_the_account_once(client, factory, mailbox):
    member = await factory.member()
    await log_in(client, member)
    notice = next(m for m in await mailbox.to(member.email) if m.template == "new_device_login")
    opened = await client.get(f"/account/not-me?token={notice.token}")
    assert opened.status_code == 200 and 'action="/account/not-me"' in opened.text
    pressed = await client.post("/account/not-me", data={"csrf_token": csrf_of(opened.text),
                                                         "token": notice.token})
    assert pressed.status_code == 200 and 'data-notice="secured"' in pressed.text
    assert (await client.get("/api/v1/session")).status_code == 401
    again = await client.get(f"/account/not-me?token={notice.token}")
    assert again.status_code == 410 and code_of(again.text) == "link.used"
