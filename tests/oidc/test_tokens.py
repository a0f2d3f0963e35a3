"""The token side: PKCE, code and refresh-token single use (with races), rotation and
reuse detection, revocation, introspection and userinfo."""

from __future__ import annotations

import asyncio

import pytest
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from oidc.oidc_support import Registered, code_for, exchange, log_in, pkce_pair, register
from sqlalchemy import select

from sekisho.oidc.models import OAuthToken


def test_rfc7636_appendix_b_vector():
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert create_s256_code_challenge(verifier) == \
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


async def _tokens(app, client, factory, **spec) -> tuple[Registered, dict]:
    rp = await register(app, first_party=True, **spec)
    await log_in(client, await factory.member())
    verifier, challenge = pkce_pair()
    r = await exchange(client, rp, await code_for(client, rp, challenge), verifier)
    assert r.status_code == 200, r.text
    return rp, r.json()


async def _refresh(client, rp: Registered, refresh_token: str):
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    if rp.secret is None:
        data["client_id"] = rp.client_id
    return await client.post("/oauth/token", data=data,
                             auth=(rp.client_id, rp.secret) if rp.secret else None)


async def _introspect(client, resource: Registered, token: str) -> dict:
    r = await client.post("/oauth/introspect", data={"token": token},
                          auth=(resource.client_id, resource.secret))
    assert r.status_code == 200, r.text
    return r.json()


async def test_token_answer_is_not_cacheable_and_carries_every_token(app, client, factory):
    rp, tokens = await _tokens(app, client, factory)
    assert {"access_token", "refresh_token", "id_token", "expires_in"} <= tokens.keys()
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 900
    r = await exchange(client, rp, "no-such-code", None)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    assert r.headers["cache-control"] == "no-store"


async def test_a_code_works_once_and_its_second_use_revokes_what_it_gave(app, client,
                                                                        factory):
    rp = await register(app, first_party=True)
    await log_in(client, await factory.member())
    verifier, challenge = pkce_pair()
    code = await code_for(client, rp, challenge)
    first = await exchange(client, rp, code, verifier)
    assert first.status_code == 200
    second = await exchange(client, rp, code, verifier)
    assert second.status_code == 400 and second.json()["error"] == "invalid_grant"
    # RFC 6749 §4.1.2: the tokens from the first exchange are revoked too.
    resource = await register(app, name="API")
    assert (await _introspect(client, resource, first.json()["access_token"]))["active"] \
        is False


async def test_two_racing_redemptions_of_one_code_have_one_winner(app, client, factory):
    rp = await register(app, first_party=True)
    await log_in(client, await factory.member())
    verifier, challenge = pkce_pair()
    code = await code_for(client, rp, challenge)
    answers = await asyncio.gather(*(exchange(client, rp, code, verifier) for _ in range(2)))
    assert sorted(r.status_code for r in answers) == [200, 400]


async def test_expired_code_is_refused(app, client, factory, clock):
    rp = await register(app, first_party=True)
    await log_in(client, await factory.member())
    verifier, challenge = pkce_pair()
    code = await code_for(client, rp, challenge)
    clock.advance(seconds=61)
    r = await exchange(client, rp, code, verifier)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


async def test_code_is_bound_to_its_client_and_redirect_uri(app, client, factory):
    rp = await register(app, first_party=True)
    other = await register(app, first_party=True, name="Other")
    await log_in(client, await factory.member())
    verifier, challenge = pkce_pair()
    code = await code_for(client, rp, challenge)
    assert (await exchange(client, other, code, verifier)).json()["error"] == "invalid_grant"
    r = await client.post("/oauth/token", auth=(rp.client_id, rp.secret), data={
        "grant_type": "authorization_code", "code": code, "code_verifier": verifier,
        "redirect_uri": "http://127.0.0.1:9999/other"})
    assert r.json()["error"] == "invalid_grant"
    r = await client.post("/oauth/token", auth=(rp.client_id, "wrong secret"), data={
        "grant_type": "authorization_code", "code": code, "code_verifier": verifier})
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"


async def test_refresh_rotates_and_a_reused_refresh_token_revokes_the_family(app, client,
                                                                           factory):
    rp, tokens = await _tokens(app, client, factory)
    resource = await register(app, name="API")
    r = await _refresh(client, rp, tokens["refresh_token"])
    assert r.status_code == 200
    second = r.json()
    assert second["refresh_token"] != tokens["refresh_token"]
    third = (await _refresh(client, rp, second["refresh_token"])).json()
    # The first refresh token again: stolen or replayed, so the whole family goes.
    reused = await _refresh(client, rp, tokens["refresh_token"])
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
    for token in (third["access_token"], third["refresh_token"], second["access_token"]):
        assert (await _introspect(client, resource, token))["active"] is False
    assert (await _refresh(client, rp, third["refresh_token"])).status_code == 400
    async with app.state.core.db.read() as db:
        reasons = set(await db.scalars(select(OAuthToken.revoke_reason)))
    assert reasons == {"refresh_reused"}


async def test_two_racing_refreshes_have_one_winner(app, client, factory):
    rp, tokens = await _tokens(app, client, factory, public=True)
    answers = await asyncio.gather(*(_refresh(client, rp, tokens["refresh_token"])
                                     for _ in range(2)))
    assert sorted(r.status_code for r in answers) == [200, 400]


async def test_refresh_cannot_widen_scope_and_needs_its_own_client(app, client, factory):
    rp, tokens = await _tokens(app, client, factory)
    other = await register(app, first_party=True, name="Other")
    assert (await _refresh(client, other, tokens["refresh_token"])).json()["error"] == \
        "invalid_grant"
    r = await client.post("/oauth/token", auth=(rp.client_id, rp.secret), data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
        "scope": "openid phone"})
    assert r.json()["error"] == "invalid_scope"
    narrowed = await client.post("/oauth/token", auth=(rp.client_id, rp.secret), data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
        "scope": "openid"})
    assert narrowed.status_code == 200 and narrowed.json()["scope"] == "openid"


async def test_revocation_ends_the_grant_and_unknown_tokens_are_fine(app, client, factory):
    rp, tokens = await _tokens(app, client, factory)
    resource = await register(app, name="API")
    r = await client.post("/oauth/revoke", data={"token": "never-issued"},
                          auth=(rp.client_id, rp.secret))
    assert r.status_code == 200
    r = await client.post("/oauth/revoke", auth=(rp.client_id, rp.secret),
                          data={"token": tokens["refresh_token"],
                                "token_type_hint": "refresh_token"})
    assert r.status_code == 200
    assert (await _introspect(client, resource, tokens["access_token"]))["active"] is False
    r = await client.get("/oauth/userinfo",
                         headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert r.status_code == 401 and "invalid_token" in r.headers["www-authenticate"]


async def test_introspection_describes_live_tokens_to_confidential_clients_only(app, client,
                                                                              factory):
    rp, tokens = await _tokens(app, client, factory)
    resource = await register(app, name="API")
    about = await _introspect(client, resource, tokens["access_token"])
    assert about["active"] is True and about["client_id"] == rp.client_id
    assert about["scope"] == "openid profile email" and about["sub"]
    assert (await _introspect(client, resource, "nonsense"))["active"] is False
    public = await register(app, public=True, name="Mobile")
    r = await client.post("/oauth/introspect",
                          data={"token": tokens["access_token"], "client_id": public.client_id})
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"


async def test_access_tokens_expire(app, client, factory, clock):
    _, tokens = await _tokens(app, client, factory)
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert (await client.get("/oauth/userinfo", headers=headers)).status_code == 200
    clock.advance(seconds=901)
    assert (await client.get("/oauth/userinfo", headers=headers)).status_code == 401


@pytest.mark.parametrize("scope, present, absent", [
    ("openid", {"sub"}, {"email", "name", "phone_number"}),
    ("openid email", {"sub", "email", "email_verified"}, {"name"}),
    ("openid profile", {"sub", "locale"}, {"email"}),
])
async def test_userinfo_releases_what_the_scope_names(app, client, factory, scope, present,
                                                      absent):
    rp = await register(app, first_party=True)
    await log_in(client, await factory.member())
    verifier, challenge = pkce_pair()
    code = await code_for(client, rp, challenge, scope=scope)
    tokens = (await exchange(client, rp, code, verifier)).json()
    claims = (await client.get("/oauth/userinfo", headers={
        "Authorization": f"Bearer {tokens['access_token']}"})).json()
    assert present <= claims.keys() and not absent & claims.keys()


async def test_userinfo_never_names_a_login_identifier(app, client, factory):
    member = await factory.member(display_name="Hanako")
    rp = await register(app, first_party=True)
    await log_in(client, member)
    verifier, challenge = pkce_pair()
    tokens = (await exchange(client, rp, await code_for(client, rp, challenge),
                             verifier)).json()
    claims = (await client.get("/oauth/userinfo", headers={
        "Authorization": f"Bearer {tokens['access_token']}"})).json()
    assert claims["name"] == "Hanako"
    assert member.member_id not in claims["sub"]
    assert member.member_id not in str(claims.values())


async def test_only_the_code_and_refresh_grants_exist(app, client, factory):
    rp = await register(app, first_party=True)
    member = await factory.member()
    for grant in ({"grant_type": "password", "username": member.email,
                   "password": member.password},
                  {"grant_type": "client_credentials"}, {"grant_type": "implicit"}):
        r = await client.post("/oauth/token", data=grant, auth=(rp.client_id, rp.secret))
        assert r.status_code == 400 and r.json()["error"] == "unsupported_grant_type"


async def test_a_sign_in_ends_at_the_family_deadline_however_often_refreshed(app, client,
                                                                          factory, clock,
                                                                          settings):
    rp, tokens = await _tokens(app, client, factory)
    refresh = tokens["refresh_token"]
    step = settings.oidc_refresh_token_lifetime_seconds - 60
    elapsed = 0
    while elapsed + step < settings.oidc_refresh_family_lifetime_seconds:
        clock.advance(seconds=step)
        elapsed += step
        r = await _refresh(client, rp, refresh)
        assert r.status_code == 200, (elapsed, r.text)
        refresh = r.json()["refresh_token"]
    clock.advance(seconds=settings.oidc_refresh_family_lifetime_seconds - elapsed)
    r = await _refresh(client, rp, refresh)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
