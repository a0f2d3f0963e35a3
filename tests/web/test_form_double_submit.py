"""Each form that answers with a page (recovery codes, a login's second step, "this wasn't
me") or ends a session, sent twice with one form token: a double click (both copies at once)
or back-then-resubmit (one after the other). The action runs once, every copy gets the first
answer, and nobody sees an error page."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pyotp
import pytest
import redis.asyncio
from asgi_lifespan import LifespanManager
from conftest import BASE_URL, make_client
from fastapi import FastAPI
from sqlalchemy import func, select
from support.factories import Factory
from support.mailbox import Mailbox
from support.pages import form_of, forms_of

from sekisho.app import create_app
from sekisho.flows.login.models import PendingLogin
from sekisho.methods import recovery_codes
from sekisho.methods.models import Authenticator, RecoveryCode
from sekisho.notify.models import Channel, OutboxMessage
from sekisho.sessions.models import Session
from sekisho.settings import Settings

PHONE, PHONE_TYPED = "+819012345678", "090-1234-5678"
CODES = re.compile(r"<li><code>([0-9A-Z-]+)</code></li>")
Post = Callable[[str, dict[str, str]], Awaitable[list[httpx.Response]]]


@pytest.fixture(params=["double_click", "back_then_resubmit"])
def twice(request: pytest.FixtureRequest, client: httpx.AsyncClient) -> Post:
    """Post one filled-in form twice from the browser: at once, or one after the other."""

    async def post(action: str, form: dict[str, str]) -> list[httpx.Response]:
        if request.param == "double_click":
            return list(await asyncio.gather(client.post(action, data=form),
                                             client.post(action, data=form)))
        return [await client.post(action, data=form), await client.post(action, data=form)]

    return post


@contextlib.asynccontextmanager
async def running(settings: Settings, clock: Any) -> AsyncIterator[FastAPI]:
    """One process of a deployment, started and stopped."""
    application = create_app(settings, clock=clock)
    async with LifespanManager(application):
        yield application


def replayed(response: httpx.Response) -> bool:
    return response.headers.get("idempotent-replayed") == "true"


def same_page(answers: list[httpx.Response]) -> str:
    """Both copies got the first one's page (200, no error on it); returns it."""
    first, second = answers
    for answer in answers:
        assert answer.status_code == 200, answer.text
        assert "data-code=" not in answer.text, answer.text  # the error box of every page
    assert first.text == second.text
    assert replayed(first) != replayed(second)
    return first.text


def codes_on(page: str) -> list[str]:
    return CODES.findall(page)


async def count(core, model, *where) -> int:
    async with core.db.read() as db:
        return int(await db.scalar(select(func.count()).select_from(model).where(*where)))


async def stored_codes_are(core, account_id: int, shown: list[str]) -> bool:
    """The account's recovery codes in the database are exactly those shown."""
    async with core.db.read() as db:
        stored = set(await db.scalars(select(RecoveryCode.code_hash).where(
            RecoveryCode.account_id == account_id)))
    return len(shown) == 10 and stored == {
        core.recovery_codes.hash(recovery_codes.normalise(code) or "") for code in shown}


def totp_now(secret: str, clock) -> str:
    return pyotp.TOTP(secret).at(clock.now())


async def api_login(http: httpx.AsyncClient, member) -> dict[str, str]:
    response = await http.post("/api/v1/login", json={"identifier": member.email,
                                                      "password": member.password})
    assert "session_token" in response.json(), response.text
    return {"Authorization": f"Bearer {response.json()['session_token']}"}


async def member_with_app(app, factory, clock, mailbox, phone: bool = False):
    """A member with an authenticator app (and a verified phone), set up in another browser; the
    clock is moved one time step on, so the app's current code is unused."""
    member = await factory.member()
    async with make_client(app, ip="198.51.100.9") as elsewhere:
        auth = await api_login(elsewhere, member)
        if phone:
            await elsewhere.post("/api/v1/account/phone", headers=auth,
                                 json={"phone": PHONE_TYPED})
            code = (await mailbox.last_text(PHONE)).code
            confirmed = await elsewhere.post("/api/v1/account/phone/confirm", headers=auth,
                                             json={"code": code})
            assert confirmed.status_code == 200, confirmed.text
        started = (await elsewhere.post("/api/v1/account/second-factors/totp", headers=auth,
                                        json={"name": "iPhone"})).json()
        done = await elsewhere.post(started["confirm"], headers=auth,
                                    json={"code": totp_now(started["secret"], clock)})
        assert done.status_code == 200, done.text
    clock.advance(seconds=30)
    return member


async def link_in(mailbox, address: str, template: str) -> str:
    """The path of the one-time link in the newest ``template`` mail to ``address``."""
    mail = [m for m in await mailbox.to(address) if m.template == template][-1]
    return mail.link("token=").removeprefix(BASE_URL)


async def login_form(client: httpx.AsyncClient, member) -> dict[str, str]:
    return {**form_of((await client.get("/login")).text, "/login"),
            "identifier": member.email, "password": member.password}


async def signed_in_page(client: httpx.AsyncClient, member) -> None:
    assert (await client.post("/login", data=await login_form(client, member))).status_code == 303


async def app_set_up_page(client: httpx.AsyncClient) -> tuple[str, dict[str, str], str]:
    """The account page's "add an authenticator app": its confirm action, form and key."""
    account = await client.get("/account")
    setup = await client.post("/account/totp",
                              data={**form_of(account.text, "/account/totp"), "name": "iPad"})
    assert setup.status_code == 200, setup.text
    secret = re.search(r"data-secret>([A-Z2-7 ]+)<", setup.text).group(1).replace(" ", "")
    action = next(a for a in forms_of(setup.text) if a.endswith("/confirm"))
    return action, form_of(setup.text, action), secret


# --- the login ------------------------------------------------------------------------------


async def test_login_needing_a_second_factor_opens_one_flow(app, client, factory, clock,
                                                             mailbox, core, twice):
    member = await member_with_app(app, factory, clock, mailbox)
    page = same_page(await twice("/login", await login_form(client, member)))
    assert 'data-form="second-factor"' in page
    assert await count(core, PendingLogin, PendingLogin.account_id == member.account_id) == 1


@pytest.mark.parametrize("settings_overrides", [{"sms_second_factor": True}])
async def test_text_me_a_code_sends_one_sms(app, client, factory, clock, mailbox, core, twice):
    member = await member_with_app(app, factory, clock, mailbox, phone=True)
    stage = await client.post("/login", data=await login_form(client, member))
    texts = len(await mailbox.texts(PHONE))
    queued = await count(core, OutboxMessage, OutboxMessage.channel == Channel.SMS)
    page = same_page(await twice("/login/mfa/sms", form_of(stage.text, "/login/mfa/sms")))
    assert 'data-notice="login_code_sent"' in page
    assert await count(core, OutboxMessage, OutboxMessage.channel == Channel.SMS) == queued + 1
    assert len(await mailbox.texts(PHONE)) == texts + 1


@pytest.mark.parametrize("settings_overrides", [{"second_factor_required": True}])
async def test_enrolment_at_login_shows_the_same_recovery_codes(client, factory, clock, core,
                                                                twice):
    member = await factory.member()
    setup = await client.post("/login", data=await login_form(client, member))
    secret = re.search(r"data-secret>([A-Z2-7 ]+)<", setup.text).group(1).replace(" ", "")
    form = {**form_of(setup.text, "/login/enrol"), "code": totp_now(secret, clock)}
    page = same_page(await twice("/login/enrol", form))
    assert await stored_codes_are(core, member.account_id, codes_on(page))
    assert await count(core, Authenticator, Authenticator.account_id == member.account_id,
                       Authenticator.confirmed_at.is_not(None)) == 1
    assert await count(core, Authenticator, Authenticator.account_id == member.account_id) == 1
    assert (await client.get("/account")).status_code == 200  # signed in, with one session
    assert await count(core, Session, Session.account_id == member.account_id) == 1


# --- the account page -----------------------------------------------------------------------


async def test_confirming_an_app_shows_the_same_recovery_codes(client, factory, clock, core,
                                                               twice):
    member = await factory.member()
    await signed_in_page(client, member)
    action, form, secret = await app_set_up_page(client)
    page = same_page(await twice(action, {**form, "code": totp_now(secret, clock)}))
    assert 'data-notice="totp_added"' in page
    assert await stored_codes_are(core, member.account_id, codes_on(page))
    assert await count(core, Authenticator, Authenticator.account_id == member.account_id,
                       Authenticator.confirmed_at.is_not(None)) == 1


async def test_new_recovery_codes_are_made_once(client, factory, clock, core, mailbox, twice):
    member = await factory.member()
    await signed_in_page(client, member)
    action, form, secret = await app_set_up_page(client)
    first_set = codes_on((await client.post(action, data={
        **form, "code": totp_now(secret, clock)})).text)
    account = await client.get("/account")
    page = same_page(await twice("/account/recovery-codes",
                                 form_of(account.text, "/account/recovery-codes")))
    assert set(codes_on(page)).isdisjoint(first_set)
    assert await stored_codes_are(core, member.account_id, codes_on(page))
    sent = [m.template for m in await mailbox.to(member.email)]
    assert sent.count("recovery_codes_regenerated") == 1


async def test_ending_another_session_twice_ends_it_once(app, client, factory, core, twice):
    member = await factory.member()
    await signed_in_page(client, member)
    async with make_client(app, ip="198.51.100.20") as other:
        theirs = await api_login(other, member)
        page = await client.get("/account/activity")
        [action] = [a for a in forms_of(page.text) if a.endswith("/end")]
        answers = await twice(action, form_of(page.text, action))
        assert (await other.get("/api/v1/session", headers=theirs)).status_code == 401
    assert [a.status_code for a in answers] == [303, 303]
    assert {a.headers["location"] for a in answers} == {"/account/activity?notice=session_ended"}
    assert replayed(answers[0]) != replayed(answers[1])
    assert await count(core, Session, Session.account_id == member.account_id,
                       Session.ended_at.is_(None)) == 1


# --- "this wasn't me" links -----------------------------------------------------------------


async def test_undoing_a_change_twice_shows_it_undone(app, client, factory, mailbox, core,
                                                      twice):
    member = await factory.member(email="owner@example.jp")
    async with make_client(app, ip="198.51.100.9") as intruder:
        auth = await api_login(intruder, member)
        await intruder.post("/api/v1/account/email", headers=auth,
                            json={"email": "intruder@example.jp"})
        changed = await intruder.post("/api/v1/account/email/confirm", headers=auth, json={
            "code": (await mailbox.last("intruder@example.jp")).code})
        assert changed.status_code == 200, changed.text
    opened = await client.get(await link_in(mailbox, "owner@example.jp", "email_changed"))
    page = same_page(await twice("/account/revert", form_of(opened.text, "/account/revert")))
    assert 'data-notice="reverted"' in page
    assert (await factory.account(member.account_id)).email == "owner@example.jp"
    assert await count(core, Session, Session.account_id == member.account_id,
                       Session.ended_at.is_(None)) == 0
    resets = [m for m in await mailbox.to("owner@example.jp") if m.template == "password_reset"]
    assert len(resets) == 1


async def test_not_me_twice_shows_the_account_secured(app, client, factory, mailbox, core,
                                                      twice):
    member = await factory.member()
    async with make_client(app, ip="198.51.100.9") as intruder:
        await api_login(intruder, member)
    opened = await client.get(await link_in(mailbox, member.email, "new_device_login"))
    page = same_page(await twice("/account/not-me", form_of(opened.text, "/account/not-me")))
    assert 'data-notice="secured"' in page
    assert (await factory.account(member.account_id)).password_login_disabled_at is not None
    assert await count(core, Session, Session.account_id == member.account_id,
                       Session.ended_at.is_(None)) == 0
    resets = [m for m in await mailbox.to(member.email) if m.template == "password_reset"]
    assert len(resets) == 1


# --- how long a page is kept ----------------------------------------------------------------


async def test_a_page_is_kept_minutes_and_a_redirect_a_day(app, client, factory, clock,
                                                           mailbox, core, settings):
    member = await member_with_app(app, factory, clock, mailbox)
    login = await login_form(client, member)
    register = {**form_of((await client.get("/register")).text, "/register"),
                "email": "new@example.jp", "password": "kaede tsuki hoshi sora"}
    for action, form in (("/login", login), ("/register", register)):
        assert not replayed(await client.post(action, data=form))
    clock.advance(settings.form_page_ttl_seconds - 1)
    assert replayed(await client.post("/login", data=login))
    clock.advance(2)
    # The second-factor page is gone (it could have held codes shown once): the form runs
    # again and opens a new flow; the registration's redirect is still answered.
    assert not replayed(await client.post("/login", data=login))
    assert await count(core, PendingLogin, PendingLogin.account_id == member.account_id) == 2
    assert replayed(await client.post("/register", data=register))


# --- Redis: the processes of a deployment answer each other's copies ------------------------


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_two_processes_replay_a_page_kept_sealed_in_redis(settings, redis_url, clock):
    shared = settings.model_copy(update={"redis_url": redis_url})
    async with running(shared, clock) as one, running(shared, clock) as two:
        mailbox = Mailbox(one.state.worker, shared.outbox_dir)
        member = await member_with_app(one, Factory(one.state.core), clock, mailbox)
        async with make_client(one) as browser, make_client(two) as same_browser:
            form = await login_form(browser, member)
            same_browser.cookies = browser.cookies
            answers = await asyncio.gather(browser.post("/login", data=form),
                                           same_browser.post("/login", data=form))
        page = same_page(answers)
        flows = await count(one.state.core, PendingLogin,
                            PendingLogin.account_id == member.account_id)
    assert flows == 1
    store = redis.asyncio.Redis.from_url(redis_url)
    kept = [await store.get(key) async for key in store.scan_iter("sekisho:idem:*")]
    await store.aclose()
    flow = form_of(page, "/login/mfa")["flow"].encode()
    assert kept and not any(flow in value for value in kept)
