"""Lockout lanes: an attacker is slowed down, the owner is never locked out."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from asgi_lifespan import LifespanManager
from conftest import make_client
from sqlalchemy import select
from support.pages import submit

from sekisho.app import create_app
from sekisho.errors.catalogue import CATALOGUE
from sekisho.events.models import AuthEvent, EventKind
from sekisho.identity.models import Account

WRONG = "not my password"
NEW = "fuji yama kawa sora"


async def login(client, identifier: str, password: str):
    return await client.post("/api/v1/login",
                             json={"identifier": identifier, "password": password})


def code_of(response) -> str | None:
    return response.json()["error"]["code"] if response.status_code >= 400 else None


def comparable(response) -> tuple[int, dict[str, Any]]:
    """Status and error body without the per-request reference."""
    body = dict(response.json()["error"])
    body.pop("reference", None)
    return response.status_code, body


FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"


async def attack(app, identifier: str, attempts: int, **headers: str) -> list:
    """Wrong passwords from rotating addresses (a botnet), never with a device cookie."""
    answers = []
    for i in range(attempts):
        async with make_client(app, ip=f"198.51.100.{i % 200 + 1}", **headers) as bot:
            answers.append(await login(bot, identifier, WRONG))
    return answers


async def templates(mailbox, address: str) -> list[str]:
    return [m.template for m in await mailbox.to(address)]


@pytest.fixture(params=["memory", "redis"])
def lanes(request: pytest.FixtureRequest) -> str:
    """Every test runs with lanes in process (embedded default) and in Redis."""
    return str(request.param)


@pytest.fixture
def rate_limits() -> dict[str, Any]:
    # The real per-IP limits apply (the attacker spreads over addresses like a botnet), but
    # the owner's hundred logins, which would take days, happen within seconds here.
    return {"login": {"per_ip": "1000/minute"}}


@pytest.fixture
def settings_overrides(request: pytest.FixtureRequest, lanes: str,
                       rate_limits: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {"rate_limits": rate_limits}
    if lanes == "redis":
        values["redis_url"] = request.getfixturevalue("redis_url")
    return values


async def test_owner_with_device_cookie_logs_in_through_a_thousand_attacks(
        app, factory, mailbox):
    member = await factory.member()
    async with make_client(app, ip="203.0.113.50") as owner:
        assert (await login(owner, member.email, member.password)).status_code == 200
        owner_statuses, attacker_codes = [], []
        for _ in range(100):
            attacker_codes += [code_of(r) for r in await attack(app, member.email, 10)]
            owner_statuses.append((await login(owner, member.email, member.password)).status_code)
    assert owner_statuses == [200] * 100
    assert attacker_codes[:5] == ["login.invalid_credentials"] * 5
    assert set(attacker_codes[5:]) == {"login.throttled"}
    # One notice for the owner's first login from this browser, none for the 100 after it,
    # and one lock mail however long the attack goes on.
    assert await templates(mailbox, member.email) == ["new_device_login", "login_locked"]


async def test_unknown_identifier_locks_exactly_like_a_known_one(app, factory, mailbox):
    member = await factory.member()
    known = await attack(app, member.email, 30)
    unknown = await attack(app, "nobody-here@example.jp", 30)
    assert [comparable(r) for r in known] == [comparable(r) for r in unknown]
    throttled = known[-1].json()["error"]
    assert throttled["code"] == "login.throttled"
    assert throttled["retry_after"] == 15 * 60 and known[-1].headers["Retry-After"] == "900"
    # The catalogue's remedy (it names the unlock mail), with the wait filled in.
    assert (throttled["message"], throttled["remedy"]) == \
        CATALOGUE["login.throttled"].text("ja", {"retry_minutes": 15})
    assert await templates(mailbox, "nobody-here@example.jp") == []


async def test_a_locked_lane_does_not_check_the_password(app, factory, core):
    member = await factory.member()
    await attack(app, member.email, 5)
    async with make_client(app) as someone:
        right = await login(someone, member.email, member.password)
    assert code_of(right) == "login.throttled"
    async with core.db.read() as db:
        account = await db.get(Account, member.account_id)
    assert account.failed_logins == 5  # the throttled attempt was never judged


async def test_lock_mail_tells_what_happened_and_unlocks_one_new_browser_once(
        app, factory, mailbox):
    member = await factory.member(locale="en")
    await attack(app, member.email, 5, **{"User-Agent": FIREFOX})
    mail = await mailbox.last(member.email)
    assert mail.template == "login_locked"
    assert "198.51.100.5" in mail.text and "Failed attempts: 5" in mail.text
    assert "When: 2026-01-05 12:00" in mail.text  # in Tokyo time
    assert "Ends by itself at: 2026-01-05 12:15" in mail.text
    assert "Browser: Firefox 133" in mail.text
    unlock = mail.link("/unlock?token=").split("token=")[1]
    async with make_client(app, ip="192.0.2.77") as new_browser:
        page = await new_browser.get(f"/unlock?token={unlock}")
        assert page.status_code == 200 and page.headers["Referrer-Policy"] == "no-referrer"
        used = await new_browser.post("/api/v1/unlock", json={"token": unlock})
        assert used.status_code == 200
        assert (await login(new_browser, member.email, member.password)).status_code == 200
        again = await new_browser.post("/api/v1/unlock", json={"token": unlock})
        assert code_of(again) == "link.used"
    still = await attack(app, member.email, 1)
    assert code_of(still[0]) == "login.throttled"


async def test_lock_mail_is_in_the_members_language(app, factory, mailbox):
    member = await factory.member(locale="ja")
    await attack(app, member.email, 5, **{"User-Agent": FIREFOX})
    mail = await mailbox.last(member.email)
    assert mail.template == "login_locked"
    assert "失敗した回数: 5 回" in mail.text and "ブラウザ: Firefox 133" in mail.text
    assert "自動で解除される日時: 2026-01-05 12:15" in mail.text
    assert mail.link("/unlock?token=") and mail.link("/recovery/reset?token=")


async def test_every_login_issues_a_fresh_device_cookie(app, factory):
    member = await factory.member()
    async with make_client(app) as browser:
        first = await login(browser, member.email, member.password)
        second = await login(browser, member.email, member.password)
    cookies = [r.cookies.get("sekisho_known") for r in (first, second)]
    assert all(cookies) and cookies[0] != cookies[1]


async def test_unlock_link_from_the_html_page_sets_the_device_cookie(
        app, factory, mailbox):
    member = await factory.member()
    await attack(app, member.email, 5)
    token = (await mailbox.last(member.email)).link("/unlock?token=").split("token=")[1]
    async with make_client(app, ip="192.0.2.78") as browser:
        done = await submit(browser, f"/unlock?token={token}", "/unlock", {"token": token})
        assert done.status_code == 303 and "notice=unlocked" in done.headers["location"]
        assert (await login(browser, member.email, member.password)).status_code == 200


async def test_locks_expire_and_escalate(app, factory, clock):
    member = await factory.member()
    first = await attack(app, member.email, 6)
    assert first[-1].json()["error"]["retry_after"] == 15 * 60
    clock.advance(minutes=15)
    second = await attack(app, member.email, 6)
    assert [code_of(r) for r in second] == ["login.invalid_credentials"] * 5 + ["login.throttled"]
    assert second[-1].json()["error"]["retry_after"] == 30 * 60
    clock.advance(minutes=29)
    assert code_of((await attack(app, member.email, 1))[0]) == "login.throttled"
    clock.advance(minutes=1)
    async with make_client(app) as owner:
        assert (await login(owner, member.email, member.password)).status_code == 200
    # A day without locks starts again at 15 minutes.
    clock.advance(hours=49)
    third = await attack(app, member.email, 6)
    assert third[-1].json()["error"]["retry_after"] == 15 * 60


async def test_escalation_is_capped_at_a_day(app, factory, clock):
    member = await factory.member()
    waits = []
    for _ in range(9):
        answers = await attack(app, member.email, 6)
        waits.append(answers[-1].json()["error"]["retry_after"])
        clock.advance(seconds=waits[-1])
    assert waits == [900, 1800, 3600, 7200, 14400, 28800, 57600, 86400, 86400]


async def test_completed_reset_clears_every_lane(app, factory, mailbox):
    member = await factory.member(card="4980111122223333")
    async with make_client(app, ip="203.0.113.60") as browser:
        assert (await login(browser, member.email, member.password)).status_code == 200
        await attack(app, member.email, 5)
        await attack(app, member.member_id, 5)
        for _ in range(5):
            await login(browser, member.email, WRONG)  # locks this browser's own lane too
        assert code_of(await login(browser, member.email, member.password)) == "login.throttled"
        reset = (await mailbox.last(member.email)).link("/recovery/reset?token=")
        done = await browser.post("/api/v1/recovery/complete",
                                  json={"token": reset.split("token=")[1], "password": NEW})
        assert done.status_code == 200
        assert (await login(browser, member.email, NEW)).status_code == 200
    async with make_client(app, ip="192.0.2.99") as stranger_browser:
        for identifier in (member.email, member.member_id, member.card):
            assert (await login(stranger_browser, identifier, NEW)).status_code == 200


async def test_device_lane_locks_only_that_browser(app, factory):
    member = await factory.member()
    async with make_client(app, ip="203.0.113.61") as forgetful:
        assert (await login(forgetful, member.email, member.password)).status_code == 200
        answers = [await login(forgetful, member.email, WRONG) for _ in range(6)]
        assert [code_of(r) for r in answers] == ["login.invalid_credentials"] * 5 + \
            ["login.throttled"]
    async with make_client(app, ip="203.0.113.62") as other:
        assert (await login(other, member.email, member.password)).status_code == 200


async def test_a_forged_or_foreign_device_cookie_counts_as_none(app, factory, core):
    member = await factory.member()
    other = await factory.member()
    foreign = core.devices.issue(other.account_id)
    forged = core.devices.issue(member.account_id)[:-2] + "AA"
    await attack(app, member.email, 5)
    for cookie in (foreign, forged, "garbage"):
        async with make_client(app, ip="203.0.113.63") as browser:
            browser.cookies.set(app.state.cookies.known_device, cookie)
            answer = await login(browser, member.email, member.password)
            assert code_of(answer) == "login.throttled"


async def test_concurrent_guesses_get_exactly_threshold_checks_and_one_mail(
        app, factory, mailbox):
    member = await factory.member()
    clients = [make_client(app, ip=f"198.51.100.{i + 1}") for i in range(20)]
    answers = await asyncio.gather(*(login(c, member.email, WRONG) for c in clients))
    for c in clients:
        await c.aclose()
    codes = [code_of(r) for r in answers]
    assert codes.count("login.invalid_credentials") == 5
    assert codes.count("login.throttled") == 15
    assert await templates(mailbox, member.email) == ["login_locked"]


async def failed_logins(core, account_id: int) -> tuple[int, bool]:
    async with core.db.read() as db:
        account = await db.get(Account, account_id)
    return account.failed_logins, account.password_login_disabled_at is not None


async def test_hundred_consecutive_failures_disable_password_login(
        app, factory, mailbox, clock, core):
    member = await factory.member()
    async with make_client(app, ip="203.0.113.60") as owner:
        assert (await login(owner, member.email, member.password)).status_code == 200
        # Failures count across lanes: five typos in the owner's own browser...
        for _ in range(5):
            await login(owner, member.email, WRONG)
        # ...and a botnet's guesses in the untrusted lane, each lock waited out.
        for _ in range(18):
            clock.advance(days=2)
            await attack(app, member.email, 5)
        clock.advance(days=2)
        await attack(app, member.email, 4)
        assert await failed_logins(core, member.account_id) == (99, False)
        clock.advance(days=2)
        await attack(app, member.email, 1)
        assert await failed_logins(core, member.account_id) == (100, True)
        mail = await mailbox.last(member.email)
        assert mail.template == "password_login_disabled"
        # The owner's browser is told why, even with the right password...
        answer = await login(owner, member.email, member.password)
        assert (answer.status_code, code_of(answer)) == (403, "login.password_disabled")
        # ...any other gets what an unknown identifier gets, right password or not.
        async with make_client(app, ip="198.51.100.61") as stranger:
            right = await login(stranger, member.email, member.password)
            unknown = await login(stranger, "nobody-here@example.jp", member.password)
        assert code_of(right) == "login.invalid_credentials"
        assert comparable(right) == comparable(unknown)
        async with core.db.read() as db:
            event = await db.scalar(select(AuthEvent).where(
                AuthEvent.reference == right.json()["error"]["reference"]))
        assert event.account_id == member.account_id
        assert event.detail["password_login_disabled"] is True  # support sees why
        reset = await owner.post("/api/v1/recovery/complete",
                                 json={"token": mail.token, "password": NEW})
        assert reset.status_code == 200
        assert (await login(owner, member.email, NEW)).status_code == 200
    assert (await templates(mailbox, member.email)).count("password_login_disabled") == 1
    assert await failed_logins(core, member.account_id) == (0, False)


async def test_a_success_restarts_the_consecutive_count(app, factory, clock, core):
    member = await factory.member()
    await attack(app, member.email, 4)
    async with make_client(app) as owner:
        assert (await login(owner, member.email, member.password)).status_code == 200
    async with core.db.read() as db:
        assert (await db.get(Account, member.account_id)).failed_logins == 0


@pytest.mark.parametrize("rate_limits", [{"login_failed": {"per_ip": "10/hour"}}])
async def test_password_spraying_from_one_address_is_limited_but_known_browsers_pass(
        app, factory):
    owner = await factory.member()
    async with make_client(app, ip="203.0.113.70") as owner_browser:
        assert (await login(owner_browser, owner.email, owner.password)).status_code == 200
        async with make_client(app, ip="203.0.113.70") as sprayer:
            answers = [await login(sprayer, f"victim{i}@example.jp", WRONG) for i in range(12)]
        assert [code_of(r) for r in answers[:10]] == ["login.invalid_credentials"] * 10
        assert {code_of(r) for r in answers[10:]} == {"request.rate_limited"}
        assert answers[-1].headers["Retry-After"]
        assert (await login(owner_browser, owner.email, owner.password)).status_code == 200
        async with make_client(app, ip="203.0.113.70") as newcomer:
            assert code_of(await login(newcomer, owner.email, owner.password)) == \
                "request.rate_limited"


async def test_every_refusal_is_recorded_with_its_reference(app, factory, core):
    member = await factory.member()
    answers = await attack(app, member.email, 6)
    reference = answers[-1].json()["error"]["reference"]
    async with core.db.read() as db:
        event = await db.scalar(select(AuthEvent).where(AuthEvent.reference == reference))
        locking = (await db.scalars(select(AuthEvent).where(
            AuthEvent.kind == EventKind.LOGIN).order_by(AuthEvent.id))).all()[4]
    assert event.outcome == "login.throttled" and event.account_id == member.account_id
    assert locking.detail["lock_level"] == 1 and locking.detail["lane"] == "untrusted"



@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_two_instances_share_lanes_through_redis(settings, clock, redis_url, mailbox,
                                                       factory):
    shared = settings.model_copy(update={"redis_url": redis_url})
    one, two = create_app(shared, clock=clock), create_app(shared, clock=clock)
    member = await factory.member()
    async with LifespanManager(one), LifespanManager(two):
        async with make_client(two, ip="203.0.113.80") as owner:
            assert (await login(owner, member.email, member.password)).status_code == 200
            first = await attack(one, member.email, 3)
            second = await attack(two, member.email, 3)
            # Both instances race for the same lane: still only five are judged.
            clients = [make_client(app, ip=f"198.51.100.{i + 1}")
                       for i, app in enumerate([one, two] * 5)]
            raced = await asyncio.gather(*(login(c, member.email, WRONG) for c in clients))
            for c in clients:
                await c.aclose()
            assert (await login(owner, member.email, member.password)).status_code == 200
    codes = [code_of(r) for r in first + second + list(raced)]
    assert codes.count("login.invalid_credentials") == 5
    assert codes.count("login.throttled") == 11
    # The owner's first login was from a new browser; the lock is mailed once, not per app.
    assert await templates(mailbox, member.email) == ["new_device_login", "login_locked"]
    await one.state.core.db.dispose()
    await two.state.core.db.dispose()


async def test_two_browsers_racing_for_one_unlock_link_have_one_winner(app, factory, mailbox):
    member = await factory.member()
    await attack(app, member.email, 5)
    token = (await mailbox.last(member.email)).link("/unlock?token=").split("token=")[1]
    browsers = [make_client(app, ip=f"192.0.2.{i + 10}") for i in range(10)]
    answers = await asyncio.gather(*(b.post("/api/v1/unlock", json={"token": token})
                                     for b in browsers))
    statuses = [a.status_code for a in answers]
    assert statuses.count(200) == 1
    assert {code_of(a) for a in answers if a.status_code != 200} == {"link.used"}
    winner = browsers[statuses.index(200)]
    assert (await login(winner, member.email, member.password)).status_code == 200
    for b in browsers:
        await b.aclose()


async def test_opening_a_reset_link_lets_that_browser_in_during_a_lock(app, factory, mailbox):
    member = await factory.member()
    await attack(app, member.email, 5)
    reset = (await mailbox.last(member.email)).link("/recovery/reset?token=")
    async with make_client(app, ip="192.0.2.90") as owner:
        page = await owner.get(reset.removeprefix("http://127.0.0.1:8000"))
        assert page.status_code == 200 and page.headers["Referrer-Policy"] == "no-referrer"
        # Remembering the password is enough now: no need to finish the reset.
        assert (await login(owner, member.email, member.password)).status_code == 200
    assert code_of((await attack(app, member.email, 1))[0]) == "login.throttled"


async def test_a_spent_reset_link_says_so_when_opened_and_trusts_nobody(app, factory, mailbox,
                                                                         clock):
    member = await factory.member()
    await attack(app, member.email, 5)
    first = (await mailbox.last(member.email)).link("/recovery/reset?token=")
    clock.advance(minutes=2)  # past the resend cool-down: a newer mail supersedes the first
    async with make_client(app) as anyone:
        assert (await anyone.post("/api/v1/recovery",
                                  json={"identifier": member.email})).status_code == 202
    async with make_client(app, ip="192.0.2.91") as browser:
        page = await browser.get(first.removeprefix("http://127.0.0.1:8000"),
                                 headers={"Accept": "text/html"})
        assert page.status_code == 410 and 'data-code="link.superseded"' in page.text
        assert page.headers["Referrer-Policy"] == "no-referrer"
        assert app.state.cookies.known_device not in browser.cookies
        assert code_of(await login(browser, member.email, member.password)) == "login.throttled"
