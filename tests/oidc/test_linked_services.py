"""Linked services on the account page and API, and what ends with a sekisho session:
tokens, and back-channel logout notices delivered through the outbox."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet
from oidc.oidc_support import code_for, exchange, log_in, pkce_pair, register
from sqlalchemy import select
from support.live import free_port
from support.pages import csrf_of

from sekisho.events.models import AuthEvent, EventKind
from sekisho.notify.models import Channel, DeliveryState, OutboxMessage


async def _signed_in_tokens(app, client, rp, **extra):
    verifier, challenge = pkce_pair()
    r = await exchange(client, rp, await code_for(client, rp, challenge, **extra), verifier)
    assert r.status_code == 200, r.text
    return r.json()


async def _active(client, resource, token: str) -> bool:
    r = await client.post("/oauth/introspect", data={"token": token},
                          auth=(resource.client_id, resource.secret))
    return bool(r.json()["active"])


async def test_account_page_lists_linked_services_and_unlinks_at_once(app, client, factory):
    member = await factory.member()
    rp = await register(app, name="Konbini App", first_party=True)
    resource = await register(app, name="Points API")
    await log_in(client, member)
    page = await client.get("/account")
    assert 'data-linked-service="' not in page.text
    tokens = await _signed_in_tokens(app, client, rp)
    page = await client.get("/account")
    assert f'data-linked-service="{rp.client_id}"' in page.text and "Konbini App" in page.text
    r = await client.post("/account/linked/unlink",
                          data={"csrf_token": csrf_of(page.text), "client_id": rp.client_id})
    assert r.status_code == 303 and "notice=unlinked" in r.headers["location"]
    assert not await _active(client, resource, tokens["access_token"])
    assert not await _active(client, resource, tokens["refresh_token"])
    page = await client.get("/account")
    assert f'data-linked-service="{rp.client_id}"' not in page.text
    async with app.state.core.db.read() as db:
        actions = [e.detail["action"] for e in await db.scalars(
            select(AuthEvent).where(AuthEvent.kind == EventKind.LINKED_SERVICE))]
    assert actions == ["link", "unlink"]


async def test_unlink_through_the_api_and_relinking_asks_consent_again(app, client, factory):
    member = await factory.member()
    rp = await register(app, name="Ticket Partner")
    resource = await register(app, name="API")
    await log_in(client, member)
    verifier, challenge = pkce_pair()
    from oidc.oidc_support import authorize_params

    params = authorize_params(rp, challenge)
    page = await client.get("/oauth/authorize", params=params)
    import html
    import re

    request = html.unescape(re.search(r'name="request" value="([^"]*)"', page.text).group(1))
    r = await client.post("/oauth/authorize", data={
        "csrf_token": csrf_of(page.text), "request": request, "decision": "allow"})
    code = parse_qs(r.headers["location"].split("?", 1)[1])["code"][0]
    tokens = (await exchange(client, rp, code, verifier)).json()
    listed = (await client.get("/api/v1/account/linked-services")).json()["linked_services"]
    assert [(s["client_id"], s["name"]) for s in listed] == [(rp.client_id, "Ticket Partner")]
    assert listed[0]["scopes"] == ["openid", "profile", "email"]
    r = await client.delete(f"/api/v1/account/linked-services/{rp.client_id}")
    assert r.status_code == 204
    assert not await _active(client, resource, tokens["access_token"])
    refreshed = await client.post("/oauth/token", auth=(rp.client_id, rp.secret), data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert refreshed.json()["error"] == "invalid_grant"
    assert (await client.get("/api/v1/account/linked-services")).json() == {
        "linked_services": []}
    again = await client.delete(f"/api/v1/account/linked-services/{rp.client_id}")
    assert again.status_code == 404 and again.json()["error"]["code"] == "oidc.link_not_found"
    page = await client.get("/oauth/authorize", params=authorize_params(rp, challenge))
    assert 'data-form="consent"' in page.text


async def test_a_code_issued_before_unlinking_is_worthless(app, client, factory):
    rp = await register(app, first_party=True)
    await log_in(client, await factory.member())
    verifier, challenge = pkce_pair()
    code = await code_for(client, rp, challenge)
    assert (await client.delete(f"/api/v1/account/linked-services/{rp.client_id}")
            ).status_code == 204
    r = await exchange(client, rp, code, verifier)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


async def test_logout_ends_session_tokens_but_keeps_offline_access(app, client, factory):
    rp = await register(app, first_party=True,
                        scopes=["openid", "profile", "email", "offline_access"])
    resource = await register(app, name="API")
    await log_in(client, await factory.member())
    online = await _signed_in_tokens(app, client, rp)
    offline = await _signed_in_tokens(app, client, rp, scope="openid offline_access")
    page = await client.get("/account")
    assert (await client.post("/logout", data={"csrf_token": csrf_of(page.text)})
            ).status_code == 303
    assert not await _active(client, resource, online["refresh_token"])
    assert await _active(client, resource, offline["refresh_token"])


async def test_this_wasnt_me_revokes_every_token_even_offline(app, client, factory,
                                                               mailbox):
    rp = await register(app, first_party=True,
                        scopes=["openid", "profile", "email", "offline_access"])
    resource = await register(app, name="API")
    member = await factory.member()
    await log_in(client, member)
    offline = await _signed_in_tokens(app, client, rp, scope="openid offline_access")
    [notice] = [m for m in await mailbox.to(member.email) if m.template == "new_device_login"]
    token = notice.link("/account/not-me?token=").split("token=", 1)[1]
    r = await client.post("/api/v1/account/not-me", json={"token": token})
    assert r.status_code == 200, r.text
    assert not await _active(client, resource, offline["refresh_token"])


class _LogoutReceiver:
    """A relying party's back-channel logout endpoint on loopback."""

    def __init__(self, status: int = 200) -> None:
        self.tokens: list[str] = []
        self.status = status
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("content-length", 0))
                form = parse_qs(self.rfile.read(length).decode())
                receiver.tokens.extend(form.get("logout_token", []))
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/backchannel"

    def __enter__(self) -> _LogoutReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


async def _logout_messages(core) -> list[OutboxMessage]:
    async with core.db.read() as db:
        return list(await db.scalars(select(OutboxMessage).where(
            OutboxMessage.channel == Channel.LOGOUT).order_by(OutboxMessage.id)))


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
async def test_logout_sends_a_signed_back_channel_notice_to_the_client(app, client, factory,
                                                                      alg):
    with _LogoutReceiver() as receiver:
        rp = await register(app, first_party=True, backchannel_logout_uri=receiver.url,
                            id_token_signed_response_alg=alg)
        bystander = await register(app, first_party=True, name="No URI")
        await log_in(client, await factory.member())
        tokens = await _signed_in_tokens(app, client, rp)
        await _signed_in_tokens(app, client, bystander)
        page = await client.get("/account")
        await client.post("/logout", data={"csrf_token": csrf_of(page.text)})
        assert await app.state.worker.run_once() >= 1
        assert len(receiver.tokens) == 1
    jwks = KeySet.import_key_set((await client.get("/oauth/jwks")).json())
    notice = jwt.decode(receiver.tokens[0], jwks, algorithms=[alg])
    id_token = jwt.decode(tokens["id_token"], jwks, algorithms=[alg])
    assert notice.header["typ"] == "logout+jwt"
    claims = notice.claims
    assert claims["aud"] == rp.client_id and claims["iss"] == app.state.core.settings.issuer
    assert claims["sub"] == id_token.claims["sub"] and claims["sid"] == id_token.claims["sid"]
    assert "http://schemas.openid.net/event/backchannel-logout" in claims["events"]
    assert "nonce" not in claims and claims["jti"]
    [message] = await _logout_messages(app.state.core)
    assert message.state == DeliveryState.SENT


async def test_a_failing_back_channel_endpoint_is_retried_and_does_not_degrade_status(
        app, client, factory, clock):
    with _LogoutReceiver(status=500) as receiver:
        rp = await register(app, first_party=True, backchannel_logout_uri=receiver.url)
        await log_in(client, await factory.member())
        await _signed_in_tokens(app, client, rp)
        page = await client.get("/account")
        await client.post("/logout", data={"csrf_token": csrf_of(page.text)})
        for _ in range(3):
            await app.state.worker.run_once()
            clock.advance(minutes=10)
        assert len(receiver.tokens) >= 2
        receiver.status = 204
        await app.state.worker.run_once()
    [message] = await _logout_messages(app.state.core)
    assert message.state == DeliveryState.SENT and message.attempts >= 3
    status = (await client.get("/status.json")).json()
    assert all(c["state"] == "operational" for c in status["components"]), json.dumps(status)
