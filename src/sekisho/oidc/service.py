"""The OpenID provider as the routes use it: authorization decisions (login, step-up,
consent), the token-side endpoints, linked services, and what ends with a session."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import urlencode

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import scope_to_list
from authlib.oidc.core.errors import ConsentRequiredError, LoginRequiredError
from joserfc import jwt
from sqlalchemy import Connection, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from sekisho.context import RequestContext
from sekisho.core import Core
from sekisho.errors import SekishoError
from sekisho.events.models import OK, AuthEvent, EventKind
from sekisho.methods.second_factors import SecondFactors
from sekisho.oidc.clients import SCOPES, Client, ClientRegistry
from sekisho.oidc.keys import ALGORITHMS, LOGOUT_TOKEN_SECONDS, KeyRing
from sekisho.oidc.models import OAuthClient, OAuthLink, OAuthToken
from sekisho.oidc.server import (
    ACR_MFA,
    ACR_PASSWORD,
    EndUser,
    Provider,
    Request,
    current_connection,
)
from sekisho.sessions.service import ActiveSession
from sekisho.web.i18n import N_

T = TypeVar("T")
BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"
REVOKE_EVERYTHING = frozenset({"not_me", "password_reset", "contact_reverted"})
"""Session ends that mean someone else may have been in the account: every token of every
linked service goes, ``offline_access`` or not."""


@dataclass(frozen=True)
class Redirect:
    location: str


@dataclass(frozen=True)
class ConsentNeeded:
    client: Client
    scopes: list[str]
    request: str
    """The authorization request's query string, sent back with the decision."""


@dataclass(frozen=True)
class Refused:
    error: SekishoError


AuthorizeOutcome = Redirect | ConsentNeeded | Refused


@dataclass(frozen=True)
class LinkedService:
    client_id: str
    name: str
    since: datetime
    last_used: datetime
    scopes: list[str]


SCOPE_LABELS = {
    "openid": N_("Know that you are signed in (an ID that stays the same for this service)"),
    "profile": N_("Your name and language"),
    "email": N_("Your email address"),
    "phone": N_("Your phone number"),
    "offline_access": N_("Stay connected after you log out here"),
}
"""What each scope releases, as the consent page and the account page say it."""


def linked_view(service: LinkedService, local_time: Callable[[datetime], str]
                ) -> dict[str, Any]:
    return {"client_id": service.client_id, "name": service.name,
            "since": local_time(service.since), "last_used": local_time(service.last_used),
            "scopes": [SCOPE_LABELS[s] for s in service.scopes if s in SCOPE_LABELS]}


def _location(answer: tuple[int, Any, list[tuple[str, str]]]) -> str:
    return next(value for name, value in answer[2] if name.lower() == "location")


def authorize_path(query: list[tuple[str, str]], *, drop_login: bool = False) -> str:
    """This authorization request again, as a same-site path for ``next``. After a fresh
    login ``prompt=login`` has been honoured, so it is dropped to avoid asking twice."""
    items = []
    for key, value in query:
        if drop_login and key == "prompt":
            value = " ".join(p for p in value.split() if p != "login")
            if not value:
                continue
        items.append((key, value))
    return "/oauth/authorize?" + urlencode(items)


class OidcService:
    def __init__(self, core: Core, factors: SecondFactors) -> None:
        self.core = core
        self.factors = factors
        settings = core.settings
        secret = settings.resolved_secret_key()
        self.keys = KeyRing.from_settings(settings, core.clock)
        self.clients = ClientRegistry(core.clock, core.tokens)
        self.provider = Provider(settings, core.clock, core.tokens, self.keys, self.clients,
                                 secret)
        core.sessions.on_end.append(self.sessions_ended)

    async def run(self, work: Callable[[], T], *, write: bool = True) -> T:
        """``work`` inside one database unit, with Authlib's callbacks bound to it."""
        return await self.core.db.run(lambda conn: self.provider.within(conn, work),
                                      write=write)

    # --- discovery -----------------------------------------------------------------------
    def discovery(self) -> dict[str, Any]:
        issuer = self.core.settings.issuer
        return {
            "issuer": issuer,
            "authorization_endpoint": f"{issuer}/oauth/authorize",
            "token_endpoint": f"{issuer}/oauth/token",
            "userinfo_endpoint": f"{issuer}/oauth/userinfo",
            "jwks_uri": f"{issuer}/oauth/jwks",
            "revocation_endpoint": f"{issuer}/oauth/revoke",
            "introspection_endpoint": f"{issuer}/oauth/introspect",
            "end_session_endpoint": f"{issuer}/oauth/logout",
            "scopes_supported": list(SCOPES),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": list(ALGORITHMS),
            "token_endpoint_auth_methods_supported": [
                "client_secret_basic", "client_secret_post", "none"],
            "revocation_endpoint_auth_methods_supported": [
                "client_secret_basic", "client_secret_post", "none"],
            "introspection_endpoint_auth_methods_supported": [
                "client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
            "prompt_values_supported": ["none", "login", "consent"],
            "acr_values_supported": [ACR_PASSWORD, ACR_MFA],
            "claims_supported": [
                "sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "sid",
                "name", "locale", "updated_at", "email", "email_verified", "phone_number",
                "phone_number_verified"],
            "ui_locales_supported": ["ja", "en"],
            "claims_parameter_supported": False,
            "request_parameter_supported": False,
            "request_uri_parameter_supported": False,
            "backchannel_logout_supported": True,
            "backchannel_logout_session_supported": True,
        }

    async def jwks(self) -> dict[str, Any]:
        return await self.core.db.run(self.keys.jwks, write=True)

    # --- the authorization endpoint -------------------------------------------------------
    async def authorize(self, request: Request, query: list[tuple[str, str]],
                        active: ActiveSession | None, ctx: RequestContext,
                        decision: str | None = None) -> AuthorizeOutcome:
        """Decide what an authorization request needs: a login, a step-up, the member's
        consent, or nothing more (the code goes back to the client)."""
        return await self.run(lambda: self._authorize(request, query, active, ctx, decision))

    def _authorize(self, request: Request, query: list[tuple[str, str]],
                   active: ActiveSession | None, ctx: RequestContext,
                   decision: str | None) -> AuthorizeOutcome:
        provider = self.provider
        try:
            grant = provider.get_consent_grant(request, end_user=active.account if active
                                               else None)
        except OAuth2Error as error:
            return self._refusal(request, error)
        client: Client = request.client
        data = request.payload.data
        if not request.payload.redirect_uri:
            # OIDC Core §3.1.2.1: required, so there is never a guess where the code goes.
            return Refused(SekishoError("oidc.invalid_request",
                                        extra={"oauth_error": "invalid_request"}))
        if client.app_too_old(data.get("app_version")):
            return Refused(SekishoError("oidc.app_update_required"))
        prompts = set((data.get("prompt") or "").split())
        if active is None:
            return Redirect("/login?" + urlencode(
                {"next": authorize_path(query, drop_login=True)}))
        try:
            max_age = int(data["max_age"]) if data.get("max_age") else None
        except ValueError:
            max_age = -1
        if max_age is not None and max_age < 0:
            return self._refusal(request, OAuth2Error(
                "Invalid 'max_age'.", error="invalid_request", state=data.get("state"),
                redirect_uri=grant.redirect_uri))
        session, account = active.session, active.account
        now = self.core.clock.now()

        def fresh(moment: datetime | None) -> bool:
            return moment is not None and (
                max_age is None or now - moment <= timedelta(seconds=max_age))

        need_login = "login" in prompts or not fresh(session.authenticated_at)
        need_mfa = ACR_MFA in (data.get("acr_values") or "").split() and \
            not fresh(session.second_factor_at)
        if need_login or need_mfa:
            if "none" in prompts:
                return self._refusal(request, LoginRequiredError(
                    state=data.get("state"), redirect_uri=grant.redirect_uri))
            if need_mfa and not self.factors.methods(current_connection(), account):
                return Refused(SekishoError("oidc.second_factor_needed"))
            return Redirect("/oauth/reauthenticate?" + urlencode({
                "next": authorize_path(query, drop_login=True),
                "level": "mfa" if need_mfa else "password"}))
        scopes = scope_to_list(request.scope) or []
        link = self._link(account.id, client.client_id)
        if not client.first_party and (link is None or "consent" in prompts
                                       or not set(scopes) <= set(link.scopes)):
            if "none" in prompts:
                return self._refusal(request, ConsentRequiredError(
                    state=data.get("state"), redirect_uri=grant.redirect_uri))
            if decision is None:
                return ConsentNeeded(client, scopes, urlencode(query))
        if decision == "deny":
            return Redirect(_location(provider.create_authorization_response(
                request=request, grant_user=None, grant=grant)))
        link_id = self._keep_link(link, account.id, client.client_id, scopes, ctx)
        two_factors = session.second_factor_at is not None
        user = EndUser(account=account, session_id=session.id, link_id=link_id,
                       auth_time=session.authenticated_at,
                       acr=ACR_MFA if two_factors else ACR_PASSWORD,
                       amr=("pwd", "mfa") if two_factors else ("pwd",))
        return Redirect(_location(provider.create_authorization_response(
            request=request, grant_user=user, grant=grant)))

    def _refusal(self, request: Request, error: OAuth2Error) -> AuthorizeOutcome:
        """Errors go back to the client only once its redirect URI is proven (RFC 6749
        §4.1.2.1); before that the member sees the catalogue page, never a redirect."""
        if error.redirect_uri:
            return Redirect(_location(self.provider.handle_error_response(request, error)))
        return Refused(SekishoError("oidc.invalid_request", extra={
            "oauth_error": error.error, "detail": error.description or ""}))

    def _link(self, account_id: int, client_id: str) -> Any:
        links = OAuthLink.__table__
        return current_connection().execute(select(links).where(
            links.c.account_id == account_id, links.c.client_id == client_id,
            links.c.revoked_at.is_(None))).first()

    def _keep_link(self, link: Any, account_id: int, client_id: str, scopes: list[str],
                   ctx: RequestContext) -> int:
        links = OAuthLink.__table__
        now = self.core.clock.now()
        if link is not None:
            merged = list(dict.fromkeys([*link.scopes, *scopes]))
            current_connection().execute(update(links).where(links.c.id == link.id)
                            .values(scopes=merged, last_used_at=now))
            return int(link.id)
        created = current_connection().execute(insert(links).values(
            account_id=account_id, client_id=client_id, scopes=scopes, created_at=now,
            last_used_at=now))
        current_connection().execute(insert(AuthEvent.__table__).values(self.core.events.values(
            kind=EventKind.LINKED_SERVICE, outcome=OK, ctx=ctx, account_id=account_id,
            detail={"action": "link", "client_id": client_id, "scopes": scopes})))
        return int(created.inserted_primary_key[0])

    # --- token, userinfo, revocation, introspection, logout -------------------------------
    async def token(self, request: Request) -> tuple[int, Any, list[tuple[str, str]]]:
        return await self.run(lambda: self.provider.create_token_response(request))

    async def endpoint(self, name: str, request: Request
                       ) -> tuple[int, Any, list[tuple[str, str]]]:
        return await self.run(lambda: self.provider.create_endpoint_response(name, request),
                              write=name == "revocation")

    async def end_session(self, request: Request) -> Any:
        """The validated RP-initiated logout request (Authlib's ``EndSessionRequest``)."""
        return await self.run(
            lambda: self.provider.validate_endpoint_request("end_session", request),
            write=False)

    # --- linked services ------------------------------------------------------------------
    async def linked(self, account_id: int) -> list[LinkedService]:
        links, clients = OAuthLink.__table__, OAuthClient.__table__

        def load(conn: Connection) -> list[LinkedService]:
            rows = conn.execute(
                select(links, clients.c.name).join(clients,
                                                   clients.c.client_id == links.c.client_id)
                .where(links.c.account_id == account_id, links.c.revoked_at.is_(None))
                .order_by(links.c.last_used_at.desc())).all()
            return [LinkedService(row.client_id, row.name, row.created_at, row.last_used_at,
                                  list(row.scopes)) for row in rows]

        return await self.core.db.run(load)

    async def unlink(self, account_id: int, client_id: str, ctx: RequestContext) -> None:
        """End the link: its tokens stop working at once, the client hears of it through
        back-channel logout, and a new sign-in asks for consent again."""
        core = self.core
        links = OAuthLink.__table__
        async with core.db.transaction() as db:
            now = core.clock.now()
            link_ids = list(await db.scalars(
                update(links).where(links.c.account_id == account_id,
                                    links.c.client_id == client_id,
                                    links.c.revoked_at.is_(None))
                .values(revoked_at=now).returning(links.c.id)))
            if not link_ids:
                raise SekishoError("oidc.link_not_found")
            await self._revoke(db, OAuthToken.link_id.in_(link_ids), "unlinked")
            await core.events.record(db, kind=EventKind.LINKED_SERVICE, outcome=OK, ctx=ctx,
                                     account_id=account_id,
                                     detail={"action": "unlink", "client_id": client_id})
            await self._notify_logout(db, account_id, [(client_id, None)])

    # --- what ends with a sekisho session -------------------------------------------------
    async def sessions_ended(self, db: AsyncSession, account_id: int, ids: list[int],
                             reason: str) -> None:
        """Tokens issued in the ended sessions go (unless ``offline_access`` was granted;
        all of them after "this wasn't me" or a reset), and clients that registered a
        back-channel logout URI are told."""
        tokens = OAuthToken.__table__
        if reason in REVOKE_EVERYTHING:
            await self._revoke(db, tokens.c.account_id == account_id, reason)
        elif ids:
            families = [row.family for row in await db.execute(
                select(tokens.c.family, tokens.c.scope).where(
                    tokens.c.session_id.in_(ids), tokens.c.revoked_at.is_(None)))
                if "offline_access" not in row.scope.split()]
            if families:
                await self._revoke(db, tokens.c.family.in_(families), reason)
        if ids:
            pairs = (await db.execute(select(tokens.c.client_id, tokens.c.session_id)
                                      .where(tokens.c.session_id.in_(ids)).distinct())).all()
            await self._notify_logout(db, account_id, [(r.client_id, r.session_id)
                                                       for r in pairs])

    async def _revoke(self, db: AsyncSession, which: Any, reason: str) -> None:
        tokens = OAuthToken.__table__
        await db.execute(update(tokens).where(which, tokens.c.revoked_at.is_(None))
                         .values(revoked_at=self.core.clock.now(), revoke_reason=reason))

    async def _notify_logout(self, db: AsyncSession, account_id: int,
                             targets: list[tuple[str, int | None]]) -> None:
        if not targets or not self.core.settings.oidc_backchannel_logout:
            return
        clients = OAuthClient.__table__
        uris = dict((await db.execute(
            select(clients.c.client_id, clients.c.backchannel_logout_uri).where(
                clients.c.client_id.in_({client_id for client_id, _ in targets}),
                clients.c.backchannel_logout_uri.is_not(None)))).all())
        for client_id, session_id in targets:
            if client_id not in uris:
                continue
            connection = await db.connection()
            logout_token = await connection.run_sync(
                lambda conn, c=client_id, s=session_id: self.provider.within(
                    conn, lambda: self._logout_token(c, account_id, s)))
            await self.core.notifier.logout_notice(db, to=uris[client_id],
                                                   logout_token=logout_token,
                                                   account_id=account_id)

    def _logout_token(self, client_id: str, account_id: int, session_id: int | None) -> str:
        """OpenID Back-Channel Logout 1.0 §2.4: signed like the client's ID tokens."""
        provider = self.provider
        client = provider.clients.find(current_connection(), client_id)
        assert client is not None
        alg = client.id_token_signed_response_alg
        key = self.keys.signing_key(current_connection(), alg)
        now = int(self.core.clock.now().timestamp())
        claims: dict[str, Any] = {
            "iss": self.core.settings.issuer, "aud": client_id, "iat": now,
            "exp": now + LOGOUT_TOKEN_SECONDS, "jti": secrets.token_urlsafe(16),
            "sub": provider.subject(account_id), "events": {BACKCHANNEL_EVENT: {}}}
        if sid := provider.sid(session_id):
            claims["sid"] = sid
        return jwt.encode({"alg": alg, "kid": key.kid, "typ": "logout+jwt"}, claims, key, [alg])
