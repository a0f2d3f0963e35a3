"""JSON endpoints of the self-service flows (CONTRACT.md, base path /api/v1)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from sekisho.account.service import account_view, provisioning_view, session_view
from sekisho.context import RequestContext
from sekisho.flows.login.result import LoginResult
from sekisho.flows.schemas import (
    EnrolConfirmIn,
    EnrolIn,
    FlowIn,
    IdReminderIn,
    LoginIn,
    PasskeyLoginIn,
    PasskeyOptionsIn,
    PasswordChangeIn,
    RecoveryCompleteIn,
    RecoveryIn,
    RegistrationIn,
    ResendIn,
    ResendLinkIn,
    SecondFactorIn,
    UnlockIn,
    VerificationIn,
)
from sekisho.sessions.service import ActiveSession
from sekisho.web.cookies import (
    clear_session_cookie,
    known_device_cookie,
    set_known_device_cookie,
    set_session_cookie,
)
from sekisho.web.deps import ctx, optional_session, require_json, require_session
from sekisho.web.i18n import N_, translations

router = APIRouter(prefix="/api/v1", dependencies=[Depends(require_json)])

# Accepted-for-processing answers are the same whatever the input matched (no enumeration).
_ACCEPTED = {
    "registration": N_("If this address can be registered, a confirmation mail is on its way."),
    "recovery": N_("If this matches an account, we have sent instructions to its contact "
                   "address."),
    "resend": N_("If this address is waiting for confirmation, a new code is on its way."),
    "id_reminder": N_("If this address or number is registered, we have sent it your member "
                      "ID."),
}


def _accepted(request: Request, which: str) -> JSONResponse:
    message = translations(request.state.facts.locale).gettext(_ACCEPTED[which])
    return JSONResponse({"status": "accepted", "message": message}, status_code=202)


def _flows(request: Request) -> Any:
    return request.app.state.flows


@router.post("/registrations", status_code=202)
async def register(body: RegistrationIn, request: Request,
                   context: RequestContext = Depends(ctx)) -> JSONResponse:
    await _flows(request).registration.register(
        email=body.email, password=body.password, display_name=body.display_name, ctx=context)
    return _accepted(request, "registration")


@router.post("/verifications/email")
async def verify_email(body: VerificationIn, request: Request,
                       context: RequestContext = Depends(ctx)) -> dict[str, Any]:
    account = await _flows(request).registration.verify(
        ctx=context, token=body.token, email=body.email, code=body.code)
    return {"status": "verified", "account": account_view(account)}


@router.post("/verifications/email/resend", status_code=202)
async def resend_verification(body: ResendIn, request: Request,
                              context: RequestContext = Depends(ctx)) -> JSONResponse:
    await _flows(request).registration.resend(email=body.email, ctx=context)
    return _accepted(request, "resend")


@router.post("/login")
async def login(body: LoginIn, request: Request,
                context: RequestContext = Depends(ctx)) -> dict[str, Any]:
    """The password stage. With a second factor enrolled, the answer is
    ``{"next": "mfa", "flow", "methods"}``: finish at ``/api/v1/login/mfa``."""
    result = await _flows(request).login.login(
        identifier=body.identifier, password=body.password, ctx=context,
        device_cookie=known_device_cookie(request))
    return _logged_in(request, result)


@router.post("/login/mfa")
async def login_second_factor(body: SecondFactorIn, request: Request,
                              context: RequestContext = Depends(ctx)) -> dict[str, Any]:
    """The second-factor stage: ``method`` is one of the ``methods`` the login offered."""
    result = await _flows(request).login.stages.second_factor(
        flow=body.flow, method=body.method, code=body.credential or body.code, ctx=context)
    return _logged_in(request, result)


@router.post("/login/enrol/totp", status_code=201)
async def login_enrol_totp(body: EnrolIn, request: Request) -> dict[str, Any]:
    """The enrolment stage (``"next": "enrol"``: policy requires a second factor): a new
    authenticator app to scan, confirmed at ``confirm`` with its first code."""
    authenticator_id, provisioning = await _flows(request).login.stages.enrol_totp(
        flow=body.flow, name=body.name)
    return {**provisioning_view(authenticator_id, provisioning),
            "confirm": f"/api/v1/login/enrol/totp/{authenticator_id}/confirm"}


@router.post("/login/enrol/totp/{authenticator_id}/confirm")
async def login_enrol_confirm(authenticator_id: int, body: EnrolConfirmIn, request: Request,
                              context: RequestContext = Depends(ctx)) -> dict[str, Any]:
    """The app's first code: the login finishes, with 10 recovery codes shown only here."""
    result, codes = await _flows(request).login.stages.finish_enrolment(
        flow=body.flow, authenticator_id=authenticator_id, code=body.code, ctx=context)
    return {**_logged_in(request, result), "recovery_codes": codes}


@router.post("/login/passkey/options")
async def passkey_options(body: PasskeyOptionsIn, request: Request) -> dict[str, Any]:
    """WebAuthn options for ``navigator.credentials.get``: for a passwordless login, or with
    ``flow`` for the second factor of that login."""
    login = _flows(request).login
    options = (await login.stages.passkey_options(body.flow) if body.flow
               else await login.passkey_options())
    return {"publicKey": options}


@router.post("/login/passkey")
async def passkey_login(body: PasskeyLoginIn, request: Request,
                        context: RequestContext = Depends(ctx)) -> dict[str, Any]:
    """Passwordless login: the credential ``navigator.credentials.get`` returned."""
    result = await _flows(request).login.passkey_login(
        credential=body.credential, ctx=context, device_cookie=known_device_cookie(request))
    return _logged_in(request, result)


@router.post("/login/mfa/sms", status_code=202)
async def login_sms_code(body: FlowIn, request: Request,
                         context: RequestContext = Depends(ctx)) -> dict[str, Any]:
    """Text a login code, where the login offered ``sms``."""
    await _flows(request).login.stages.send_login_code(flow=body.flow, ctx=context)
    return {"status": "code_sent"}


def _logged_in(request: Request, result: LoginResult) -> dict[str, Any]:
    if result.flow is not None:
        return {"next": "enrol" if result.enrol else "mfa", "flow": result.flow,
                "methods": result.methods, "reference": result.reference}
    assert result.token is not None and result.device_cookie is not None
    set_session_cookie(request, result.token)
    set_known_device_cookie(request, result.device_cookie)
    return {"session_token": result.token, "account": account_view(result.account),
            "notices": result.notices, "reference": result.reference}


@router.post("/unlock")
async def unlock(body: UnlockIn, request: Request,
                 context: RequestContext = Depends(ctx)) -> dict[str, Any]:
    """The lock mail's "unlock this browser": this client gets its own lockout lane."""
    set_known_device_cookie(request, await _flows(request).login.unlock(token=body.token,
                                                                        ctx=context))
    return {"status": "unlocked", "next": "login"}


@router.post("/logout", status_code=204)
async def logout(request: Request, context: RequestContext = Depends(ctx),
                 active: ActiveSession | None = Depends(optional_session)) -> Response:
    if active is not None:
        await _flows(request).account.logout(active.session, context)
    clear_session_cookie(request)
    return Response(status_code=204)


@router.get("/session")
async def current_session(active: ActiveSession = Depends(require_session)) -> dict[str, Any]:
    return {"account": account_view(active.account), "session": session_view(active.session)}


@router.post("/recovery", status_code=202)
async def recovery(body: RecoveryIn, request: Request,
                   context: RequestContext = Depends(ctx)) -> JSONResponse:
    await _flows(request).recovery.request(identifier=body.identifier, ctx=context)
    return _accepted(request, "recovery")


@router.post("/recovery/resend", status_code=202)
async def recovery_resend(body: ResendLinkIn, request: Request,
                          context: RequestContext = Depends(ctx)) -> JSONResponse:
    """A new reset link in place of a used, expired or superseded one."""
    await _flows(request).recovery.resend_link(token=body.token, ctx=context)
    return _accepted(request, "recovery")


@router.post("/recovery/id", status_code=202)
async def recovery_id(body: IdReminderIn, request: Request,
                      context: RequestContext = Depends(ctx)) -> JSONResponse:
    """Forgot login ID: the registered address or number receives the member ID."""
    await _flows(request).recovery.remind_id(contact=body.contact, ctx=context)
    return _accepted(request, "id_reminder")


@router.post("/recovery/complete")
async def recovery_complete(body: RecoveryCompleteIn, request: Request,
                            context: RequestContext = Depends(ctx)) -> dict[str, Any]:
    await _flows(request).recovery.complete(
        password=body.password, ctx=context, token=body.token, identifier=body.identifier,
        code=body.code)
    return {"status": "password_changed", "next": "login"}


@router.post("/account/password")
async def change_password(body: PasswordChangeIn, request: Request,
                          context: RequestContext = Depends(ctx),
                          active: ActiveSession = Depends(require_session)) -> dict[str, Any]:
    await _flows(request).account.change_password(
        active=active, current=body.current_password, new=body.new_password, ctx=context)
    return {"status": "password_changed"}
