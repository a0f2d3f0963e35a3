"""Server-rendered pages, driven the way a browser without JavaScript drives them.

Every POST here is a real form submission: the CSRF token comes from the hidden input of the
page the member was looking at, and the CSRF cookie from that page's response.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select
from support.factories import DEFAULT_PASSWORD
from support.pages import csrf_of, submit

from sekisho.events.models import AuthEvent
from sekisho.identity.models import Account

REFERENCE = re.compile(r"お問い合わせ番号\s*:\s*<strong>(R-[2-9A-HJ-NP-Z]{4}-[2-9A-HJ-NP-Z]{4})</strong>")
MEMBER_ID = re.compile(r"<dd data-member-id>(\d{10})</dd>")
NEW_PASSWORD = "yama kawa sora mori"
SESSION = "sekisho_session"

# Page -> the heading a member sees, in Japanese and in English (/account last: signed in).
PAGES = {
    "/login": ("ログイン", "Log in"),
    "/register": ("新規会員登録", "Create an account"),
    "/recovery": ("パスワードの再設定", "Reset your password"),
    "/status": ("サービスの状況", "Service status"),
    "/account": ("アカウント", "Your account"),
}


def location(response: httpx.Response) -> tuple[str, dict[str, list[str]]]:
    assert response.status_code == 303, (response.status_code, response.text)
    parts = urlsplit(response.headers["location"])
    return parts.path, parse_qs(parts.query)


def set_cookie(response: httpx.Response, name: str) -> str | None:
    """The Set-Cookie value for ``name`` in this response, if there is one."""
    for value in response.headers.get_list("set-cookie"):
        if value.split("=", 1)[0] == name:
            return value
    return None


def attributes(cookie: str) -> set[str]:
    return {part.strip().lower() for part in cookie.split(";")[1:]}


def is_cleared(cookie: str) -> bool:
    attrs = attributes(cookie)
    value = cookie.split(";", 1)[0].split("=", 1)[1].strip('"')
    return value == "" and ("max-age=0" in attrs or any(a.startswith("expires=thu, 01 jan 1970")
                                                        for a in attrs))


async def account_by_email(core: Any, email: str) -> Account | None:
    async with core.db.transaction() as db:
        return await db.scalar(select(Account).where(Account.email == email))


async def signed_in(client: httpx.AsyncClient, factory: Any) -> Any:
    member = await factory.member()
    r = await submit(client, "/login", "/login",
                     {"identifier": member.email, "password": member.password})
    assert location(r)[0] == "/account"
    return member


def full_width(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


# --- rendering and language ---------------------------------------------------------------


async def test_pages_are_japanese_by_default(client, factory):
    for path, (ja, _en) in PAGES.items():
        if path == "/account":  # the others redirect a signed-in member (/login) or not
            await signed_in(client, factory)
        r = await client.get(path)
        assert r.status_code == 200, (path, r.status_code)
        assert '<html lang="ja">' in r.text, path
        assert f"<h1>{ja}</h1>" in r.text, path


@pytest.mark.parametrize("how", ["query", "accept-language"])
async def test_pages_speak_english_when_asked(client, factory, how):
    for path, (ja, en) in PAGES.items():
        if path == "/account":
            await signed_in(client, factory)
        if how == "query":
            r = await client.get(path, params={"lang": "en"})
        else:
            r = await client.get(path, headers={"Accept-Language": "en-US,en;q=0.9"})
        assert r.status_code == 200, (path, r.status_code)
        assert '<html lang="en">' in r.text, path
        assert f"<h1>{en}</h1>" in r.text and f"<h1>{ja}</h1>" not in r.text, path


async def test_query_language_beats_the_browser_language(client):
    r = await client.get("/login", params={"lang": "ja"}, headers={"Accept-Language": "en"})
    assert '<html lang="ja">' in r.text and "<h1>ログイン</h1>" in r.text


async def test_account_page_sends_signed_out_visitors_to_login(client):
    r = await client.get("/account")
    path, query = location(r)
    assert path == "/login"
    assert query.get("next") == ["/account"]


# --- CSRF -----------------------------------------------------------------------------------


@pytest.mark.parametrize("token", ["missing", "wrong", "no_cookie"])
async def test_form_post_without_the_right_csrf_token_is_refused(client, core, mailbox, token):
    fields = {"email": "csrf@example.jp", "password": "kaede tsuki hoshi"}
    if token == "no_cookie":
        # A token from some other browser, posted by one that never opened the page.
        other = (await client.get("/register")).text
        client.cookies.clear()
        fields["csrf_token"] = csrf_of(other)
    else:
        await client.get("/register")
        if token == "wrong":
            fields["csrf_token"] = "x" * 43
    r = await client.post("/register", data=fields)
    assert r.status_code == 403
    assert 'data-code="request.csrf_failed"' in r.text
    assert REFERENCE.search(r.text)
    assert await account_by_email(core, "csrf@example.jp") is None
    assert await mailbox.to("csrf@example.jp") == []


async def test_login_form_without_csrf_token_does_not_sign_in(client, factory):
    member = await factory.member()
    await client.get("/login")
    r = await client.post("/login", data={"identifier": member.email,
                                          "password": member.password})
    assert r.status_code == 403
    assert set_cookie(r, SESSION) is None
    assert location(await client.get("/account"))[0] == "/login"


# --- the whole journey ----------------------------------------------------------------------


async def test_register_verify_login_logout_by_forms(client, core, mailbox):
    email = "hanako@example.jp"
    r = await submit(client, "/register", "/register",
                     {"email": email, "password": "kaede tsuki hoshi", "display_name": "花子"})
    path, query = location(r)
    assert path == "/verify" and query["email"] == [email]

    r = await client.get(r.headers["location"])
    assert r.status_code == 200
    code = (await mailbox.last(email)).code
    r = await client.post("/verify", data={"csrf_token": csrf_of(r.text), "email": email,
                                           "code": code})
    assert location(r) == ("/login", {"notice": ["verified"]})
    account = await account_by_email(core, email)
    assert account is not None and account.email_verified_at is not None

    r = await client.get(r.headers["location"])
    assert 'data-notice="verified"' in r.text
    r = await client.post("/login", data={"csrf_token": csrf_of(r.text),
                                          "identifier": full_width(account.member_id),
                                          "password": "kaede tsuki hoshi"})
    assert location(r)[0] == "/account"
    token = client.cookies.get(SESSION)
    assert token

    r = await client.get("/account")
    assert r.status_code == 200
    assert MEMBER_ID.search(r.text).group(1) == account.member_id  # type: ignore[union-attr]
    assert "花子" in r.text

    r = await client.post("/logout", data={"csrf_token": csrf_of(r.text)})
    assert location(r) == ("/login", {"notice": ["logged_out"]})
    assert is_cleared(set_cookie(r, SESSION) or "")
    assert location(await client.get("/account"))[0] == "/login"
    # The server ended the session too, not just the browser's cookie.
    r = await client.get("/api/v1/session", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401


async def test_verify_link_asks_before_verifying(client, core, mailbox):
    email = "link@example.jp"
    r = await client.post("/api/v1/registrations",
                          json={"email": email, "password": "kaede tsuki hoshi"})
    assert r.status_code == 202
    link = (await mailbox.last(email)).link("/verify?token=")
    page = urlsplit(link)

    for _ in range(2):  # a mail scanner, then the member
        r = await client.get(f"{page.path}?{page.query}")
        assert r.status_code == 200
        assert 'name="token"' in r.text and "<button" in r.text
        account = await account_by_email(core, email)
        assert account is not None and account.email_verified_at is None

    token = parse_qs(page.query)["token"][0]
    r = await client.post("/verify", data={"csrf_token": csrf_of(r.text), "token": token})
    assert location(r) == ("/login", {"notice": ["verified"]})
    account = await account_by_email(core, email)
    assert account is not None and account.email_verified_at is not None


# --- errors on pages ------------------------------------------------------------------------


async def test_wrong_password_is_shown_inline_with_a_reference(client, core, factory):
    member = await factory.member()
    r = await submit(client, "/login", "/login",
                     {"identifier": member.email, "password": "not the password"})
    assert r.status_code == 401
    assert 'data-code="login.invalid_credentials"' in r.text
    assert "<h1>ログイン</h1>" in r.text  # the form again, not an error page
    assert f'value="{member.email}"' in r.text  # what was typed is kept...
    assert "not the password" not in r.text  # ...except the password
    found = REFERENCE.search(r.text)
    assert found, r.text
    async with core.db.transaction() as db:
        events = list(await db.scalars(
            select(AuthEvent).where(AuthEvent.reference == found.group(1))))
    assert [e.outcome for e in events] == ["login.invalid_credentials"]
    assert events[0].account_id == member.account_id


@pytest.mark.parametrize("cookie", ["unknown", "expired"])
async def test_dead_session_cookie_is_cleared_without_a_redirect_loop(client, factory, clock,
                                                                      cookie):
    if cookie == "unknown":
        client.cookies.set(SESSION, "not-a-session-token-" + "x" * 30, domain="127.0.0.1")
    else:
        await signed_in(client, factory)
        assert (await client.get("/account")).status_code == 200
        clock.advance(seconds=31 * 60)  # past the 30-minute idle timeout
    dead = client.cookies.get(SESSION)

    r = await client.get("/account")
    assert location(r)[0] == "/login"
    assert is_cleared(set_cookie(r, SESSION) or ""), r.headers.get_list("set-cookie")
    assert client.cookies.get(SESSION) is None
    r = await client.get("/login")
    assert r.status_code == 200 and "<h1>ログイン</h1>" in r.text
    # Even a browser that kept the dead cookie gets the login page, not a loop.
    client.cookies.clear()
    r = await client.get("/login", headers={"Cookie": f"{SESSION}={dead}"})
    assert r.status_code == 200 and "<h1>ログイン</h1>" in r.text


# --- cookies and headers --------------------------------------------------------------------


async def test_session_cookie_attributes(client, factory):
    member = await factory.member()
    r = await submit(client, "/login", "/login",
                     {"identifier": member.email, "password": member.password})
    cookie = set_cookie(r, SESSION)
    assert cookie is not None
    attrs = attributes(cookie)
    assert {"httponly", "samesite=lax", "path=/"} <= attrs
    assert "secure" not in attrs  # plain http: a Secure cookie would never come back
    assert not any(a.startswith("domain=") for a in attrs)


@pytest.mark.parametrize("settings_overrides", [{"base_url": "https://id.example.jp"}])
async def test_session_cookie_on_https_is_host_prefixed_and_secure(app, factory):
    member = await factory.member()
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="https://id.example.jp") as http:
        r = await submit(http, "/login", "/login",
                         {"identifier": member.email, "password": member.password})
        assert location(r)[0] == "/account"
        assert set_cookie(r, SESSION) is None
        cookie = set_cookie(r, "__Host-sekisho_session")
        assert cookie is not None
        assert {"secure", "httponly", "samesite=lax", "path=/"} <= attributes(cookie)
        assert not any(a.startswith("domain=") for a in attributes(cookie))
        assert (await http.get("/account")).status_code == 200


@pytest.mark.parametrize("path", ["/login", "/register", "/recovery", "/status", "/account",
                                  "/verify", "/nowhere"])
async def test_pages_carry_security_headers(client, path):
    r = await client.get(path)
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["x-content-type-options"] == "nosniff"
    csp = r.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp
    if r.status_code == 200:
        assert "no-store" in r.headers["cache-control"]


# --- password reset -------------------------------------------------------------------------


async def test_password_reset_by_code_through_forms(client, factory, mailbox):
    member = await factory.member()
    r = await submit(client, "/recovery", "/recovery", {"identifier": member.email})
    path, query = location(r)
    assert path == "/recovery/code" and query["identifier"] == [member.email]

    r = await client.get(r.headers["location"])
    assert r.status_code == 200
    code = (await mailbox.last(member.email)).code
    r = await client.post("/recovery/reset", data={
        "csrf_token": csrf_of(r.text), "identifier": member.email, "code": code,
        "password": NEW_PASSWORD})
    assert location(r) == ("/login", {"notice": ["password_changed"]})

    r = await submit(client, "/login", "/login",
                     {"identifier": member.email, "password": DEFAULT_PASSWORD})
    assert r.status_code == 401
    r = await submit(client, "/login", "/login",
                     {"identifier": member.email, "password": NEW_PASSWORD})
    assert location(r)[0] == "/account"


async def test_reset_link_page_hides_the_token_from_referrers(client, factory, mailbox):
    member = await factory.member()
    r = await client.post("/api/v1/recovery", json={"identifier": member.email})
    assert r.status_code == 202
    page = urlsplit((await mailbox.last(member.email)).link("/recovery/reset?token="))
    r = await client.get(f"{page.path}?{page.query}")
    assert r.status_code == 200
    assert r.headers["referrer-policy"] == "no-referrer"
    token = parse_qs(page.query)["token"][0]
    # An inline error on the same page keeps the policy (the token is still in the URL).
    bad = await client.post("/recovery/reset", data={"csrf_token": csrf_of(r.text),
                                                     "token": token, "password": "short"})
    assert bad.status_code >= 400
    assert bad.headers["referrer-policy"] == "no-referrer"
    ok = await client.post("/recovery/reset", data={"csrf_token": csrf_of(r.text),
                                                    "token": token, "password": NEW_PASSWORD})
    assert location(ok) == ("/login", {"notice": ["password_changed"]})
    assert (await client.get("/login")).headers["referrer-policy"] == "same-origin"


# --- open redirects -------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["//evil.example", "https://evil.example",
                                    "/\\evil.example", "javascript:alert(1)"])
async def test_login_never_redirects_off_site(client, factory, target):
    member = await factory.member()
    r = await submit(client, f"/login?next={target}", "/login",
                     {"identifier": member.email, "password": member.password, "next": target})
    assert r.headers["location"] == "/account"
    r = await client.get("/login", params={"next": target})  # already signed in
    assert r.headers["location"] == "/account"


async def test_login_follows_a_same_site_next(client, factory):
    member = await factory.member()
    r = await submit(client, "/login?next=/status", "/login",
                     {"identifier": member.email, "password": member.password, "next": "/status"})
    assert r.headers["location"] == "/status"
