"""Forms carry a one-time token: a double click or back-then-resubmit runs the action once and
answers every copy with the same redirect, never an error page."""

from __future__ import annotations

import asyncio
import re

import httpx
from conftest import make_client
from support.pages import csrf_of

PASSWORD = "kaede tsuki hoshi sora"
FORM_TOKEN = re.compile(r'name="form_token" value="([^"]+)"')




async def open_form(client: httpx.AsyncClient, page: str) -> dict[str, str]:
    """The hidden inputs of ``page``'s form, as the browser will send them."""
    shown = await client.get(page)
    assert shown.status_code == 200
    found = FORM_TOKEN.search(shown.text)
    assert found, "the form has no form_token input"
    return {"csrf_token": csrf_of(shown.text), "form_token": found.group(1)}


def registration(email: str) -> dict[str, str]:
    return {"email": email, "password": PASSWORD, "display_name": "Hanako"}


def replayed(response: httpx.Response) -> bool:
    return response.headers.get("idempotent-replayed") == "true"


async def test_double_click_registers_once(client, mailbox):
    form = {**await open_form(client, "/register"), **registration("double@example.jp")}
    first, second = await asyncio.gather(client.post("/register", data=form),
                                         client.post("/register", data=form))
    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"]
    assert first.headers["location"].startswith("/verify?")
    assert replayed(first) != replayed(second)
    # Without the token the second copy would mail "someone tried to register" as well.
    assert len(await mailbox.to("double@example.jp")) == 1


async def test_back_then_resubmit_gets_the_same_redirect(client, mailbox):
    form = {**await open_form(client, "/register"), **registration("back@example.jp")}
    first = await client.post("/register", data=form)
    again = await client.post("/register", data=form)
    assert (again.status_code, again.headers["location"]) == (303, first.headers["location"])
    assert replayed(again)
    assert len(await mailbox.to("back@example.jp")) == 1


async def test_a_form_edited_after_going_back_is_a_new_submission(client, mailbox):
    hidden = await open_form(client, "/register")
    first = await client.post("/register", data={**hidden, **registration("one@example.jp")})
    edited = await client.post("/register", data={**hidden, **registration("two@example.jp")})
    assert first.status_code == edited.status_code == 303 and not replayed(edited)
    assert "two%40example.jp" in edited.headers["location"]
    assert len(await mailbox.to("two@example.jp")) == 1


async def test_a_fresh_form_or_no_token_runs_normally(client, mailbox):
    for hidden in (await open_form(client, "/register"), await open_form(client, "/register")):
        answer = await client.post("/register", data={**hidden, **registration("re@example.jp")})
        assert answer.status_code == 303 and not replayed(answer)
    plain = {"csrf_token": (await open_form(client, "/register"))["csrf_token"],
             **registration("re@example.jp")}
    answer = await client.post("/register", data=plain)
    assert answer.status_code == 303 and not replayed(answer)
    assert len(await mailbox.to("re@example.jp")) == 3  # confirmation, then two "you tried"


async def test_an_error_is_not_kept_so_the_corrected_form_runs(client, mailbox):
    hidden = await open_form(client, "/register")
    short = {**hidden, "email": "fix@example.jp", "password": "short"}
    refused = [await client.post("/register", data=short) for _ in range(2)]
    assert [r.status_code for r in refused] == [422, 422]
    assert not any(replayed(r) for r in refused)
    fixed = await client.post("/register", data={**hidden, **registration("fix@example.jp")})
    assert fixed.status_code == 303 and len(await mailbox.to("fix@example.jp")) == 1


async def test_double_click_on_login_lands_in_one_session(client, app, factory):
    member = await factory.member()
    form = {**await open_form(client, "/login"), "identifier": member.email,
            "password": member.password}
    first, second = await asyncio.gather(client.post("/login", data=form),
                                         client.post("/login", data=form))
    cookie = app.state.cookies.session
    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"] == "/account"
    # Whichever answer the browser keeps, it is signed in with the one session made.
    assert first.cookies[cookie] == second.cookies[cookie]
    assert (await client.get("/account")).status_code == 200


async def test_another_browser_with_the_same_token_is_not_answered(app, client, mailbox):
    form = {**await open_form(client, "/recovery"), "identifier": "nobody@example.jp"}
    async with make_client(app) as other_browser:
        theirs = {**form, "csrf_token": (await open_form(other_browser, "/recovery"))["csrf_token"]}
        mine = await client.post("/recovery", data=form)
        other = await other_browser.post("/recovery", data=theirs)
    assert mine.status_code == other.status_code == 303
    assert not replayed(mine) and not replayed(other)
