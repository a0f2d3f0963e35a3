"""Signing in to a third-party relying party in headless Chromium: the authorization-code
flow with PKCE (RFC 7636) through sekisho's own login and consent pages, the code
redeemed at the token endpoint for an ID token (OIDC Core §3.1), single sign-on with
remembered consent on the next visit, and a refusal coming back as ``access_denied``
(RFC 6749 §4.1.2.1).

The relying party's redirect URI is a tiny HTTP server on another loopback port: a
different origin from sekisho, as a real client is."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from conftest import FAST_HASH, NO_LIMITS
from joserfc import jwt
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry
from support import databases, live
from support.factories import seed_members

from sekisho.core import build_core
from sekisho.oidc.clients import ClientRegistry, ClientSpec
from sekisho.oidc.service import SCOPE_LABELS
from sekisho.settings import Settings
from sekisho.web.i18n import translations

PASSWORD = "momiji kawa yama"
SCOPES = ("openid", "profile", "email")
LOCALE = "ja"
WAIT_MS = 10_000


# --- the relying party's redirect URI ---------------------------------------------------------
class _CallbackServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__((live.HOST, 0), _CallbackHandler)
        self.hits: list[str] = []
        """Path and query of every request, in arrival order."""

    @property
    def url(self) -> str:
        return f"http://{live.HOST}:{self.server_address[1]}/callback"


class _CallbackHandler(BaseHTTPRequestHandler):
    server: _CallbackServer

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.server.hits.append(self.path)
        body = b"signed in"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


@pytest.fixture(scope="module")
def callback() -> Iterator[_CallbackServer]:
    server = _CallbackServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True, name="rp-callback")
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


# --- a live provider with its clients and members, one per database ---------------------------
@dataclass(frozen=True)
class Client:
    client_id: str
    secret: str
    redirect_uri: str


@dataclass
class Provider:
    url: str
    allowed: Client
    """Third party; the member says yes."""
    denied: Client
    """Another third party; the member says no."""
    emails: list[str] = field(default_factory=list)


async def _register(settings: Settings, redirect_uri: str, names: list[str]) -> list[Client]:
    core = build_core(settings)
    registry = ClientRegistry(core.clock, core.tokens)
    try:
        clients = []
        for name in names:
            spec = ClientSpec(name=name, redirect_uris=[redirect_uri], scopes=list(SCOPES))
            client, secret = await core.db.run(
                lambda conn, spec=spec: registry.register(conn, spec), write=True)
            assert secret is not None and not client.first_party
            clients.append(Client(client.client_id, secret, redirect_uri))
        return clients
    finally:
        await core.close()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def provider(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
             sqlite_template: Path, callback: _CallbackServer) -> Iterator[Provider]:
    data = tmp_path_factory.mktemp("oidc-browser")
    database_url = databases.sqlite_copy(sqlite_template, data) if request.param == "sqlite" \
        else str(request.getfixturevalue("postgres_url"))
    port = live.free_port()
    settings = Settings(data_dir=data / "var", database_url=database_url,
                        secret_key="oidc-browser-test", base_url=f"http://{live.HOST}:{port}",
                        run_outbox_worker=False, rate_limits=NO_LIMITS,
                        waiting_room_enabled=False, **FAST_HASH)
    # The PostgreSQL database is shared by the session: addresses of our own.
    emails = [f"oidc-{secrets.token_hex(4)}-{n}@example.jp" for n in range(2)]
    # Off this thread: Playwright's sync API keeps an event loop running on it.
    databases.in_thread(asyncio.run, seed_members(settings, emails, PASSWORD))
    allowed, denied = databases.in_thread(asyncio.run, _register(
        settings, callback.url, ["Ticket Partner", "Points Partner"]))
    with live.serve_in_thread(settings, port=port) as server:
        yield Provider(server.url, allowed, denied, emails)


# --- what the relying party and the browser do ------------------------------------------------
@dataclass(frozen=True)
class AuthorizationRequest:
    url: str
    state: str
    nonce: str
    verifier: str


def _authorization_request(provider: Provider, client: Client) -> AuthorizationRequest:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(
        hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    state, nonce = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
    query = urlencode({"response_type": "code", "client_id": client.client_id,
                       "redirect_uri": client.redirect_uri, "scope": " ".join(SCOPES),
                       "state": state, "nonce": nonce, "code_challenge": challenge,
                       "code_challenge_method": "S256"})
    return AuthorizationRequest(f"{provider.url}/oauth/authorize?{query}", state, nonce,
                                verifier)


@dataclass
class Watched:
    """A page, with the console messages and the main-frame navigations it has seen: what
    explains a redirect that never arrived (a CSP violation is reported on the console)."""

    page: Any
    console: list[str] = field(default_factory=list)
    navigations: list[str] = field(default_factory=list)

    def report(self) -> str:
        return (f"\n  page is at: {self.page.url}"
                f"\n  navigations: {self.navigations}"
                f"\n  console: {self.console}")


def _watch(page: Any) -> Watched:
    seen = Watched(page)
    page.on("console", lambda message: seen.console.append(f"[{message.type}] {message.text}"))
    page.on("pageerror", lambda error: seen.console.append(f"[pageerror] {error}"))
    page.on("request", lambda request: seen.navigations.append(
        f"{request.method} {request.url}") if request.is_navigation_request() else None)
    return seen


@pytest.fixture
def watched(page: Any) -> Watched:
    return _watch(page)


def _arrive_at(watched: Watched, callback: _CallbackServer, client: Client,
               step: str) -> dict[str, str]:
    """Wait for the browser to reach the client's redirect URI; its query as the relying
    party's server received it."""
    page = watched.page
    try:
        page.wait_for_url(lambda url: url.startswith(client.redirect_uri + "?"),
                          timeout=WAIT_MS)
    except Exception as error:  # noqa: BLE001 - Playwright's TimeoutError and kin
        pytest.fail(f"{step}: the browser never reached {client.redirect_uri} "
                    f"({type(error).__name__}); the callback received {callback.hits}"
                    f"{watched.report()}", pytrace=False)
    page.wait_for_load_state()
    assert "signed in" in page.inner_text("body")
    # What the relying party's server received is the request the browser shows (the state
    # in it is new every time; the browser also asks that server for a favicon).
    received = urlsplit(page.url)._replace(scheme="", netloc="").geturl()
    assert received in callback.hits, f"{step}: {callback.hits}{watched.report()}"
    return {k: v[0] for k, v in parse_qs(urlsplit(received).query).items()}


def _log_in(page: Any, email: str) -> None:
    page.fill("#identifier", email)
    page.fill("#password", PASSWORD)
    page.click("form[action='/login'] button[type=submit]")


def _on_login_page(page: Any, provider: Provider) -> None:
    page.wait_for_url(f"{provider.url}/login?**")
    next_path = parse_qs(urlsplit(page.url).query)["next"][0]
    assert next_path.startswith("/oauth/authorize?")
    assert page.locator("form[action='/login']").is_visible()


def _consent_form(page: Any) -> Any:
    form = page.locator("form[data-form=consent]")
    form.wait_for(timeout=WAIT_MS)
    return form


def _verified_id_token(provider: Provider, client: Client, token: dict[str, Any],
                       nonce: str) -> dict[str, Any]:
    """OIDC Core §3.1.3.7: signed with a published key, for this client, with our nonce."""
    jwks = httpx.get(f"{provider.url}/oauth/jwks").json()
    decoded = jwt.decode(token["id_token"], KeySet.import_key_set(jwks), algorithms=["RS256"])
    JWTClaimsRegistry(iss={"essential": True, "value": provider.url},
                      aud={"essential": True, "value": client.client_id},
                      nonce={"essential": True, "value": nonce},
                      sub={"essential": True}, exp={"essential": True},
                      iat={"essential": True}).validate(decoded.claims)
    return dict(decoded.claims)


def _exchange(provider: Provider, client: Client, code: str, verifier: str) -> httpx.Response:
    """The relying party's back channel: client_secret_basic and the PKCE verifier."""
    return httpx.post(f"{provider.url}/oauth/token",
                      auth=(client.client_id, client.secret),
                      data={"grant_type": "authorization_code", "code": code,
                            "redirect_uri": client.redirect_uri, "code_verifier": verifier})


# --- the tests --------------------------------------------------------------------------------
def _paths(watched: Watched) -> list[str]:
    return [urlsplit(n.split()[1]).path for n in watched.navigations]


def test_sign_in_with_consent_then_single_sign_on(provider, callback, watched, browser):
    page = watched.page
    client = provider.allowed
    first = _authorization_request(provider, client)

    # Not signed in: the authorization request waits behind sekisho's login page.
    page.goto(first.url)
    _on_login_page(page, provider)
    _log_in(page, provider.emails[0])

    # A third party: the member sees what it will receive before anything is released.
    form = _consent_form(page)
    assert urlsplit(page.url).path == "/oauth/authorize"
    shown = page.locator("[data-consent-scopes] li").all_inner_texts()
    labels = translations(LOCALE)
    assert shown == [labels.gettext(SCOPE_LABELS[s]) for s in SCOPES]
    form.locator("button[name=decision][value=allow]").click()

    query = _arrive_at(watched, callback, client, "consent 'allow' (POST /oauth/authorize)")
    assert query["state"] == first.state
    assert "error" not in query

    answer = _exchange(provider, client, query["code"], first.verifier)
    assert answer.status_code == 200, answer.text
    token = answer.json()
    assert token["token_type"].lower() == "bearer" and token["access_token"]
    claims = _verified_id_token(provider, client, token, first.nonce)
    assert claims["email"] == provider.emails[0]
    # A code is good once (RFC 6749 §4.1.2).
    assert _exchange(provider, client, query["code"], first.verifier).status_code == 400

    # Second visit, same browser: the sekisho session and the remembered consent mean the
    # browser goes straight back to the client.
    second = _authorization_request(provider, client)
    watched.navigations.clear()
    page.goto(second.url)
    again = _arrive_at(watched, callback, client, "second visit (GET /oauth/authorize)")
    assert again["state"] == second.state and again["code"] != query["code"]
    assert _paths(watched) == ["/oauth/authorize", "/callback"], watched.report()
    answer = _exchange(provider, client, again["code"], second.verifier)
    assert answer.status_code == 200, answer.text
    assert _verified_id_token(provider, client, answer.json(), second.nonce)["sub"] == \
        claims["sub"]

    # Another browser: the member logs in there, and the consent given is remembered, so
    # the login form's answer leads on to the client without the consent page.
    context = browser.new_context(locale="ja-JP")
    try:
        other = _watch(context.new_page())
        third = _authorization_request(provider, client)
        other.page.goto(third.url)
        _on_login_page(other.page, provider)
        _log_in(other.page, provider.emails[0])
        after_login = _arrive_at(other, callback, client, "login form (POST /login)")
        assert after_login["state"] == third.state
        assert _paths(other) == ["/oauth/authorize", "/login", "/login", "/oauth/authorize",
                                 "/callback"], other.report()
        answer = _exchange(provider, client, after_login["code"], third.verifier)
        assert answer.status_code == 200, answer.text
    finally:
        context.close()


def test_refusing_consent_sends_access_denied(provider, callback, watched):
    page = watched.page
    client = provider.denied
    request = _authorization_request(provider, client)

    page.goto(request.url)
    _on_login_page(page, provider)
    _log_in(page, provider.emails[1])
    _consent_form(page).locator("button[name=decision][value=deny]").click()

    query = _arrive_at(watched, callback, client, "consent 'deny' (POST /oauth/authorize)")
    assert query["error"] == "access_denied"
    assert query["state"] == request.state
    assert "code" not in query
