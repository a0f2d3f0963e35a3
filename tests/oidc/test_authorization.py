"""The authorization endpoint: where the member goes (login, step-up, consent) and what the
relying party gets back, including every refusal."""

from __future__ import annotations

import pyotp
import pytest
from oidc.oidc_support import (
    REDIRECT,
    authorize_params,
    code_for,
    exchange,
    log_in,
    pkce_pair,
    query_of,
    register,
)
from support.pages import csrf_of
from sqlalchemy import func, select

from sekisho.oidc.models import OAuthCode, OAuthLink


async def _count(core, model) -> int:
    async with core.db.read() as db:
        return int(await db.scalar(select(func.count()).select_from(model)) or 0)


async def test_without_a_session_the_member_logs_in_then_comes_back(app, client, factory):
    member = await factory.member()
    rp = await register(app, first_party=True)
    verifier, challenge = pkce_pair()
    params = authorize_params(rp, challenge, prompt="login")
    r = await client.get("/oauth/authorize", params=params)
    assert r.status_code == 302
    assert r.headers["location"].startswith("/login?next=%2Foauth%2Fauthorize")
    login_page = await client.get(r.headers["location"])
    r = await client.post("/login", data={
        "csrf_token": csrf_of(login_page.text), "identifier": member.email,
        "password": member.password, "next": query_of(r.headers["location"])["next"]})
    assert r.status_code == 303
    # The fresh login honoured prompt=login: back at the endpoint, the code goes out.
    assert "prompt=login" not in r.headers["location"]
    r = await client.get(r.headers["location"])
    assert r.status_code == 302 and r.headers["location"].startswith(REDIRECT)
    back = query_of(r.headers["location"])
    assert back["state"] == params["state"]
    assert (await exchange(client, rp, back["code"], verifier)).status_code == 200


async def test_wrong_redirect_uri_is_refused_on_a_page_without_redirecting(app, client,
                                                                          factory):
    rp = await register(app, first_party=True)
    await log_in(client, await factory.member())
    _, challenge = pkce_pair()
    for uri in ("https://evil.example/callback", REDIRECT + "/", REDIRECT + "?x=1"):
        params = {**authorize_params(rp, challenge), "redirect_uri": uri}
        r = await client.get("/oauth/authorize", params=params)
        assert r.status_code == 400
        assert "location" not in r.headers
        assert 'data-code="oidc.invalid_request"' in r.text
    unknown = {**authorize_params(rp, challenge), "client_id": "nobody"}
    r = await client.get("/oauth/authorize", params=unknown,
                         headers={"Accept": "application/json"})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "oidc.invalid_request"
    assert r.json()["error"]["oauth_error"] == "invalid_client"
    assert r.json()["error"]["reference"]
    assert await _count(app.state.core, OAuthCode) == 0


async def test_errors_after_the_redirect_uri_is_proven_go_back_to_the_client(app, client,
                                                                            factory):
    rp = await register(app, first_party=True)
    await log_in(client, await factory.member())
    _, challenge = pkce_pair()
    cases = [({"scope": "openid admin"}, "invalid_scope"),
             ({"response_type": "token"}, "unsupported_response_type"),
             ({"code_challenge_method": "plain"}, "invalid_request"),
             ({"max_age": "soon"}, "invalid_request")]
    for change, expected in cases:
        params = {**authorize_params(rp, challenge), **change}
        r = await client.get("/oauth/authorize", params=params)
        assert r.status_code == 302
        back = query_of(r.headers["location"])
        assert r.headers["location"].startswith(REDIRECT)
        assert back["state"] == params["state"]
        assert back.get("error") == expected, back


@pytest.mark.parametrize("public", [True, False])
async def test_every_client_must_use_pkce_with_s256(app, client, factory, public):
    rp = await register(app, public=public, first_party=True)
    await log_in(client, await factory.member())
    r = await client.get("/oauth/authorize", params=authorize_params(rp, None))
    assert query_of(r.headers["location"])["error"] == "invalid_request"
    verifier, challenge = pkce_pair()
    code = await code_for(client, rp, challenge)
    r = await exchange(client, rp, code, None)  # the verifier withheld
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    code = await code_for(client, rp, challenge)
    r = await exchange(client, rp, code, pkce_pair()[0])  # someone else's verifier
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    code = await code_for(client, rp, challenge)
    assert (await exchange(client, rp, code, verifier)).status_code == 200


async def test_prompt_none_without_a_session_returns_login_required(app, client):
    rp = await register(app, first_party=True)
    params = authorize_params(rp, pkce_pair()[1], prompt="none")
    r = await client.get("/oauth/authorize", params=params)
    assert r.status_code == 302 and r.headers["location"].startswith(REDIRECT)
    back = query_of(r.headers["location"])
    assert back["error"] == "login_required"
    assert back["state"] == params["state"]


async def test_prompt_none_with_a_session_issues_a_code_silently(app, client, factory):
    rp = await register(app, first_party=True)
    await log_in(client, await factory.member())
    code = await code_for(client, rp, pkce_pair()[1], prompt="none")
    assert code


async def test_third_party_asks_consent_once_and_prompt_none_cannot_skip_it(app, client,
                                                                           factory):
    member = await factory.member()
    rp = await register(app, name="Points Partner")
    await log_in(client, member)
    verifier, challenge = pkce_pair()
    silent = await client.get("/oauth/authorize",
                              params=authorize_params(rp, challenge, prompt="none"))
    assert query_of(silent.headers["location"])["error"] == "consent_required"
    page = await client.get("/oauth/authorize", params=authorize_params(rp, challenge))
    assert page.status_code == 200
    assert 'data-form="consent"' in page.text and "Points Partner" in page.text
    assert await _count(app.state.core, OAuthLink) == 0
    form = {"csrf_token": csrf_of(page.text),
            "request": _hidden(page.text, "request"), "decision": "allow"}
    r = await client.post("/oauth/authorize", data=form)
    assert r.status_code == 303 and r.headers["location"].startswith(REDIRECT)
    assert (await exchange(client, rp, query_of(r.headers["location"])["code"],
                           verifier)).status_code == 200
    # Consent is remembered: the next sign-in goes straight back, even silently.
    assert await code_for(client, rp, challenge, prompt="none")
    # prompt=consent asks again; a wider scope asks again.
    again = await client.get("/oauth/authorize",
                             params=authorize_params(rp, challenge, prompt="consent"))
    assert 'data-form="consent"' in again.text


async def test_deny_sends_access_denied_and_links_nothing(app, client, factory):
    rp = await register(app)
    await log_in(client, await factory.member())
    params = authorize_params(rp, pkce_pair()[1])
    page = await client.get("/oauth/authorize", params=params)
    r = await client.post("/oauth/authorize", data={
        "csrf_token": csrf_of(page.text), "request": _hidden(page.text, "request"),
        "decision": "deny"})
    back = query_of(r.headers["location"])
    assert back["error"] == "access_denied" and back["state"] == params["state"]
    assert await _count(app.state.core, OAuthLink) == 0
    assert await _count(app.state.core, OAuthCode) == 0


async def test_consent_without_csrf_token_changes_nothing(app, client, factory):
    rp = await register(app)
    await log_in(client, await factory.member())
    page = await client.get("/oauth/authorize", params=authorize_params(rp, pkce_pair()[1]))
    r = await client.post("/oauth/authorize", data={
        "request": _hidden(page.text, "request"), "decision": "allow"})
    assert r.status_code == 403
    assert await _count(app.state.core, OAuthLink) == 0


async def test_max_age_and_prompt_login_ask_for_the_password_again(app, client, factory,
                                                                   clock):
    member = await factory.member()
    rp = await register(app, first_party=True)
    await log_in(client, member)
    clock.advance(minutes=11)
    _, challenge = pkce_pair()
    r = await client.get("/oauth/authorize",
                         params=authorize_params(rp, challenge, max_age="600"))
    assert r.headers["location"].startswith("/oauth/reauthenticate?")
    page = await client.get(r.headers["location"])
    assert 'data-form="oauth-reauth"' in page.text and 'name="password"' in page.text
    wrong = await client.post("/oauth/reauthenticate", data={
        "csrf_token": csrf_of(page.text), "next": _hidden(page.text, "next"),
        "level": "password", "password": "not the password"})
    assert wrong.status_code == 401
    assert 'data-code="login.invalid_credentials"' in wrong.text
    r = await client.post("/oauth/reauthenticate", data={
        "csrf_token": csrf_of(page.text), "next": _hidden(page.text, "next"),
        "level": "password", "password": member.password})
    assert r.status_code == 303
    r = await client.get(r.headers["location"])
    assert r.headers["location"].startswith(REDIRECT)
    # A code obtained this way carries the new auth_time.
    code = query_of(r.headers["location"])["code"]
    async with app.state.core.db.read() as db:
        stored = await db.scalar(select(OAuthCode).order_by(OAuthCode.id.desc()))
    assert stored.auth_time == clock.now()
    assert code


async def test_acr_mfa_needs_a_second_factor(app, client, factory, core):
    member = await factory.member()
    rp = await register(app, first_party=True)
    await log_in(client, member)
    _, challenge = pkce_pair()
    params = authorize_params(rp, challenge, acr_values="urn:sekisho:acr:mfa")
    r = await client.get("/oauth/authorize", params=params)
    # No second factor set up: the member is told how to get one, not sent in circles.
    assert r.status_code == 403 and 'data-code="oidc.second_factor_needed"' in r.text
    secret = await _enrol_totp(client, core)
    r = await client.get("/oauth/authorize", params=params)
    assert r.headers["location"].startswith("/oauth/reauthenticate?")
    assert "level=mfa" in r.headers["location"]
    page = await client.get(r.headers["location"])
    r = await client.post("/oauth/reauthenticate", data={
        "csrf_token": csrf_of(page.text), "next": _hidden(page.text, "next"), "level": "mfa",
        "method": "totp", "code": pyotp.TOTP(secret).at(core.clock.now())})
    assert r.status_code == 303
    r = await client.get(r.headers["location"])
    code = query_of(r.headers["location"])["code"]
    async with core.db.read() as db:
        stored = await db.scalar(select(OAuthCode).where(OAuthCode.id.is_not(None))
                                 .order_by(OAuthCode.id.desc()))
    assert stored.acr == "urn:sekisho:acr:mfa" and "mfa" in stored.amr
    assert code


async def test_old_app_versions_are_asked_to_update(app, client, factory):
    rp = await register(app, first_party=True, public=True, min_app_version="3.2")
    await log_in(client, await factory.member())
    _, challenge = pkce_pair()
    for version in (None, "3.1.9", "banana"):
        extra = {"app_version": version} if version else {}
        r = await client.get("/oauth/authorize",
                             params=authorize_params(rp, challenge, **extra))
        assert r.status_code == 400 and 'data-code="oidc.app_update_required"' in r.text
    assert await code_for(client, rp, challenge, app_version="3.10")


async def test_a_replayed_nonce_is_refused(app, client, factory):
    rp = await register(app, first_party=True)
    await log_in(client, await factory.member())
    _, challenge = pkce_pair()
    await code_for(client, rp, challenge, nonce="same-nonce")
    r = await client.get("/oauth/authorize",
                         params=authorize_params(rp, challenge, nonce="same-nonce"))
    assert query_of(r.headers["location"])["error"] == "invalid_request"


def _hidden(html: str, name: str) -> str:
    import html as html_lib
    import re

    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found, f"no hidden {name}"
    return html_lib.unescape(found.group(1))


async def _enrol_totp(client, core) -> str:
    """An authenticator app set up through the account API (with a fresh password step)."""
    r = await client.post("/api/v1/account/second-factors/totp", json={"name": "phone"})
    assert r.status_code == 201, r.text
    body = r.json()
    secret = body["secret"].replace(" ", "")
    r = await client.post(f"/api/v1/account/second-factors/totp/{body['id']}/confirm",
                          json={"code": pyotp.TOTP(secret).at(core.clock.now())})
    assert r.status_code == 200, r.text
    core.clock.advance(seconds=31)  # the next code, not the one just used
    return secret


async def test_after_our_own_forms_a_page_takes_the_browser_to_the_client(app, client,
                                                                         factory):
    # Browsers hold pages to form-action 'self' through redirects: the hop to the client
    # after the login or consent form is a new navigation, from a page.
    rp = await register(app, first_party=True)
    await log_in(client, await factory.member())
    params = authorize_params(rp, pkce_pair()[1])
    r = await client.get("/oauth/authorize", params=params,
                         headers={"Sec-Fetch-Site": "same-origin"})
    assert r.status_code == 200 and "form-action 'self'" in r.headers["content-security-policy"]
    target = _hidden_link(r.text)
    assert target.startswith(REDIRECT) and query_of(target)["state"] == params["state"]
    assert f'content="0; url={target}"'.replace("&", "&amp;") in r.text
    r = await client.get("/oauth/authorize", params=authorize_params(rp, pkce_pair()[1]),
                         headers={"Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 302 and r.headers["location"].startswith(REDIRECT)


def _hidden_link(html: str) -> str:
    import html as html_lib
    import re

    found = re.search(r'<a href="([^"]*)" data-continue>', html)
    assert found, "no continue link"
    return html_lib.unescape(found.group(1))
