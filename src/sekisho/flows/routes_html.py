"""Pages of the self-service flows. They call the same services as the JSON API."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from sekisho.flows.login.result import LoginResult
from sekisho.methods.totp import Provisioning
from sekisho.sessions.service import ActiveSession
from sekisho.web.cookies import (
    known_device_cookie,
    set_known_device_cookie,
    set_session_cookie,
)
from sekisho.web.deps import optional_session
from sekisho.web.forms import handle_form, redirect, safe_next

router = APIRouter(include_in_schema=False)


def _page(request: Request, name: str, **context: Any) -> Response:
    return request.app.state.pages.render(request, name, context)


def _flows(request: Request) -> Any:
    return request.app.state.flows


@router.get("/")
async def home(active: ActiveSession | None = Depends(optional_session)) -> Response:
    return redirect("/account" if active else "/login")


@router.get("/login")
async def login_page(request: Request, active: ActiveSession | None = Depends(optional_session),
                     ) -> Response:
    if active is not None:
        return redirect(safe_next(request.query_params.get("next")))
    schedule = request.app.state.maintenance
    upcoming = await schedule.upcoming_notices(schedule.clock.now(), request.state.facts.locale)
    return _page(request, "login.html", values={"next": request.query_params.get("next", "")},
                 notice=request.query_params.get("notice"), maintenance_notices=upcoming)


@router.post("/login")
async def login_submit(request: Request) -> Response:
    async def act(data: dict[str, str]) -> Response:
        result = await _flows(request).login.login(
            identifier=data.get("identifier", ""), password=data.get("password", ""),
            ctx=request.state.facts.context(), device_cookie=known_device_cookie(request))
        return await _logged_in(request, result, data.get("next"))

    return await handle_form(request, "login.html", act, keep=("identifier", "next"))


@router.post("/login/mfa")
async def login_second_factor_submit(request: Request) -> Response:
    async def act(data: dict[str, str]) -> Response:
        result = await _flows(request).login.stages.second_factor(
            flow=data.get("flow", ""), method=data.get("method", ""), code=data.get("code", ""),
            ctx=request.state.facts.context())
        return await _logged_in(request, result, data.get("next"))

    return await handle_form(request, "login_mfa.html", act, keep=("flow", "next", "method"),
                             context=await _stage_context(request))


@router.post("/login/mfa/sms")
async def login_sms_submit(request: Request) -> Response:
    async def act(data: dict[str, str]) -> Response:
        await _flows(request).login.stages.send_login_code(flow=data.get("flow", ""),
                                                    ctx=request.state.facts.context())
        return _page(request, "login_mfa.html", notice="login_code_sent",
                     values={"flow": data.get("flow"), "next": data.get("next"),
                             "method": "sms"},
                     **await _stage_context(request))

    return await handle_form(request, "login_mfa.html", act, keep=("flow", "next"),
                             context=await _stage_context(request))


async def _stage_context(request: Request) -> dict[str, Any]:
    """The methods the form offers again when a second-factor entry is refused."""
    form = await request.form()
    methods = str(form.get("methods", ""))
    return {"methods": [m for m in methods.split(",") if m]}


@router.post("/login/enrol")
async def login_enrol_submit(request: Request) -> Response:
    """The enrolment stage's confirm form: the app's first code finishes the login."""
    stages = _flows(request).login.stages
    form = await request.form()
    flow, authenticator = str(form.get("flow", "")), str(form.get("authenticator", ""))
    next_path = str(form.get("next", ""))

    async def act(data: dict[str, str]) -> Response:
        result, codes = await stages.finish_enrolment(
            flow=flow, authenticator_id=int(authenticator or 0), code=data.get("code", ""),
            ctx=request.state.facts.context())
        await _logged_in(request, result, next_path)  # sets the cookies; codes shown first
        return _page(request, "recovery_codes.html", codes=codes, first=True,
                     next=safe_next(next_path))

    async def again() -> dict[str, Any]:  # after a wrong code: the same app, shown again
        provisioning = (await stages.pending_enrolment(flow=flow,
                                                       authenticator_id=int(authenticator))
                        if authenticator.isdigit() else None)
        return _enrol_page(provisioning, flow, authenticator, next_path)

    return await handle_form(request, "totp_setup.html", act, context=again)


def _enrol_page(provisioning: Provisioning | None, flow: str, authenticator: str,
                next_path: str | None) -> dict[str, Any]:
    return {"provisioning": provisioning, "action": "/login/enrol", "enrolment": True,
            "hidden": {"flow": flow, "authenticator": authenticator, "next": next_path or ""}}


async def _logged_in(request: Request, result: LoginResult, next_path: str | None) -> Response:
    """A session (redirect on, with any notices), the second-factor page, or (where policy
    requires a second factor) the page to set up an authenticator app."""
    if result.flow is not None and result.enrol:
        authenticator_id, provisioning = await _flows(request).login.stages.enrol_totp(
            flow=result.flow, name="")
        return _page(request, "totp_setup.html",
                     **_enrol_page(provisioning, result.flow, str(authenticator_id), next_path))
    if result.flow is not None:
        return _page(request, "login_mfa.html", methods=result.methods,
                     values={"flow": result.flow, "next": next_path or "",
                             "method": result.methods[0]})
    assert result.token is not None and result.device_cookie is not None
    set_session_cookie(request, result.token)
    set_known_device_cookie(request, result.device_cookie)
    notices = ",".join(n["code"] for n in result.notices)
    target = safe_next(next_path)
    return redirect(target, notice=notices) if notices else redirect(target)


@router.get("/unlock")
async def unlock_page(request: Request) -> Response:
    # A button, not an action on GET: mail scanners that prefetch links must not use it up.
    return _page(request, "unlock.html", values={"token": request.query_params.get("token", "")})


@router.post("/unlock")
async def unlock_submit(request: Request) -> Response:
    async def act(data: dict[str, str]) -> Response:
        cookie = await _flows(request).login.unlock(token=data.get("token", ""),
                                                    ctx=request.state.facts.context())
        set_known_device_cookie(request, cookie)
        return redirect("/login", notice="unlocked")

    return await handle_form(request, "unlock.html", act, keep=("token",))


@router.get("/register")
async def register_page(request: Request) -> Response:
    return _page(request, "register.html", values={})


@router.post("/register")
async def register_submit(request: Request) -> Response:
    async def act(data: dict[str, str]) -> Response:
        email = data.get("email", "")
        await _flows(request).registration.register(
            email=email, password=data.get("password", ""),
            display_name=data.get("display_name"), ctx=request.state.facts.context())
        return redirect("/verify", email=email, sent="1")

    return await handle_form(request, "register.html", act, keep=("email", "display_name"))


@router.get("/verify")
async def verify_page(request: Request) -> Response:
    # A link opens a confirmation button rather than verifying on GET: mail scanners
    # that prefetch links must not use up the member's link.
    q = request.query_params
    return _page(request, "verify.html", values={"email": q.get("email", ""),
                                                 "token": q.get("token", "")},
                 sent=q.get("sent") == "1")


@router.post("/verify")
async def verify_submit(request: Request) -> Response:
    async def act(data: dict[str, str]) -> Response:
        await _flows(request).registration.verify(
            ctx=request.state.facts.context(), token=data.get("token") or None,
            email=data.get("email") or None, code=data.get("code") or None)
        return redirect("/login", notice="verified")

    return await handle_form(request, "verify.html", act, keep=("email", "token"))


@router.post("/verify/resend")
async def verify_resend(request: Request) -> Response:
    async def act(data: dict[str, str]) -> Response:
        email = data.get("email", "")
        await _flows(request).registration.resend(email=email, ctx=request.state.facts.context())
        return redirect("/verify", email=email, sent="1")

    return await handle_form(request, "verify.html", act, keep=("email",))


@router.get("/recovery")
async def recovery_page(request: Request) -> Response:
    return _page(request, "recovery.html", values={}, sent=False)


@router.post("/recovery")
async def recovery_submit(request: Request) -> Response:
    async def act(data: dict[str, str]) -> Response:
        identifier = data.get("identifier", "")
        await _flows(request).recovery.request(identifier=identifier,
                                               ctx=request.state.facts.context())
        return redirect("/recovery/code", identifier=identifier)

    return await handle_form(request, "recovery.html", act, keep=("identifier",))


@router.get("/recovery/id")
async def recovery_id_page(request: Request) -> Response:
    return _page(request, "recovery_id.html", values={},
                 sent=request.query_params.get("sent") == "1")


@router.post("/recovery/id")
async def recovery_id_submit(request: Request) -> Response:
    async def act(data: dict[str, str]) -> Response:
        await _flows(request).recovery.remind_id(contact=data.get("contact", ""),
                                                 ctx=request.state.facts.context())
        return redirect("/recovery/id", sent="1")

    return await handle_form(request, "recovery_id.html", act, keep=("contact",))


@router.post("/recovery/resend")
async def recovery_resend_submit(request: Request) -> Response:
    async def act(data: dict[str, str]) -> Response:
        await _flows(request).recovery.resend_link(token=data.get("token", ""),
                                                   ctx=request.state.facts.context())
        return redirect("/login", notice="reset_link_sent")

    return await handle_form(request, "recovery.html", act)


@router.get("/recovery/code")
async def recovery_code_page(request: Request) -> Response:
    return _page(request, "recovery_code.html",
                 values={"identifier": request.query_params.get("identifier", "")})


@router.get("/recovery/reset")
async def recovery_reset_page(request: Request) -> Response:
    token = request.query_params.get("token", "")
    if token:
        # A usable link makes this browser known to the account (its own lockout lane).
        cookie = await _flows(request).recovery.open_link(token=token,
                                                          ctx=request.state.facts.context())
        set_known_device_cookie(request, cookie)
    return _page(request, "recovery_code.html", values={"token": token})


@router.post("/recovery/reset")
async def recovery_reset_submit(request: Request) -> Response:
    async def act(data: dict[str, str]) -> Response:
        await _flows(request).recovery.complete(
            password=data.get("password", ""), ctx=request.state.facts.context(),
            token=data.get("token") or None, identifier=data.get("identifier") or None,
            code=data.get("code") or None)
        return redirect("/login", notice="password_changed")

    response = await handle_form(request, "recovery_code.html", act,
                                 keep=("identifier", "token"))
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
