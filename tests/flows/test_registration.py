"""Registration and email verification through the JSON API."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from sekisho.events.models import AuthEvent
from sekisho.identity.models import Account, Identifier, IdentifierKind

PASSWORD = "kaede tsuki hoshi"


async def register(client, email="taro@example.jp", password=PASSWORD, **extra):
    return await client.post("/api/v1/registrations",
                             json={"email": email, "password": password, **extra})


async def count_accounts(core) -> int:
    async with core.db.transaction() as db:
        return int(await db.scalar(select(func.count()).select_from(Account)))


async def test_registration_sends_one_mail_with_code_and_link(client, mailbox, core):
    response = await register(client, display_name="山田 太郎")
    assert response.status_code == 202
    mail = await mailbox.last("taro@example.jp")
    assert mail.template == "verify_email"
    assert len(mail.code) == 6
    assert mail.link("/verify?token=").startswith("http://127.0.0.1:8000/verify?token=")
    assert mail.html and mail.code in mail.html
    async with core.db.transaction() as db:
        account = await db.scalar(select(Account))
        assert account.email_verified_at is None
        assert account.password_hash.startswith("$argon2id$")
        assert len(account.member_id) == 10 and account.member_id[0] != "0"


async def test_existing_address_gets_same_answer_and_owner_is_told(client, mailbox, factory, core):
    member = await factory.member(email="hanako@example.jp")
    fresh = await register(client, email="new@example.jp")
    taken = await register(client, email="HANAKO@example.jp")
    assert (taken.status_code, taken.content) == (fresh.status_code, fresh.content)
    owner_mail = await mailbox.last("hanako@example.jp")
    assert owner_mail.template == "registration_exists"
    assert await count_accounts(core) == 2
    # The owner's password is untouched.
    login = await client.post("/api/v1/login",
                              json={"identifier": member.email, "password": member.password})
    assert login.status_code == 200


async def test_verify_with_code_then_login(client, mailbox):
    await register(client)
    code = (await mailbox.last("taro@example.jp")).code
    full_width = code.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    response = await client.post("/api/v1/verifications/email",
                                 json={"email": "Taro@Example.JP", "code": full_width})
    assert response.status_code == 200
    assert response.json()["account"]["email_verified"] is True
    login = await client.post("/api/v1/login",
                              json={"identifier": "taro@example.jp", "password": PASSWORD})
    assert login.status_code == 200


async def test_verify_with_link_token_once(client, mailbox):
    await register(client)
    token = (await mailbox.last("taro@example.jp")).token
    first = await client.post("/api/v1/verifications/email", json={"token": token})
    assert first.status_code == 200
    again = await client.post("/api/v1/verifications/email", json={"token": token})
    assert again.status_code == 410
    assert again.json()["error"]["code"] == "link.used"


async def test_wrong_codes_are_counted_and_exhaust_the_code(client, mailbox):
    await register(client)
    good = (await mailbox.last("taro@example.jp")).code
    wrong = "000000" if good != "000000" else "111111"
    for left in (4, 3, 2, 1):
        r = await client.post("/api/v1/verifications/email",
                              json={"email": "taro@example.jp", "code": wrong})
        assert r.status_code == 400
        assert r.json()["error"]["code"] == "code.invalid"
        assert r.json()["error"]["attempts_left"] == left
    r = await client.post("/api/v1/verifications/email",
                          json={"email": "taro@example.jp", "code": wrong})
    assert r.json()["error"]["code"] == "code.too_many_attempts"
    r = await client.post("/api/v1/verifications/email",
                          json={"email": "taro@example.jp", "code": good})
    assert r.json()["error"]["code"] == "code.too_many_attempts"


async def test_resend_supersedes_and_keeps_spent_attempts(client, mailbox, clock):
    await register(client)
    old = await mailbox.last("taro@example.jp")
    wrong = "999999" if old.code != "999999" else "888888"
    await client.post("/api/v1/verifications/email", json={"email": "taro@example.jp",
                                                           "code": wrong})
    soon = await client.post("/api/v1/verifications/email/resend",
                             json={"email": "taro@example.jp"})
    assert soon.status_code == 429
    assert soon.json()["error"]["code"] == "code.resend_too_soon"
    assert soon.headers["Retry-After"] == str(soon.json()["error"]["retry_after"])
    clock.advance(61)
    assert (await client.post("/api/v1/verifications/email/resend",
                              json={"email": "taro@example.jp"})).status_code == 202
    new = await mailbox.last("taro@example.jp")
    superseded = await client.post("/api/v1/verifications/email", json={"token": old.token})
    assert superseded.json()["error"]["code"] == "link.superseded"
    assert superseded.json()["error"]["newest_sent_at"]
    wrong_again = await client.post("/api/v1/verifications/email",
                                    json={"email": "taro@example.jp", "code": wrong})
    assert wrong_again.json()["error"]["attempts_left"] == 3  # not reset to 4 by the resend
    ok = await client.post("/api/v1/verifications/email",
                           json={"email": "taro@example.jp", "code": new.code})
    assert ok.status_code == 200


async def test_code_expires(client, mailbox, clock, settings):
    await register(client)
    code = (await mailbox.last("taro@example.jp")).code
    clock.advance(settings.email_code_lifetime_seconds + 1)
    r = await client.post("/api/v1/verifications/email",
                          json={"email": "taro@example.jp", "code": code})
    assert r.status_code == 410 and r.json()["error"]["code"] == "code.expired"


async def test_password_rules_name_the_rule_and_change_nothing(client, mailbox, core):
    cases = {"short": "password.too_short", "password123": "password.too_common",
             "taro.yamada!!": "password.too_personal", "x" * 300: "password.too_long"}
    for password, code in cases.items():
        r = await register(client, email="taro.yamada@example.jp", password=password)
        assert r.status_code == 422, password
        assert r.json()["error"]["code"] == code
        assert r.json()["error"]["reference"]
    assert await count_accounts(core) == 0
    assert await mailbox.all() == []


async def test_sixty_four_character_passphrase_and_full_width_email(client, mailbox, core):
    passphrase = "とても長い合言葉は覚えやすい" * 4 + "x" * 8
    assert len(passphrase) >= 64
    r = await register(client, email="ｊｉｒｏ＠ｅｘａｍｐｌｅ．ｊｐ", password=passphrase)
    assert r.status_code == 202
    async with core.db.transaction() as db:
        identifier = await db.scalar(select(Identifier).where(
            Identifier.kind == IdentifierKind.EMAIL))
        assert identifier.value == "jiro@example.jp"
    assert (await mailbox.last("jiro@example.jp")).template == "verify_email"


async def test_concurrent_registrations_of_one_address_make_one_account(client, core, mailbox):
    results = await asyncio.gather(*[register(client, email="race@example.jp")
                                     for _ in range(8)])
    assert {r.status_code for r in results} == {202}
    assert await count_accounts(core) == 1
    templates = sorted(m.template for m in await mailbox.to("race@example.jp"))
    assert templates.count("verify_email") == 1
    assert templates.count("registration_exists") == 7


async def test_each_registration_is_an_event(client, core):
    await register(client)
    await register(client)
    async with core.db.transaction() as db:
        outcomes = sorted(await db.scalars(select(AuthEvent.outcome).where(
            AuthEvent.kind == "registration")))
    assert outcomes == ["duplicate", "ok"]
