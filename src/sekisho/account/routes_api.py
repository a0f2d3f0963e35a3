"""JSON endpoints for a signed-in member's own contact details, step-up, and undoing a change."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from sekisho.account.service import (
    account_view,
    authenticator_view,
    provisioning_view,
    session_view,
)
from sekisho.context import RequestContext
from sekisho.flows.schemas import (
    CodeIn,
    EmailChangeIn,
    FactorNameIn,
    NoticesIn,
    PasskeyAddIn,
    PhoneChangeIn,
    ReauthenticateIn,
    TokenIn,
)
from sekisho.sessions.service import ActiveSession
from sekisho.web.cookies import (
    clear_session_cookie,
    known_device_cookie,
    set_known_device_cookie,
)
from sekisho.web.deps import ctx, require_json, require_session

router = APIRouter(prefix="/api/v1", dependencies=[Depends(require_json)])


def _flows(request: Request) -> Any:
    return request.app.state.flows


@router.post("/session/reauthenticate")
async def reauthenticate(body: ReauthenticateIn, request: Request,
                         context: RequestContext = Depends(ctx),
                         active: ActiveSession = Depends(require_session)) -> dict[str, Any]:
    """Step-up: the password again, or a second factor (``method`` and ``code``, or a passkey
    ``credential`` for options from ``/api/v1/session/reauthenticate/passkey-options``).
    Sensitive changes are allowed for ``step_up_max_age_seconds`` afterwards."""
    flows = _flows(request)
    notices: list[dict[str, Any]] = []
    if body.method:
        await flows.login.factors.reauthenticate(active, body.method,
                                                 body.credential or body.code, context)
    else:
        result = await flows.login.reauthenticate(
            session=active.session, account=active.account, password=body.password or "",
            ctx=context, device_cookie=known_device_cookie(request))
        set_known_device_cookie(request, result.device_cookie)
        notices = result.notices
    session = active.session
    session.authenticated_at = request.app.state.core.clock.now()
    return {"status": "reauthenticated", "session": session_view(session), "notices": notices}


@router.post("/session/reauthenticate/passkey-options")
async def reauthenticate_passkey_options(request: Request,
                                         active: ActiveSession = Depends(require_session),
                                         ) -> dict[str, Any]:
    """WebAuthn options to confirm a step-up with one of the member's passkeys."""
    return {"publicKey": await _flows(request).login.factors.step_up_passkey_options(
        active.account)}


@router.post("/account/email", status_code=202)
async def change_email(body: EmailChangeIn, request: Request,
                       context: RequestContext = Depends(ctx),
                       active: ActiveSession = Depends(require_session)) -> JSONResponse:
    """Start changing the login email: a code goes to the new address."""
    await _flows(request).contact.request_email(active=active, email=body.email, ctx=context)
    return JSONResponse({"status": "code_sent", "next": "/api/v1/account/email/confirm"},
                        status_code=202)


@router.post("/account/email/confirm")
async def confirm_email(body: CodeIn, request: Request, context: RequestContext = Depends(ctx),
                        active: ActiveSession = Depends(require_session)) -> dict[str, Any]:
    account = await _flows(request).contact.confirm_email(active=active, code=body.code,
                                                          ctx=context)
    return {"status": "email_changed", "account": account_view(account)}


@router.post("/account/phone", status_code=202)
async def change_phone(body: PhoneChangeIn, request: Request,
                       context: RequestContext = Depends(ctx),
                       active: ActiveSession = Depends(require_session)) -> JSONResponse:
    """Add or change the phone number: a code goes to it by SMS."""
    await _flows(request).contact.request_phone(active=active, phone=body.phone, ctx=context)
    return JSONResponse({"status": "code_sent", "next": "/api/v1/account/phone/confirm"},
                        status_code=202)


@router.post("/account/phone/confirm")
async def confirm_phone(body: CodeIn, request: Request, context: RequestContext = Depends(ctx),
                        active: ActiveSession = Depends(require_session)) -> dict[str, Any]:
    account = await _flows(request).contact.confirm_phone(active=active, code=body.code,
                                                          ctx=context)
    return {"status": "phone_changed", "account": account_view(account)}


@router.post("/account/revert")
async def revert_change(body: TokenIn, request: Request,
                        context: RequestContext = Depends(ctx)) -> dict[str, Any]:
    """"This wasn't me" from the old address or number: no login needed."""
    await _flows(request).contact.revert(token=body.token, ctx=context)
    clear_session_cookie(request)
    return {"status": "reverted", "next": "recovery"}


@router.get("/session/recent")
async def recent_authentication(request: Request,
                                active: ActiveSession = Depends(require_session),
                                max_age: int | None = Query(default=None, ge=1),
                                ) -> dict[str, Any]:
    """For relying services before a payment: 200 if the member authenticated within
    ``max_age`` seconds (default ``step_up_max_age_seconds``), else
    ``403 auth.step_up_required`` naming how to re-authenticate."""
    await _flows(request).login.factors.require_recent(active, max_age)
    return {"status": "recent", "authenticated_at": active.session.authenticated_at.isoformat()}


@router.post("/account/not-me")
async def not_me(body: TokenIn, request: Request,
                 context: RequestContext = Depends(ctx)) -> dict[str, Any]:
    """"This wasn't me" from a new-device notice: no login needed. Ends every session,
    forgets every trusted browser, stops password login and sends a reset link."""
    await _flows(request).login.alarm.not_me(token=body.token, ctx=context)
    clear_session_cookie(request)
    return {"status": "secured", "next": "recovery"}


@router.put("/account/notices")
async def set_notices(body: NoticesIn, request: Request, context: RequestContext = Depends(ctx),
                      active: ActiveSession = Depends(require_session)) -> dict[str, Any]:
    """Turning a notice off needs a recent login: a stolen session must not silence it."""
    await _flows(request).login.factors.require_recent(active)
    await _flows(request).account.set_notices(
        account=active.account, new_device_login=body.new_device_login, ctx=context)
    return {"notices": {"new_device_login": body.new_device_login}}


@router.get("/account/second-factors")
async def list_second_factors(request: Request,
                              active: ActiveSession = Depends(require_session)) -> dict[str, Any]:
    factors = _flows(request).login.factors
    async with request.app.state.core.db.read() as db:
        enrolled = await factors.enrolled(db, active.account.id)
        left = await factors.unused_recovery_codes(db, active.account.id)
    return {"authenticators": [authenticator_view(a) for a in enrolled],
            "recovery_codes_left": left}


@router.post("/account/second-factors/totp", status_code=201)
async def start_totp(body: FactorNameIn, request: Request,
                     active: ActiveSession = Depends(require_session)) -> dict[str, Any]:
    """Enrol an authenticator app: scan ``qr_svg`` (or type ``secret_grouped``), then
    confirm with its first code."""
    await request.app.state.flows.login.factors.require_recent(active)
    authenticator_id, provisioning = await _flows(request).login.factors.start_totp(
        active.account, body.name)
    return {**provisioning_view(authenticator_id, provisioning),
            "confirm": f"/api/v1/account/second-factors/totp/{authenticator_id}/confirm"}


@router.post("/account/second-factors/totp/{authenticator_id}/confirm")
async def confirm_totp(authenticator_id: int, body: CodeIn, request: Request,
                       context: RequestContext = Depends(ctx),
                       active: ActiveSession = Depends(require_session)) -> dict[str, Any]:
    """The app's first code. The first second factor comes with 10 recovery codes, shown
    only in this answer."""
    codes = await _flows(request).login.factors.confirm_totp(
        active.account, authenticator_id, body.code, context)
    return {"status": "confirmed", "recovery_codes": codes}


@router.delete("/account/second-factors/{authenticator_id}", status_code=204)
async def remove_second_factor(authenticator_id: int, request: Request,
                               context: RequestContext = Depends(ctx),
                               active: ActiveSession = Depends(require_session)) -> Response:
    await request.app.state.flows.login.factors.require_recent(active)
    await _flows(request).login.factors.remove(active.account, authenticator_id, context)
    return Response(status_code=204)


@router.post("/account/recovery-codes")
async def regenerate_recovery_codes(request: Request, context: RequestContext = Depends(ctx),
                                    active: ActiveSession = Depends(require_session),
                                    ) -> dict[str, Any]:
    """A new set of 10 recovery codes, shown only in this answer; the old set stops working."""
    await request.app.state.flows.login.factors.require_recent(active)
    codes = await _flows(request).login.factors.regenerate_codes(active.account, context)
    return {"recovery_codes": codes}


@router.post("/account/passkeys/options")
async def passkey_registration_options(request: Request,
                                       active: ActiveSession = Depends(require_session),
                                       ) -> dict[str, Any]:
    """WebAuthn options for ``navigator.credentials.create``."""
    await request.app.state.flows.login.factors.require_recent(active)
    return {"publicKey": await _flows(request).login.factors.passkey_options(active.account)}


@router.post("/account/passkeys", status_code=201)
async def add_passkey(body: PasskeyAddIn, request: Request,
                      context: RequestContext = Depends(ctx),
                      active: ActiveSession = Depends(require_session)) -> dict[str, Any]:
    """Keep the passkey the browser created. The first second factor comes with 10 recovery
    codes, shown only in this answer."""
    await request.app.state.flows.login.factors.require_recent(active)
    codes = await _flows(request).login.factors.add_passkey(
        active.account, body.credential, body.name, context)
    return {"status": "added", "recovery_codes": codes}


@router.get("/account/linked-services")
async def linked_services(request: Request, active: ActiveSession = Depends(require_session)
                          ) -> dict[str, Any]:
    """The services that sign in with this account: name, since, last used, scopes."""
    linked = await request.app.state.oidc.linked(active.account.id)
    return {"linked_services": [
        {"client_id": s.client_id, "name": s.name, "since": s.since.isoformat(),
         "last_used": s.last_used.isoformat(), "scopes": s.scopes} for s in linked]}


@router.delete("/account/linked-services/{client_id}", status_code=204)
async def unlink_service(client_id: str, request: Request, context: RequestContext = Depends(ctx),
                         active: ActiveSession = Depends(require_session)) -> Response:
    """Unlink: the service's tokens stop working at once; its next sign-in asks again."""
    await request.app.state.oidc.unlink(active.account.id, client_id, context)
    return Response(status_code=204)
