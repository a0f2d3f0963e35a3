"""Relying parties for the provider tests: registering them, PKCE pairs, signing a member in
through the real login form, and reading the redirect a code comes back on."""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from fastapi import FastAPI
from support.factories import Member
from support.pages import submit

from sekisho.oidc.clients import ClientSpec

REDIRECT = "http://127.0.0.1:9999/callback"
"""Nothing listens here: the tests read the code off the redirect."""


@dataclass(frozen=True)
class Registered:
    client_id: str
    secret: str | None


async def register(app: FastAPI, **spec: Any) -> Registered:
    service = app.state.oidc
    values = {"name": "Ticket App", "redirect_uris": [REDIRECT], **spec}
    client, secret = await service.core.db.run(
        lambda conn: service.clients.register(conn, ClientSpec(**values)), write=True)
    return Registered(client.client_id, secret)


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


async def log_in(http: httpx.AsyncClient, member: Member) -> None:
    r = await submit(http, "/login", "/login",
                     {"identifier": member.email, "password": member.password})
    assert r.status_code == 303, r.text


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def authorize_params(client: Registered, challenge: str | None, **extra: str) -> dict[str, str]:
    params = {"response_type": "code", "client_id": client.client_id, "redirect_uri": REDIRECT,
              "scope": "openid profile email", "state": "st-" + secrets.token_hex(4),
              "nonce": "n-" + secrets.token_hex(4), **extra}
    if challenge:
        params.update(code_challenge=challenge, code_challenge_method="S256")
    return params


async def code_for(http: httpx.AsyncClient, client: Registered, challenge: str | None,
                   **extra: str) -> str:
    """Authorize a first-party client (no consent page) and return the code."""
    r = await http.get("/oauth/authorize", params=authorize_params(client, challenge, **extra))
    assert r.status_code == 302, r.text
    location = r.headers["location"]
    assert location.startswith(REDIRECT), location
    return query_of(location)["code"]


async def exchange(http: httpx.AsyncClient, client: Registered, code: str,
                   verifier: str | None) -> httpx.Response:
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
    if verifier:
        data["code_verifier"] = verifier
    auth = (client.client_id, client.secret) if client.secret else None
    if auth is None:
        data["client_id"] = client.client_id
    return await http.post("/oauth/token", data=data, auth=auth)
