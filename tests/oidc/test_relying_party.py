"""The provider as a relying party meets it: Authlib's own OAuth client against a live
sekisho on loopback (discovery, code + PKCE, ID token checks with the published keys,
userinfo, refresh rotation, revocation, introspection), and signing-key rotation as it
shows in the JWKS and in the ``kid`` of new ID tokens."""

from __future__ import annotations

import base64
import hashlib
import secrets
import warnings
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from authlib.integrations.base_client import OAuthError
from authlib.oidc.discovery import OpenIDProviderMetadata
from authlib.oidc.rpinitiated import OpenIDProviderMetadata as LogoutMetadata
from conftest import FAST_HASH, NO_LIMITS, make_client
from fastapi import FastAPI
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry
from oidc.oidc_support import REDIRECT, Registered, code_for, exchange, log_in, pkce_pair, register
from support import databases, live
from support.factories import Factory, Member

from sekisho.clock import FrozenClock
from sekisho.core import Core, build_core
from sekisho.oidc.clients import ClientRegistry, ClientSpec
from sekisho.settings import Settings

with warnings.catch_warnings():
    # httpx2 is not installed; Authlib's fallback to httpx is what a relying party gets today.
    warnings.simplefilter("ignore")
    from authlib.integrations.httpx_client import AsyncOAuth2Client

SCOPE = "openid profile email"
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi"}


# --- a live provider, one per module and database --------------------------------------------
@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def provider(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
             sqlite_template: Path) -> Iterator[live.ThreadServer]:
    """sekisho under uvicorn; its issuer is the URL it listens on, as in a deployment."""
    data = tmp_path_factory.mktemp("relying-party")
    url = databases.sqlite_copy(sqlite_template, data) if request.param == "sqlite" \
        else str(request.getfixturevalue("postgres_url"))
    port = live.free_port()
    settings = Settings(data_dir=data / "var", database_url=url, secret_key="rp-test-secret",
                        base_url=f"http://127.0.0.1:{port}", run_outbox_worker=False,
                        rate_limits=NO_LIMITS, waiting_room_enabled=False, **FAST_HASH)
    with live.serve_in_thread(settings, port=port) as server:
        yield server


@dataclass
class Operator:
    """What the operator does beside the server: register clients, create members (through
    the services, on the server's database, from the test's own event loop)."""

    url: str
    core: Core
    members: Factory

    async def client(self, **spec: Any) -> Registered:
        registry = ClientRegistry(self.core.clock, self.core.tokens)
        values = {"name": "Ticket App", "redirect_uris": [REDIRECT], **spec}
        client, secret = await self.core.db.run(
            lambda conn: registry.register(conn, ClientSpec(**values)), write=True)
        return Registered(client.client_id, secret)

    async def member(self) -> Member:
        # One server serves the whole module: every test brings its own member.
        return await self.members.member(email=f"rp-{secrets.token_hex(6)}@example.jp",
                                         display_name="Hanako Yamada")


@pytest.fixture
async def operator(provider: live.ThreadServer) -> AsyncIterator[Operator]:
    core = build_core(provider.app.state.core.settings)
    try:
        yield Operator(provider.url, core, Factory(core))
    finally:
        await core.close()


# --- what a relying party checks ---------------------------------------------------------------
def _half_hash(value: str) -> str:
    """``at_hash`` for RS256 and ES256 (OIDC Core §3.1.3.6): left half of SHA-256."""
    digest = hashlib.sha256(value.encode()).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()


def _verify(id_token: str, jwks: dict[str, Any], *, issuer: str, audience: str, alg: str,
            nonce: str | None = None, now: int | None = None, leeway: int = 0) -> jwt.Token:
    """OIDC Core §3.1.3.7: signature with a published key and the client's algorithm only,
    then iss, aud, exp, iat (and the nonce the client sent)."""
    token = jwt.decode(id_token, KeySet.import_key_set(jwks), algorithms=[alg])
    expected: dict[str, Any] = {
        "iss": {"essential": True, "value": issuer},
        "aud": {"essential": True, "value": audience},
        "exp": {"essential": True}, "iat": {"essential": True}, "sub": {"essential": True}}
    if nonce is not None:
        expected["nonce"] = {"essential": True, "value": nonce}
    JWTClaimsRegistry(now=now, leeway=leeway, **expected).validate(token.claims)
    return token


def _kids(jwks: dict[str, Any]) -> set[str]:
    return {key["kid"] for key in jwks["keys"]}


async def _sign_in(rp: AsyncOAuth2Client, browser: httpx.AsyncClient, meta: dict[str, Any]
                   ) -> tuple[dict[str, Any], str]:
    """Code flow with PKCE: the browser carries the request, the code comes back on the
    redirect, and the client redeems it with its verifier. Returns the token and nonce."""
    verifier, nonce = secrets.token_urlsafe(48), secrets.token_urlsafe(16)
    url, state = rp.create_authorization_url(meta["authorization_endpoint"],
                                             code_verifier=verifier, nonce=nonce)
    answer = await browser.get(url)
    assert answer.status_code == 302, answer.text
    location = answer.headers["location"]
    assert location.startswith(REDIRECT + "?"), location
    # Authlib checks the state on the redirect against the one it sent.
    token = await rp.fetch_token(meta["token_endpoint"], authorization_response=location,
                                 code_verifier=verifier, state=state)
    return dict(token), nonce


async def _introspect(resource_server: AsyncOAuth2Client, meta: dict[str, Any], token: str,
                      hint: str) -> dict[str, Any]:
    answer = await resource_server.introspect_token(meta["introspection_endpoint"], token=token,
                                                    token_type_hint=hint)
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


async def _discovery(http: httpx.AsyncClient, url: str) -> dict[str, Any]:
    answer = await http.get(f"{url}/.well-known/openid-configuration")
    assert answer.status_code == 200
    return answer.json()  # type: ignore[no-any-return]


# --- the live tests ------------------------------------------------------------------------------
async def test_discovery_and_jwks_are_accepted_by_a_client_library(operator: Operator) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        meta = await _discovery(http, operator.url)
        OpenIDProviderMetadata(meta).validate(metadata_classes=[LogoutMetadata])
        assert meta["issuer"] == operator.url
        for name in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri",
                     "revocation_endpoint", "introspection_endpoint", "end_session_endpoint"):
            assert meta[name].startswith(operator.url + "/oauth/"), name
        assert meta["code_challenge_methods_supported"] == ["S256"]
        jwks = (await http.get(meta["jwks_uri"])).json()
    keys = jwks["keys"]
    assert {key["alg"] for key in keys} == set(meta["id_token_signing_alg_values_supported"])
    for key in keys:
        assert key["use"] == "sig" and key["kid"]
        assert not PRIVATE_MEMBERS & key.keys(), f"private key material published: {key['kid']}"
    assert len(KeySet.import_key_set(jwks).keys) == len(keys)


VARIANTS: dict[str, dict[str, Any]] = {
    "confidential-rs256": {},
    "public-pkce": {"public": True},
    "confidential-es256": {"id_token_signed_response_alg": "ES256"},
}


@pytest.mark.parametrize("variant", list(VARIANTS))
async def test_relying_party_runs_the_whole_code_flow(operator: Operator, variant: str) -> None:
    spec = VARIANTS[variant]
    alg = spec.get("id_token_signed_response_alg", "RS256")
    registered = await operator.client(first_party=True, **spec)
    # A resource server (confidential) asks about tokens; public clients may not.
    api = await operator.client(name="Ticket API")
    member = await operator.member()
    browser = httpx.AsyncClient(base_url=operator.url, timeout=30)
    rp = AsyncOAuth2Client(registered.client_id, registered.secret, redirect_uri=REDIRECT,
                           scope=SCOPE, code_challenge_method="S256", timeout=30,
                           token_endpoint_auth_method=None if registered.secret else "none")
    resource_server = AsyncOAuth2Client(api.client_id, api.secret, timeout=30)
    async with browser, rp, resource_server:
        meta = await _discovery(browser, operator.url)
        await log_in(browser, member)
        token, nonce = await _sign_in(rp, browser, meta)
        assert token["token_type"].lower() == "bearer"
        assert set(token["scope"].split()) == set(SCOPE.split())

        jwks = (await browser.get(meta["jwks_uri"])).json()
        id_token = _verify(token["id_token"], jwks, issuer=operator.url,
                           audience=registered.client_id, alg=alg, nonce=nonce)
        assert id_token.header["alg"] == alg
        assert id_token.header["kid"] in {k["kid"] for k in jwks["keys"] if k["alg"] == alg}
        assert id_token.claims["at_hash"] == _half_hash(token["access_token"])
        sub = id_token.claims["sub"]

        info = await rp.get(meta["userinfo_endpoint"])
        assert info.status_code == 200, info.text
        assert info.json()["sub"] == sub
        assert info.json()["email"] == member.email
        assert info.json()["name"] == "Hanako Yamada"

        # Refresh rotates: a new refresh token, and the spent one is refused.
        first = dict(token)
        refreshed = await rp.refresh_token(meta["token_endpoint"],
                                           refresh_token=first["refresh_token"])
        assert refreshed["refresh_token"] != first["refresh_token"]
        assert refreshed["access_token"] != first["access_token"]
        assert (await rp.get(meta["userinfo_endpoint"])).json()["sub"] == sub
        seen = await _introspect(resource_server, meta, refreshed["access_token"], "access_token")
        assert seen["active"] is True and seen["client_id"] == registered.client_id
        assert seen["sub"] == sub
        with pytest.raises(OAuthError) as refused:
            await rp.refresh_token(meta["token_endpoint"], refresh_token=first["refresh_token"])
        assert refused.value.error == "invalid_grant"
        # A spent refresh token presented again means it leaked: its successors go too.
        assert (await _introspect(resource_server, meta, refreshed["refresh_token"],
                                  "refresh_token"))["active"] is False

        # Signing the member out at the relying party: revocation ends the whole grant.
        token, _ = await _sign_in(rp, browser, meta)
        assert (await _introspect(resource_server, meta, token["access_token"],
                                  "access_token"))["active"] is True
        answer = await rp.revoke_token(meta["revocation_endpoint"],
                                       token=token["refresh_token"],
                                       token_type_hint="refresh_token")
        assert answer.status_code == 200, answer.text
        for kind in ("access_token", "refresh_token"):
            assert (await _introspect(resource_server, meta, token[kind], kind))["active"] \
                is False, kind
        assert (await rp.get(meta["userinfo_endpoint"])).status_code == 401


# --- key rotation, in process with a clock that moves when told --------------------------------
async def test_key_rotation_never_leaves_a_relying_party_unable_to_verify(
        app: FastAPI, core: Core, factory: Factory, clock: FrozenClock,
        settings: Settings) -> None:
    registered = await register(app, first_party=True)
    member = await factory.member()
    lead = settings.oidc_key_publish_lead_seconds
    keep = settings.oidc_id_token_lifetime_seconds + 60

    async def jwks() -> dict[str, Any]:
        async with make_client(app) as http:
            answer = await http.get("/oauth/jwks")
        assert answer.status_code == 200
        return answer.json()  # type: ignore[no-any-return]

    async def id_token() -> str:
        # A fresh browser each time: a day on, yesterday's session has long expired.
        async with make_client(app) as http:
            await log_in(http, member)
            verifier, challenge = pkce_pair()
            answer = await exchange(http, registered, await code_for(http, registered, challenge),
                                    verifier)
        assert answer.status_code == 200, answer.text
        return str(answer.json()["id_token"])

    def verified(token: str, keys: dict[str, Any], leeway: int = 0) -> jwt.Token:
        return _verify(token, keys, issuer=settings.issuer, audience=registered.client_id,
                       alg="RS256", now=int(clock.now().timestamp()), leeway=leeway)

    before = await id_token()
    old = _kids(await jwks())
    assert len(old) == 2  # one RS256, one ES256
    signing = verified(before, await jwks()).header["kid"]

    new = set(await core.db.run(lambda conn: app.state.oidc.keys.rotate(conn, lead),
                                write=True))
    published = await jwks()
    assert _kids(published) == old | new and not old & new
    # Published ahead of use: tokens already out still verify, new ones keep the old key.
    verified(before, published)
    assert verified(await id_token(), published).header["kid"] == signing
    clock.advance(lead - 1)
    last_old = await id_token()
    assert verified(last_old, await jwks()).header["kid"] == signing

    clock.advance(1)
    first_new = verified(await id_token(), await jwks())
    assert first_new.header["kid"] in new

    # The last token the old key signed stays verifiable for its whole life, even by a
    # relying party allowing a minute of clock skew (exp = lead - 1 + lifetime).
    clock.advance(keep - 2)
    verified(last_old, await jwks(), leeway=60)
    clock.advance(1)
    assert old <= _kids(await jwks())
    clock.advance(1)
    assert _kids(await jwks()) == new
    with pytest.raises(InvalidKeyIdError):
        verified(last_old, await jwks(), leeway=60)
