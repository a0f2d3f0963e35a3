"""The OpenID provider's HTTP face: discovery, JWKS, the authorization endpoint with its
consent and step-up pages, and the token-side endpoints (RFC error codes there; the
catalogue on pages members see)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode

from authlib.oauth2 import OAuth2Error

from fastapi import APIRouter, Depends, Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from sekisho.errors import SekishoError
from sekisho.oidc.server import Request as OAuthRequest
from sekisho.oidc.service import (
    SCOPE_LABELS,
    AuthorizeOutcome,
    ConsentNeeded,
    OidcService,
    Redirect,
)
from sekisho.sessions.service import ActiveSession
from sekisho.web.cookies import clear_session_cookie, known_device_cookie
from sekisho.web.deps import optional_session
from sekisho.web.forms import error_view, form_data, redirect, run_once, safe_next

router = APIRouter(include_in_schema=False)



def oidc(request: Request) -> OidcService:
    return request.app.state.oidc  # type: ignore[no-any-return]


def _oauth_request(request: Request, query: list[tuple[str, str]],
                   form: list[tuple[str, str]]) -> OAuthRequest:
    issuer = request.app.state.core.settings.issuer
    return OAuthRequest(request.method, issuer + request.url.path, request.headers, query,
                        form)


async def _form_pairs(request: Request) -> list[tuple[str, str]]:
    form = await request.form()
    return [(k, v) for k, v in form.multi_items() if isinstance(v, str)]


def _answer(result: tuple[int, Any, list[tuple[str, str]]]) -> Response:
    status, body, headers = result
    if isinstance(body, dict):
        return JSONResponse(body, status_code=status, headers=dict(headers))
    return Response(body, status_code=status, headers=dict(headers))


_PUBLIC = {"Cache-Control": "public, max-age=3600", "Access-Control-Allow-Origin": "*"}
"""Discovery and keys are public and may be cached for an hour (a rotated key is published
a day before it signs). Only they answer scripts on other origins: tokens stay with the
relying party's server (a backend for a browser app, ASVS 5.0 10.1.1)."""


@router.get("/.well-known/openid-configuration")
async def discovery(request: Request) -> JSONResponse:
    return JSONResponse(oidc(request).discovery(), headers=_PUBLIC)


@router.get("/oauth/jwks")
async def jwks(request: Request) -> JSONResponse:
    return JSONResponse(await oidc(request).jwks(), headers=_PUBLIC)


# --- the authorization endpoint -----------------------------------------------------------
@router.get("/oauth/authorize")
async def authorize(request: Request,
                    active: ActiveSession | None = Depends(optional_session)) -> Response:
    query = list(request.query_params.multi_items())
    outcome = await oidc(request).authorize(_oauth_request(request, query, []), query, active,
                                            request.state.facts.context())
    return _outcome(request, outcome)


@router.post("/oauth/authorize")
async def consent_submit(request: Request,
                         active: ActiveSession | None = Depends(optional_session)) -> Response:
    """The consent page's answer: ``decision`` (allow or deny) and the original request."""
    data = await form_data(request)

    async def act(data: dict[str, str]) -> Response:
        query = parse_qsl(data.get("request", ""), keep_blank_values=True)
        decision = "allow" if data.get("decision") == "allow" else "deny"
        outcome = await oidc(request).authorize(_oauth_request(request, query, []), query,
                                                active, request.state.facts.context(),
                                                decision=decision)
        return _outcome(request, outcome)

    return await run_once(request, data, act)


def leave_for(request: Request, location: str) -> Response:
    """Send the browser to a relying party.

    Pages here allow forms to submit only to sekisho (``form-action 'self'``), and browsers
    apply that to every redirect after a form: the login, consent or step-up form, then the
    redirect to the client, would be blocked. So when the way here began on one of our own
    pages (``Sec-Fetch-Site: same-origin``), a page takes the last step instead, as a new
    navigation; anything else, such as a relying party sending the browser here, gets the
    plain redirect.
    """
    if location.startswith("/") or request.headers.get("sec-fetch-site") != "same-origin":
        return RedirectResponse(location, status_code=303 if request.method == "POST" else 302)
    return request.app.state.pages.render(request, "oauth_continue.html",
                                          {"location": location})


def _outcome(request: Request, outcome: AuthorizeOutcome) -> Response:
    if isinstance(outcome, Redirect):
        return leave_for(request, outcome.location)
    if isinstance(outcome, ConsentNeeded):
        return request.app.state.pages.render(request, "oauth_consent.html", {
            "client": outcome.client, "request_query": outcome.request,
            "scopes": [SCOPE_LABELS[s] for s in outcome.scopes if s in SCOPE_LABELS]})
    raise outcome.error


# --- step-up for relying parties (prompt=login, max_age, acr_values) -------------------
@router.get("/oauth/reauthenticate")
async def reauthenticate_page(request: Request,
                              active: ActiveSession | None = Depends(optional_session)
                              ) -> Response:
    next_path = safe_next(request.query_params.get("next"))
    if active is None:
        return redirect("/login", next=next_path)
    return await _reauth_page(request, active, next_path,
                              request.query_params.get("level") == "mfa")


async def _reauth_page(request: Request, active: ActiveSession, next_path: str, mfa: bool,
                       error: dict[str, Any] | None = None, status: int = 200) -> Response:
    core = request.app.state.core
    factors = request.app.state.flows.login.factors
    methods = await core.db.run(lambda conn: factors.methods(conn, active.account))
    return request.app.state.pages.render(request, "oauth_reauth.html", {
        "values": {"next": next_path, "level": "mfa" if mfa else "password"},
        "methods": [m for m in methods if m != "passkey"], "mfa": mfa, "error": error},
        status_code=status)


@router.post("/oauth/reauthenticate")
async def reauthenticate_submit(request: Request,
                                active: ActiveSession | None = Depends(optional_session)
                                ) -> Response:
    data = await form_data(request)
    next_path = safe_next(data.get("next"))
    if active is None:
        return redirect("/login", next=next_path)
    mfa = data.get("level") == "mfa"
    flows = request.app.state.flows
    ctx = request.state.facts.context()

    async def act(data: dict[str, str]) -> Response:
        if mfa:
            await flows.login.factors.reauthenticate(active, data.get("method", ""),
                                                     data.get("code", ""), ctx)
        else:
            await flows.login.reauthenticate(
                session=active.session, account=active.account,
                password=data.get("password", ""), ctx=ctx,
                device_cookie=known_device_cookie(request))
        return redirect(next_path)

    try:
        return await run_once(request, data, act)
    except SekishoError as error:
        return await _reauth_page(request, active, next_path, mfa,
                                  await error_view(request, error), error.spec.status)


# --- token-side endpoints -------------------------------------------------------------------
@router.post("/oauth/token")
async def token(request: Request) -> Response:
    form = await _form_pairs(request)
    return _answer(await oidc(request).token(_oauth_request(request, [], form)))


@router.post("/oauth/revoke")
async def revoke(request: Request) -> Response:
    form = await _form_pairs(request)
    return _answer(await oidc(request).endpoint("revocation",
                                                _oauth_request(request, [], form)))


@router.post("/oauth/introspect")
async def introspect(request: Request) -> Response:
    form = await _form_pairs(request)
    return _answer(await oidc(request).endpoint("introspection",
                                                _oauth_request(request, [], form)))


@router.api_route("/oauth/userinfo", methods=["GET", "POST"])
async def userinfo(request: Request) -> Response:
    form = await _form_pairs(request) if request.method == "POST" else []
    return _answer(await oidc(request).endpoint(
        "userinfo", _oauth_request(request, list(request.query_params.multi_items()), form)))


# --- RP-initiated logout ----------------------------------------------------------------------
@router.api_route("/oauth/logout", methods=["GET", "POST"])
async def end_session(request: Request,
                      active: ActiveSession | None = Depends(optional_session)) -> Response:
    """OpenID RP-Initiated Logout 1.0. With a valid ``id_token_hint`` of the member signed
    in here, the sekisho session ends at once and the browser goes back to the registered
    ``post_logout_redirect_uri``; without one, the member confirms first (a link alone
    must not sign anybody out). The confirmation form runs once per form token."""
    if request.method != "POST":
        return await _end_session(request, active, list(request.query_params.multi_items()))

    async def act(data: dict[str, str]) -> Response:
        query = parse_qsl(data.get("request", ""), keep_blank_values=True)
        return await _end_session(request, active, query, confirmed=data.get("confirm") == "yes")

    return await run_once(request, await form_data(request), act)


async def _end_session(request: Request, active: ActiveSession | None,
                       query: list[tuple[str, str]], confirmed: bool = False) -> Response:
    service = oidc(request)
    try:
        validated = await service.end_session(_oauth_request(request, query, []))
    except OAuth2Error as error:  # a hint we did not issue, a client it was not for
        raise SekishoError("oidc.invalid_request", extra={
            "oauth_error": error.error, "detail": error.description or ""}) from None
    claims = validated.id_token_claims
    hinted = claims is not None and active is not None and \
        claims.get("sub") == service.provider.subject(active.account.id)
    if active is not None and not hinted and not confirmed:
        return request.app.state.pages.render(request, "oauth_logout.html", {
            "client": validated.client, "request_query": urlencode(query)})
    if active is not None:
        await request.app.state.flows.account.logout(active.session,
                                                     request.state.facts.context())
        clear_session_cookie(request)
    if validated.redirect_uri:
        return leave_for(request, validated.redirect_uri)
    return redirect("/login", notice="logged_out")
