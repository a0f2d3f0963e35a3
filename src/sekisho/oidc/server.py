"""Authlib's authorization server, wired to sekisho's tables.

Authlib's grants and endpoints are synchronous: each request runs whole inside one
:meth:`Database.run` unit, with the connection in :data:`_CONN` for the callbacks Authlib
makes (``query_client`` is handed no request). The web layer (``oidc/routes.py``) reads the
request, calls in here, and turns the ``(status, body, headers)`` answer into a response.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from authlib.oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import (
    InvalidGrantError,
    InvalidRequestError,
    OAuth2Payload,
    OAuth2Request,
    ResourceProtector,
    TokenMixin,
    grants,
    scope_to_list,
)
from authlib.consts import default_json_headers
from authlib.oauth2.rfc6750 import (
    BearerTokenGenerator,
    BearerTokenValidator,
    InvalidTokenError,
)
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oidc.core import UserInfo, UserInfoEndpoint
from authlib.oidc.core.grants import OpenIDCode
from authlib.oidc.core.util import create_half_hash
from authlib.oidc.rpinitiated import EndSessionEndpoint
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import Connection, insert, select, update

from sekisho.clock import Clock, TokenSource
from sekisho.identity.models import Account, AccountStatus, IdentifierKind
from sekisho.identity.service import load_account
from sekisho.oidc.clients import SCOPES, Client, ClientRegistry
from sekisho.oidc.keys import KeyRing
from sekisho.oidc.models import OAuthCode, OAuthLink, OAuthToken
from sekisho.sessions.service import token_hash
from sekisho.settings import Settings

ACR_PASSWORD = "urn:sekisho:acr:pwd"
ACR_MFA = "urn:sekisho:acr:mfa"
"""``acr_values`` this provider knows: a password (or one factor), or two factors (a
second factor or a passkey with user verification). Asking for ``ACR_MFA`` is step-up."""
T = TypeVar("T")
_CONN: ContextVar[Connection] = ContextVar("sekisho_oidc_connection")


def current_connection() -> Connection:
    return _CONN.get()


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


class Payload(OAuth2Payload):  # type: ignore[misc]
    def __init__(self, items: list[tuple[str, str]]) -> None:
        self._data: dict[str, str] = {}
        self._datalist: defaultdict[str, list[str]] = defaultdict(list)
        for key, value in items:
            self._data.setdefault(key, value)
            self._datalist[key].append(value)

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return self._datalist


class Request(OAuth2Request):  # type: ignore[misc]
    """An HTTP request as Authlib reads it, built from what the route already read."""

    def __init__(self, method: str, uri: str, headers: Mapping[str, str],
                 query: list[tuple[str, str]], form: list[tuple[str, str]]) -> None:
        super().__init__(method, uri, headers=headers)
        self._args = dict(query)
        self._form = dict(form)
        self.payload = Payload(query + form)

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form


@dataclass(frozen=True)
class EndUser:
    """The member behind an authorization: their account and how they signed in."""

    account: Account
    session_id: int | None
    link_id: int
    auth_time: datetime
    acr: str
    amr: tuple[str, ...]


@dataclass
class IssuedToken(TokenMixin):  # type: ignore[misc]
    """A row of ``oauth_tokens`` and which of its two tokens was presented."""

    row: Any
    kind: str
    """``access_token`` or ``refresh_token``."""
    now: datetime
    client: Client | None = None

    def check_client(self, client: Client) -> bool:
        return bool(self.row.client_id == client.client_id)

    def get_scope(self) -> str:
        return str(self.row.scope)

    def get_expires_in(self) -> int:
        return int((self.expires_at - self.row.issued_at).total_seconds())

    @property
    def expires_at(self) -> datetime:
        if self.kind == "refresh_token":
            return self.row.refresh_expires_at  # type: ignore[no-any-return]
        return self.row.access_expires_at  # type: ignore[no-any-return]

    def is_expired(self) -> bool:
        return self.now >= self.expires_at

    def is_revoked(self) -> bool:
        if self.row.revoked_at is not None:
            return True
        return self.kind == "refresh_token" and self.row.rotated_at is not None

    def get_user(self) -> Account | None:
        return load_account(current_connection(), self.row.account_id)

    def get_client(self) -> Client | None:
        return self.client


@dataclass(frozen=True)
class StoredCode:
    """A redeemed authorization code, as the grant and the ID token need it."""

    row: Any

    def get_redirect_uri(self) -> str:
        return str(self.row.redirect_uri)

    def get_scope(self) -> str:
        return str(self.row.scope)

    def get_nonce(self) -> str | None:
        return self.row.nonce  # type: ignore[no-any-return]

    def get_auth_time(self) -> int:
        return _epoch(self.row.auth_time)

    def get_acr(self) -> str | None:
        return self.row.acr  # type: ignore[no-any-return]

    def get_amr(self) -> list[str]:
        return list(self.row.amr)

    @property
    def code_challenge(self) -> str | None:
        return self.row.code_challenge  # type: ignore[no-any-return]

    @property
    def code_challenge_method(self) -> str | None:
        return self.row.code_challenge_method  # type: ignore[no-any-return]


def user_claims(account: Account, sub: str, scope: str) -> UserInfo:
    """The claims a scope releases (OIDC Core §5.4)."""
    scopes = set(scope_to_list(scope) or [])
    info = UserInfo(sub=sub)
    if "profile" in scopes:
        if account.display_name:
            info["name"] = account.display_name
        info["locale"] = account.locale
        info["updated_at"] = _epoch(account.updated_at)
    if "email" in scopes:
        info["email"] = account.email
        info["email_verified"] = account.email_verified_at is not None
    if "phone" in scopes:
        phone = next((i for i in account.identifiers if i.kind == IdentifierKind.PHONE
                      and i.active and i.verified_at is not None), None)
        if phone is not None:
            info["phone_number"] = phone.value
            info["phone_number_verified"] = True
    return info


class Pkce(CodeChallenge):  # type: ignore[misc]
    """PKCE with S256, required of every client (ASVS 5.0 10.4.6, OAuth 2.1): ``plain``
    protects nothing once the request leaks, and a confidential client's secret does not
    stop an injected code."""

    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        super().validate_code_challenge(grant, redirect_uri)
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("PKCE with S256 is required.")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("'code_challenge_method' must be S256.")

    def validate_code_verifier(self, grant: Any, result: Any) -> None:
        # The code was issued for one verifier; without it the grant is simply invalid.
        if not grant.request.form.get("code_verifier"):
            raise InvalidGrantError("Missing 'code_verifier'.")
        super().validate_code_verifier(grant, result)


class Provider(AuthorizationServer):  # type: ignore[misc]
    """The authorization server: grants, endpoints and the storage callbacks."""

    def __init__(self, settings: Settings, clock: Clock, tokens: TokenSource,
                 keys: KeyRing, clients: ClientRegistry, secret_key: bytes) -> None:
        super().__init__(scopes_supported=list(SCOPES))
        self.settings = settings
        self.clock = clock
        self.tokens = tokens
        self.keys = keys
        self.clients = clients
        self._subject_key = hmac.new(secret_key, b"oidc-subject", hashlib.sha256).digest()
        self._sid_key = hmac.new(secret_key, b"oidc-sid", hashlib.sha256).digest()
        self.register_token_generator("default", BearerTokenGenerator(
            lambda **_: tokens.token(32), lambda **_: tokens.token(32),
            lambda client, grant_type: settings.oidc_access_token_lifetime_seconds))
        self.register_grant(CodeGrant, [Pkce(required=True), OpenIDCodeExtension(self)])
        self.register_grant(RefreshGrant)
        self.register_endpoint(Revocation(self))
        self.register_endpoint(Introspection(self))
        self.register_endpoint(EndSession(self))
        self.userinfo = UserInfo_(self)
        self.register_endpoint(self.userinfo)

    # --- running a request ----------------------------------------------------------
    @contextmanager
    def bound(self, conn: Connection) -> Iterator[None]:
        """Authlib's callbacks use ``conn`` while inside."""
        token = _CONN.set(conn)
        try:
            yield
        finally:
            _CONN.reset(token)

    def within(self, conn: Connection, work: Callable[[], T]) -> T:
        with self.bound(conn):
            return work()

    # --- identifiers ----------------------------------------------------------------
    def subject(self, account_id: int) -> str:
        """The ``sub`` claim: stable per member, not the member ID or card number (which
        log in), so a relying party learns no login identifier."""
        return hmac.new(self._subject_key, str(account_id).encode(),
                        hashlib.sha256).hexdigest()[:32]

    def sid(self, session_id: int | None) -> str | None:
        """The ``sid`` claim naming a sekisho session, for back-channel logout."""
        if session_id is None:
            return None
        return hmac.new(self._sid_key, str(session_id).encode(), hashlib.sha256).hexdigest()[:32]

    # --- Authlib's framework hooks --------------------------------------------------------
    def query_client(self, client_id: str) -> Client | None:
        return self.clients.find(current_connection(), client_id)

    def create_oauth2_request(self, request: Request) -> Request:
        return request

    def create_json_request(self, request: Request) -> Request:
        return request

    def handle_response(self, status: int, body: Any, headers: Any
                        ) -> tuple[int, Any, list[tuple[str, str]]]:
        return status, body, list(headers)

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        return None

    def save_token(self, token: dict[str, Any], request: Request) -> None:
        now = self.clock.now()
        origin = request.authorization_code or request.refresh_token
        row = origin.row
        family_ends = row.family_expires_at if isinstance(origin, IssuedToken) else \
            now + timedelta(seconds=self.settings.oidc_refresh_family_lifetime_seconds)
        refresh = token.get("refresh_token")
        current_connection().execute(insert(OAuthToken.__table__).values(
            family=row.family, client_id=request.client.client_id, account_id=request.user.id,
            link_id=row.link_id, session_id=row.session_id, scope=token["scope"],
            access_token_hash=token_hash(token["access_token"]),
            refresh_token_hash=token_hash(refresh) if refresh else None, issued_at=now,
            access_expires_at=now + timedelta(seconds=token["expires_in"]),
            refresh_expires_at=min(family_ends, now + timedelta(
                seconds=self.settings.oidc_refresh_token_lifetime_seconds)) if refresh else None,
            family_expires_at=family_ends, auth_time=row.auth_time))
        links = OAuthLink.__table__
        current_connection().execute(update(links).where(links.c.id == row.link_id)
                                     .values(last_used_at=now))

    # --- shared by the grants and endpoints -------------------------------------------
    def find_token(self, value: str, hint: str | None = None) -> IssuedToken | None:
        table = OAuthToken.__table__
        hashed = token_hash(value)
        kinds = ("refresh_token", "access_token") if hint == "refresh_token" else \
            ("access_token", "refresh_token")
        for kind in kinds:
            column = table.c.refresh_token_hash if kind == "refresh_token" else \
                table.c.access_token_hash
            row = current_connection().execute(select(table).where(column == hashed)).first()
            if row is not None:
                return IssuedToken(row, kind, self.clock.now(),
                                   self.clients.find(current_connection(), row.client_id))
        return None

    def revoke_family(self, family: str, reason: str) -> None:
        table = OAuthToken.__table__
        current_connection().execute(update(table).where(table.c.family == family,
                                            table.c.revoked_at.is_(None))
                        .values(revoked_at=self.clock.now(), revoke_reason=reason))

    def active_account(self, account_id: int) -> Account | None:
        account = load_account(current_connection(), account_id)
        if account is None or account.status != AccountStatus.ACTIVE:
            return None
        return account

    def id_token(self, client: Client, claims: dict[str, Any]) -> str:
        key = self.keys.signing_key(current_connection(), client.id_token_signed_response_alg)
        now = self.clock.now()
        claims = {"iss": self.settings.issuer, "aud": client.client_id, "iat": _epoch(now),
                  "exp": _epoch(now) + self.settings.oidc_id_token_lifetime_seconds, **claims}
        header = {"alg": client.id_token_signed_response_alg, "kid": key.kid, "typ": "JWT"}
        return jwt.encode(header, claims, key, [client.id_token_signed_response_alg])

    def verification_keys(self) -> KeySet:
        return self.keys.published(current_connection())


class CodeGrant(grants.AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]
    server: Provider

    def save_authorization_code(self, code: str, request: Request) -> None:
        user: EndUser = request.user
        data = request.payload.data
        now = self.server.clock.now()
        current_connection().execute(insert(OAuthCode.__table__).values(
            code_hash=token_hash(code), family=self.server.tokens.token(16),
            client_id=request.client.client_id, account_id=user.account.id,
            link_id=user.link_id, session_id=user.session_id,
            redirect_uri=request.payload.redirect_uri, scope=request.scope,
            nonce=data.get("nonce"), code_challenge=data.get("code_challenge"),
            code_challenge_method=data.get("code_challenge_method"),
            auth_time=user.auth_time, acr=user.acr, amr=list(user.amr),
            expires_at=now + timedelta(seconds=self.server.settings.oidc_code_lifetime_seconds)))

    def query_authorization_code(self, code: str, client: Client) -> StoredCode | None:
        """The code, claimed for this request: of two redemptions exactly one wins. A code
        presented again revokes what it was exchanged for (RFC 6749 §4.1.2)."""
        table = OAuthCode.__table__
        conn = current_connection()
        row = conn.execute(select(table).where(table.c.code_hash == token_hash(code),
                                               table.c.client_id == client.client_id)).first()
        if row is None:
            return None
        now = self.server.clock.now()
        claimed = conn.execute(update(table).where(
            table.c.id == row.id, table.c.used_at.is_(None)).values(used_at=now)).rowcount
        if not claimed:
            self.server.revoke_family(row.family, "code_reused")
            return None
        if now >= row.expires_at:
            return None
        return StoredCode(row)

    def delete_authorization_code(self, authorization_code: StoredCode) -> None:
        """Already spent when it was claimed."""

    def authenticate_user(self, authorization_code: StoredCode) -> Account | None:
        links = OAuthLink.__table__
        live = current_connection().execute(select(links.c.id).where(
            links.c.id == authorization_code.row.link_id, links.c.revoked_at.is_(None))).first()
        return self.server.active_account(authorization_code.row.account_id) if live else None


class OpenIDCodeExtension(OpenIDCode):  # type: ignore[misc]
    """ID tokens for the code flow, signed with the key ring through joserfc."""

    def __init__(self, provider: Provider) -> None:
        super().__init__(require_nonce=False)
        self.provider = provider

    def exists_nonce(self, nonce: str, request: Request) -> bool:
        table = OAuthCode.__table__
        return current_connection().execute(select(table.c.id).where(
            table.c.client_id == request.payload.client_id, table.c.nonce == nonce)
        ).first() is not None

    def encode_id_token(self, token: dict[str, Any], request: Request) -> str:
        provider = self.provider
        code: StoredCode = request.authorization_code
        client: Client = request.client
        claims: dict[str, Any] = dict(user_claims(
            request.user, provider.subject(request.user.id), token["scope"]))
        claims.update(self.get_authorization_code_claims(code))
        claims["at_hash"] = create_half_hash(
            token["access_token"], client.id_token_signed_response_alg).decode()
        if sid := provider.sid(code.row.session_id):
            claims["sid"] = sid
        return provider.id_token(client, claims)


class RefreshGrant(grants.RefreshTokenGrant):  # type: ignore[misc]
    """Refresh with rotation: every use returns a new refresh token and spends the old
    one; an old one presented again means it leaked, so the whole family is revoked."""

    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]
    INCLUDE_NEW_REFRESH_TOKEN = True
    server: Provider

    def authenticate_refresh_token(self, refresh_token: str) -> IssuedToken | None:
        found = self.server.find_token(refresh_token, "refresh_token")
        if found is None or found.kind != "refresh_token":
            return None
        row = found.row
        if row.revoked_at is not None or found.is_expired():
            return None
        if row.rotated_at is not None:
            self.server.revoke_family(row.family, "refresh_reused")
            return None
        return found

    def validate_token_request(self) -> None:
        """Spend the refresh token only once the request is otherwise valid (its client,
        its scope): a bad request must not cost the member the sign-in."""
        super().validate_token_request()
        row = self.request.refresh_token.row
        table = OAuthToken.__table__
        claimed = current_connection().execute(update(table).where(
            table.c.id == row.id, table.c.rotated_at.is_(None))
            .values(rotated_at=self.server.clock.now())).rowcount
        if not claimed:
            # Spent by a request racing this one: treated as reuse, since the server cannot
            # tell a thief from a retry (RFC 9700 §4.14.2).
            self.server.revoke_family(row.family, "refresh_reused")
            raise InvalidGrantError()

    def authenticate_user(self, refresh_token: IssuedToken) -> Account | None:
        return self.server.active_account(refresh_token.row.account_id)

    def revoke_old_credential(self, refresh_token: IssuedToken) -> None:
        """Spent when it was claimed; its access token lives out its short life."""


class Revocation(RevocationEndpoint):  # type: ignore[misc]
    """RFC 7009. Revoking either token of a grant revokes the whole family: a relying
    party signing a member out wants nothing of that sign-in left."""

    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]
    server: Provider

    def query_token(self, token_string: str, token_type_hint: str | None
                    ) -> IssuedToken | None:
        return self.server.find_token(token_string, token_type_hint)

    def revoke_token(self, token: IssuedToken, request: Request) -> None:
        self.server.revoke_family(token.row.family, "revoked_by_client")


class Introspection(IntrospectionEndpoint):  # type: ignore[misc]
    """RFC 7662, for resource servers: registered as confidential clients, they may ask
    about any token."""

    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]
    server: Provider

    def query_token(self, token_string: str, token_type_hint: str | None
                    ) -> IssuedToken | None:
        return self.server.find_token(token_string, token_type_hint)

    def check_permission(self, token: IssuedToken, client: Client, request: Request) -> bool:
        return not client.public

    def introspect_token(self, token: IssuedToken) -> dict[str, Any]:
        row = token.row
        return {"active": True, "client_id": row.client_id, "scope": row.scope,
                "sub": self.server.subject(row.account_id), "token_type":
                "Bearer" if token.kind == "access_token" else "refresh_token",
                "iss": self.server.settings.issuer, "aud": row.client_id,
                "iat": _epoch(row.issued_at), "exp": _epoch(token.expires_at),
                "auth_time": _epoch(row.auth_time)}


class AccessTokens(BearerTokenValidator):  # type: ignore[misc]
    def __init__(self, provider: Provider) -> None:
        super().__init__()
        self.provider = provider

    def authenticate_token(self, token_string: str) -> IssuedToken | None:
        found = self.provider.find_token(token_string, "access_token")
        return found if found is not None and found.kind == "access_token" else None


class UserInfo_(UserInfoEndpoint):  # type: ignore[misc]
    """The userinfo endpoint: the claims the access token's scopes release."""

    def __init__(self, provider: Provider) -> None:
        protector = ResourceProtector()
        protector.register_token_validator(AccessTokens(provider))
        super().__init__(provider, protector)
        self.provider = provider

    def __call__(self, request: Request) -> tuple[int, Any, list[tuple[str, str]]]:
        token: IssuedToken = self.resource_protector.validate_request(["openid"], request)
        account = self.provider.active_account(token.row.account_id)
        if account is None:
            raise InvalidTokenError()
        return 200, self.generate_user_info(account, token.get_scope()), default_json_headers

    def generate_user_info(self, user: Account, scope: str) -> UserInfo:
        return user_claims(user, self.provider.subject(user.id), scope)

    def get_issuer(self) -> str:
        return self.provider.settings.issuer


class EndSession(EndSessionEndpoint):  # type: ignore[misc]
    """RP-initiated logout: validated here; ending the session is the route's work."""

    server: Provider

    def get_server_jwks(self) -> KeySet:
        return self.server.verification_keys()

    def end_session(self, end_session_request: Any) -> None:
        """The route ends the sekisho session (and notifies other clients) itself."""
