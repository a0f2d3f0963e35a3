"""JSON endpoints for a signed-in member's own contact details, step-up, and undoing a change."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from sekisho.account.service import account_view, session_view
from sekisho.context import RequestContext
from sekisho.flows.schemas import (
    CodeIn,
    EmailChangeIn,
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
    """Step-up: enter the password again; sensitive changes are allowed for
    ``step_up_max_age_seconds`` afterwards."""
    result = await _flows(request).login.reauthenticate(
        session=active.session, account=active.account, password=body.password, ctx=context,
        device_cookie=known_device_cookie(request))
    set_known_device_cookie(request, result.device_cookie)
    session = active.session
    session.authenticated_at = request.app.state.core.clock.now()
    return {"status": "reauthenticated", "session": session_view(session),
            "notices": result.notices}


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
