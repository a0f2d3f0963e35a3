"""Registering relying parties (admin API and CLI), the discovery document, and
RP-initiated logout."""

from __future__ import annotations

import asyncio
import json
import os
from datetime import UTC, datetime

import pytest
from authlib.oidc.discovery import OpenIDProviderMetadata
from joserfc import jwt
from joserfc.jwk import KeySet
from conftest import make_client
from oidc.oidc_support import REDIRECT, code_for, exchange, log_in, pkce_pair, register
from sqlalchemy import func, select
from support.pages import csrf_of, form_of
from typer.testing import CliRunner

from sekisho.cli import app as cli_app
from sekisho.identity.models import Role
from sekisho.oidc.models import OAuthClient
from sekisho.sessions.models import Session

API = "/api/v1/admin/oidc/clients"
AFTER_LOGOUT = "http://127.0.0.1:9999/bye"


@pytest.fixture
async def staff(app, factory):
    admin = await factory.member(email="staff@example.jp", role=Role.ADMIN)
    async with make_client(app) as http:
        await log_in(http, admin)
        yield http


async def _clients(core) -> int:
    async with core.db.read() as db:
        return int(await db.scalar(select(func.count()).select_from(OAuthClient)) or 0)


async def test_admin_api_registers_lists_rotates_and_removes(staff, core):
    r = await staff.post(API, json={"name": "Ticket App", "redirect_uris": [REDIRECT],
                                    "first_party": True})
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["type"] == "confidential" and len(created["client_secret"]) >= 40
    async with core.db.read() as db:
        stored = await db.scalar(select(OAuthClient))
    assert stored.secret_hash != created["client_secret"]
    assert created["client_secret"] not in json.dumps((await staff.get(API)).json())
    listed = (await staff.get(API)).json()["clients"]
    assert [c["client_id"] for c in listed] == [created["client_id"]]
    rotated = await staff.post(f"{API}/{created['client_id']}/secret")
    assert rotated.status_code == 200
    assert rotated.json()["client_secret"] != created["client_secret"]
    public = await staff.post(API, json={"name": "Mobile", "public": True,
                                         "redirect_uris": ["com.example.tickets:/callback"]})
    assert public.status_code == 201 and "client_secret" not in public.json()
    assert public.json()["token_endpoint_auth_method"] == "none"
    assert (await staff.delete(f"{API}/{created['client_id']}")).status_code == 204
    gone = await staff.delete(f"{API}/{created['client_id']}")
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "oidc.client_not_found"
    assert await _clients(core) == 1


@pytest.mark.parametrize("body, field", [
    ({"name": "x", "redirect_uris": []}, "redirect_uris"),
    ({"name": "x", "redirect_uris": ["http://evil.example/cb"]}, "redirect_uris"),
    ({"name": "x", "redirect_uris": ["https://app.example/*"]}, "redirect_uris"),
    ({"name": "x", "redirect_uris": ["https://app.example/cb#frag"]}, "redirect_uris"),
    ({"name": "x", "redirect_uris": ["javascript:alert(1)"]}, "redirect_uris"),
    ({"name": "x", "redirect_uris": [REDIRECT], "scopes": ["profile"]}, "scopes"),
    ({"name": "x", "redirect_uris": [REDIRECT], "scopes": ["openid", "admin"]}, "scopes"),
    ({"name": "x", "redirect_uris": [REDIRECT], "id_token_signed_response_alg": "none"},
     "id_token_signed_response_alg"),
    ({"name": " ", "redirect_uris": [REDIRECT]}, "name"),
    ({"name": "x", "redirect_uris": [REDIRECT], "backchannel_logout_uri": "ftp://x"},
     "backchannel_logout_uri"),
    ({"name": "x", "redirect_uris": [REDIRECT], "min_app_version": "latest"},
     "min_app_version"),
])
async def test_bad_client_metadata_is_refused_and_nothing_is_stored(staff, core, body,
                                                                    field):
    r = await staff.post(API, json=body)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "request.invalid"
    assert r.json()["error"]["field"] == field
    assert await _clients(core) == 0


async def test_members_cannot_register_clients(client, factory, core):
    assert (await client.get(API)).status_code == 401
    await log_in(client, await factory.member())
    r = await client.post(API, json={"name": "x", "redirect_uris": [REDIRECT]})
    assert r.status_code == 403 and r.json()["error"]["code"] == "auth.forbidden"
    assert await _clients(core) == 0


async def _cli(settings, *args: str):
    """``sekisho ...`` against the test's database, on a thread of its own (the command
    runs its own event loop)."""
    env = {k: None for k in os.environ if k.startswith("SEKISHO_")}
    env.update(SEKISHO_DATABASE_URL=settings.resolved_database_url,
               SEKISHO_SECRET_KEY="test-secret", SEKISHO_DATA_DIR=str(settings.data_dir))
    return await asyncio.to_thread(CliRunner().invoke, cli_app, list(args), env=env)


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_cli_registers_a_client_the_server_accepts(app, client, factory, settings,
                                                         clock):
    clock.set(datetime.now(UTC))  # the command runs on the system clock
    result = await _cli(settings, "oidc", "client", "add", "--name", "Konbini",
                        "--redirect-uri", REDIRECT, "--first-party", "--alg", "ES256")
    assert result.exit_code == 0, result.output
    created = json.loads(result.output)
    listed = json.loads((await _cli(settings, "oidc", "client", "list")).output)
    assert [c["client_id"] for c in listed] == [created["client_id"]]
    from oidc.oidc_support import Registered

    rp = Registered(created["client_id"], created["client_secret"])
    await log_in(client, await factory.member())
    verifier, challenge = pkce_pair()
    tokens = await exchange(client, rp, await code_for(client, rp, challenge), verifier)
    assert tokens.status_code == 200
    bad = await _cli(settings, "oidc", "client", "add", "--name", "x", "--redirect-uri",
                     "http://evil.example/cb")
    assert bad.exit_code != 0 and "request.invalid" in bad.output
    before = {k["kid"] for k in (await client.get("/oauth/jwks")).json()["keys"]}
    rotated = await _cli(settings, "oidc", "keys", "rotate", "--now")
    assert rotated.exit_code == 0, rotated.output
    kids = json.loads(rotated.output)["new_kids"]
    clock.set(datetime.now(UTC))
    # After a leak the old keys are withdrawn at once, and the new ones sign.
    published = {k["kid"] for k in (await client.get("/oauth/jwks")).json()["keys"]}
    assert published == set(kids) and not before & published
    verifier, challenge = pkce_pair()
    tokens = (await exchange(client, rp, await code_for(client, rp, challenge),
                             verifier)).json()
    assert jwt.decode(tokens["id_token"], KeySet.import_key_set(
        (await client.get("/oauth/jwks")).json())).header["kid"] in kids
    removed = await _cli(settings, "oidc", "client", "remove", created["client_id"])
    assert removed.exit_code == 0, removed.output
    assert json.loads((await _cli(settings, "oidc", "client", "list")).output) == []


async def test_discovery_document_validates_and_names_the_endpoints(client, settings):
    r = await client.get("/.well-known/openid-configuration")
    assert r.status_code == 200
    metadata = OpenIDProviderMetadata(r.json())
    metadata.validate()
    assert r.headers["access-control-allow-origin"] == "*"
    assert metadata["issuer"] == settings.issuer
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert set(metadata["id_token_signing_alg_values_supported"]) == {"RS256", "ES256"}
    jwks = (await client.get("/oauth/jwks")).json()
    assert {k["alg"] for k in jwks["keys"]} == {"RS256", "ES256"}
    assert all("d" not in k and "p" not in k for k in jwks["keys"])


async def _live_sessions(core, account_id: int) -> int:
    async with core.db.read() as db:
        return int(await db.scalar(select(func.count()).select_from(Session).where(
            Session.account_id == account_id, Session.ended_at.is_(None))) or 0)


async def test_rp_logout_with_id_token_hint_ends_the_session_and_returns(app, client,
                                                                        factory, core):
    member = await factory.member()
    rp = await register(app, first_party=True, post_logout_redirect_uris=[AFTER_LOGOUT])
    await log_in(client, member)
    verifier, challenge = pkce_pair()
    tokens = (await exchange(client, rp, await code_for(client, rp, challenge),
                             verifier)).json()
    r = await client.get("/oauth/logout", params={
        "id_token_hint": tokens["id_token"], "post_logout_redirect_uri": AFTER_LOGOUT,
        "state": "s1"})
    assert r.status_code == 302 and r.headers["location"] == AFTER_LOGOUT + "?state=s1"
    assert await _live_sessions(core, member.account_id) == 0
    assert (await client.get("/api/v1/session")).status_code == 401


async def test_rp_logout_without_a_hint_asks_the_member_first(app, client, factory, core):
    member = await factory.member()
    rp = await register(app, first_party=True, post_logout_redirect_uris=[AFTER_LOGOUT])
    await log_in(client, member)
    r = await client.get("/oauth/logout", params={
        "client_id": rp.client_id, "post_logout_redirect_uri": AFTER_LOGOUT})
    assert r.status_code == 200 and 'data-form="oauth-logout"' in r.text
    assert await _live_sessions(core, member.account_id) == 1
    import html
    import re

    request = html.unescape(re.search(r'name="request" value="([^"]*)"', r.text).group(1))
    confirmed = await client.post("/oauth/logout", data={
        "csrf_token": csrf_of(r.text), "request": request, "confirm": "yes"})
    assert confirmed.status_code == 303
    assert await _live_sessions(core, member.account_id) == 0
    # Without an ID token the OP does not redirect to the client (RP-Initiated Logout §3).
    assert confirmed.headers["location"].startswith("/login")


async def test_rp_logout_confirmed_twice_logs_out_once(app, client, factory, core):
    member = await factory.member()
    rp = await register(app, first_party=True, post_logout_redirect_uris=[AFTER_LOGOUT])
    await log_in(client, member)
    asked = await client.get("/oauth/logout", params={"client_id": rp.client_id})
    form = {**form_of(asked.text, "/oauth/logout"), "confirm": "yes"}
    assert form["form_token"]
    answers = await asyncio.gather(client.post("/oauth/logout", data=form),
                                   client.post("/oauth/logout", data=form))
    assert [a.status_code for a in answers] == [303, 303]
    assert {a.headers["location"] for a in answers} == {"/login?notice=logged_out"}
    assert sorted(a.headers.get("idempotent-replayed", "") for a in answers) == ["", "true"]
    assert await _live_sessions(core, member.account_id) == 0


async def test_rp_logout_refuses_a_forged_hint_and_unregistered_return(app, client, factory,
                                                                       core):
    member = await factory.member()
    rp = await register(app, first_party=True, post_logout_redirect_uris=[AFTER_LOGOUT])
    await log_in(client, member)
    verifier, challenge = pkce_pair()
    tokens = (await exchange(client, rp, await code_for(client, rp, challenge),
                             verifier)).json()
    head, body, signature = tokens["id_token"].split(".")
    forged = ".".join([head, body, signature[::-1]])
    r = await client.get("/oauth/logout", params={"id_token_hint": forged})
    assert r.status_code == 400 and 'data-code="oidc.invalid_request"' in r.text
    assert await _live_sessions(core, member.account_id) == 1
    r = await client.get("/oauth/logout", params={
        "id_token_hint": tokens["id_token"], "post_logout_redirect_uri": "https://evil.example/"})
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    assert await _live_sessions(core, member.account_id) == 0


async def test_a_changed_secret_key_leads_to_new_signing_keys_not_errors(app, client, core):
    from sekisho.oidc.keys import KeyRing

    before = {k["kid"] for k in (await client.get("/oauth/jwks")).json()["keys"]}
    ring = KeyRing(b"another secret", core.clock, token_lifetime_seconds=600)
    after = await core.db.run(ring.jwks, write=True)
    kids = {k["kid"] for k in after["keys"]}
    assert len(kids) == 2 and not kids & before
