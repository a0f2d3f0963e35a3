"""Relying parties: registering them (CLI and admin API) and what Authlib asks of them."""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from authlib.oauth2.rfc6749 import ClientMixin, scope_to_list
from sqlalchemy import Connection, delete, insert, select, update

from sekisho.clock import Clock, TokenSource
from sekisho.errors import SekishoError
from sekisho.oidc.models import OAuthClient
from sekisho.sessions.service import token_hash

SCOPES = ("openid", "profile", "email", "phone", "offline_access")
"""``offline_access`` keeps the refresh tokens alive when the member logs out of sekisho."""
CONFIDENTIAL_METHODS = ("client_secret_basic", "client_secret_post")
PUBLIC = "none"
_VERSION = re.compile(r"^\d+(\.\d+){0,3}$")


def version_tuple(value: str) -> tuple[int, ...]:
    return tuple(int(part) for part in value.split("."))


@dataclass(frozen=True)
class Client(ClientMixin):  # type: ignore[misc]
    """A registered client as Authlib's grants and endpoints see it."""

    client_id: str
    name: str
    secret_hash: str | None
    redirect_uris: tuple[str, ...]
    post_logout_redirect_uris: tuple[str, ...]
    scopes: tuple[str, ...]
    first_party: bool
    token_endpoint_auth_method: str
    id_token_signed_response_alg: str
    backchannel_logout_uri: str | None
    min_app_version: str | None
    client_metadata: dict[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def from_row(cls, row: Any) -> Client:
        return cls(
            client_id=row.client_id, name=row.name, secret_hash=row.secret_hash,
            redirect_uris=tuple(row.redirect_uris),
            post_logout_redirect_uris=tuple(row.post_logout_redirect_uris),
            scopes=tuple(row.scopes), first_party=row.first_party,
            token_endpoint_auth_method=row.token_endpoint_auth_method,
            id_token_signed_response_alg=row.id_token_signed_response_alg,
            backchannel_logout_uri=row.backchannel_logout_uri,
            min_app_version=row.min_app_version,
            client_metadata={"post_logout_redirect_uris": list(row.post_logout_redirect_uris)})

    @property
    def public(self) -> bool:
        return self.token_endpoint_auth_method == PUBLIC

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        # Only when exactly one is registered: guessing among several is how codes leak.
        return self.redirect_uris[0] if len(self.redirect_uris) == 1 else None

    def get_allowed_scope(self, scope: str | None) -> str:
        if not scope:
            return ""
        return " ".join(s for s in scope_to_list(scope) if s in self.scopes)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        if self.secret_hash is None:
            return False
        return hmac.compare_digest(self.secret_hash, token_hash(client_secret))

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if self.public:
            return method == PUBLIC
        return method in CONFIDENTIAL_METHODS

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in ("authorization_code", "refresh_token")

    def app_too_old(self, app_version: str | None) -> bool:
        if not self.min_app_version:
            return False
        if not app_version or not _VERSION.match(app_version):
            return True
        return version_tuple(app_version) < version_tuple(self.min_app_version)


@dataclass(frozen=True)
class ClientSpec:
    """What an operator registers (``sekisho oidc client add``, ``POST
    /api/v1/admin/oidc/clients``)."""

    name: str
    redirect_uris: list[str]
    public: bool = False
    first_party: bool = False
    scopes: list[str] = field(default_factory=lambda: ["openid", "profile", "email"])
    post_logout_redirect_uris: list[str] = field(default_factory=list)
    backchannel_logout_uri: str | None = None
    id_token_signed_response_alg: str = "RS256"
    min_app_version: str | None = None
    token_endpoint_auth_method: str | None = None

    def validated(self) -> ClientSpec:
        def refuse(name: str, reason: str) -> SekishoError:
            return SekishoError("request.invalid", field=name, params={"reason": reason})

        if not self.name.strip() or len(self.name) > 100:
            raise refuse("name", "missing")
        if not self.redirect_uris:
            raise refuse("redirect_uris", "missing")
        for name, uris in (("redirect_uris", self.redirect_uris),
                           ("post_logout_redirect_uris", self.post_logout_redirect_uris)):
            for uri in uris:
                if not _acceptable_redirect(uri):
                    raise refuse(name, "invalid")
        if self.backchannel_logout_uri and not _web_uri(self.backchannel_logout_uri):
            raise refuse("backchannel_logout_uri", "invalid")
        if not self.scopes or "openid" not in self.scopes or \
                any(s not in SCOPES for s in self.scopes):
            raise refuse("scopes", "invalid")
        if self.id_token_signed_response_alg not in ("RS256", "ES256"):
            raise refuse("id_token_signed_response_alg", "invalid")
        if self.min_app_version and not _VERSION.match(self.min_app_version):
            raise refuse("min_app_version", "invalid")
        method = self.token_endpoint_auth_method
        if method is not None and method not in (PUBLIC, *CONFIDENTIAL_METHODS):
            raise refuse("token_endpoint_auth_method", "invalid")
        if method is not None and (method == PUBLIC) != self.public:
            raise refuse("token_endpoint_auth_method", "invalid")
        return self


def _web_uri(uri: str) -> bool:
    parts = urlsplit(uri)
    if parts.scheme == "https":
        return bool(parts.hostname)
    # Plain HTTP only on loopback (RFC 8252 §7.3): development and native apps.
    return parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1")


def _acceptable_redirect(uri: str) -> bool:
    """HTTPS, loopback HTTP, or an app's private-use scheme (``com.example.app:/cb``,
    RFC 8252 §7.1); never a fragment (RFC 6749 §3.1.2), never a wildcard."""
    if len(uri) > 500 or "#" in uri or "*" in uri:
        return False
    scheme = urlsplit(uri).scheme
    if scheme in ("http", "https"):
        return _web_uri(uri)
    return bool(re.fullmatch(r"[a-z][a-z0-9+\-]*(\.[a-z0-9+\-]+)+", scheme))


class ClientRegistry:
    def __init__(self, clock: Clock, tokens: TokenSource) -> None:
        self._clock = clock
        self._tokens = tokens

    def find(self, conn: Connection, client_id: str | None) -> Client | None:
        if not client_id or len(client_id) > 64:
            return None
        table = OAuthClient.__table__
        row = conn.execute(select(table).where(table.c.client_id == client_id,
                                               table.c.disabled_at.is_(None))).first()
        return Client.from_row(row) if row else None

    def register(self, conn: Connection, spec: ClientSpec) -> tuple[Client, str | None]:
        """The new client and, for a confidential one, its secret (shown once, never
        stored)."""
        spec = spec.validated()
        client_id = self._tokens.token(16)
        secret = None if spec.public else self._tokens.token(32)
        method = spec.token_endpoint_auth_method or (
            PUBLIC if spec.public else "client_secret_basic")
        conn.execute(insert(OAuthClient.__table__).values(
            client_id=client_id, secret_hash=token_hash(secret) if secret else None,
            name=spec.name.strip(), redirect_uris=list(spec.redirect_uris),
            post_logout_redirect_uris=list(spec.post_logout_redirect_uris),
            scopes=list(dict.fromkeys(spec.scopes)), first_party=spec.first_party,
            token_endpoint_auth_method=method,
            id_token_signed_response_alg=spec.id_token_signed_response_alg,
            backchannel_logout_uri=spec.backchannel_logout_uri,
            min_app_version=spec.min_app_version, created_at=self._clock.now()))
        client = self.find(conn, client_id)
        assert client is not None
        return client, secret

    def rotate_secret(self, conn: Connection, client_id: str) -> str:
        client = self.find(conn, client_id)
        if client is None or client.public:
            raise SekishoError("oidc.client_not_found")
        secret = self._tokens.token(32)
        table = OAuthClient.__table__
        conn.execute(update(table).where(table.c.client_id == client_id)
                     .values(secret_hash=token_hash(secret)))
        return secret

    def listing(self, conn: Connection) -> list[Client]:
        table = OAuthClient.__table__
        rows = conn.execute(select(table).where(table.c.disabled_at.is_(None))
                            .order_by(table.c.id)).all()
        return [Client.from_row(row) for row in rows]

    def remove(self, conn: Connection, client_id: str) -> None:
        table = OAuthClient.__table__
        if not conn.execute(delete(table).where(table.c.client_id == client_id)).rowcount:
            raise SekishoError("oidc.client_not_found")


def describe_client(client: Client) -> dict[str, Any]:
    """A client as the admin API and the CLI show it (never the secret or its hash)."""
    return {
        "client_id": client.client_id, "name": client.name,
        "type": "public" if client.public else "confidential",
        "token_endpoint_auth_method": client.token_endpoint_auth_method,
        "redirect_uris": list(client.redirect_uris),
        "post_logout_redirect_uris": list(client.post_logout_redirect_uris),
        "scopes": list(client.scopes), "first_party": client.first_party,
        "backchannel_logout_uri": client.backchannel_logout_uri,
        "id_token_signed_response_alg": client.id_token_signed_response_alg,
        "min_app_version": client.min_app_version,
    }
