"""The account page (password, email, phone), logout, step-up, and undoing a change."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from sekisho.account.service import account_view
from sekisho.errors import SekishoError
from sekisho.identity.masking import display_phone
from sekisho.sessions.service import ActiveSession
from sekisho.web.cookies import (
    clear_session_cookie,
    known_device_cookie,
    set_known_device_cookie,
)
from sekisho.web.deps import optional_session
from sekisho.web.forms import error_view, form_data, handle_form, redirect

router = APIRouter(include_in_schema=False)

# The second step of a change the member started: which code form the page shows.
_PENDING = {"email", "phone"}


def _view(request: Request, active: ActiveSession) -> dict[str, Any]:
    view = account_view(active.account)
    if view["phone"]:
        view["phone"] = display_phone(view["phone"],
                                      request.app.state.core.settings.phone_default_region)
    return {"account": view}


@router.get("/account")
async def account_page(request: Request,
                       active: ActiveSession | None = Depends(optional_session)) -> Response:
    if active is None:
        return redirect("/login", next="/account")
    pending = request.query_params.get("pending")
    return request.app.state.pages.render(request, "account.html", {
        **_view(request, active), "notice": request.query_params.get("notice"),
        "pending": pending if pending in _PENDING else None,
    })


@router.post("/logout")
async def logout_submit(request: Request,
                        active: ActiveSession | None = Depends(optional_session)) -> Response:
    await form_data(request)
    if active is not None:
        await request.app.state.flows.account.logout(active.session,
                                                     request.state.facts.context())
    clear_session_cookie(request)
    return redirect("/login", notice="logged_out")


Act = Callable[[Request, ActiveSession, dict[str, str]], Awaitable[Response]]


def _account_form(path: str, keep: tuple[str, ...] = (),
                  pending: str | None = None) -> Callable[[Act], Act]:
    """Register a signed-in form on the account page: ``act`` does the work and returns the
    redirect; an error shows the page again with it (and the step-up form if needed)."""

    def decorate(act: Act) -> Act:
        async def submit(request: Request,
                         active: ActiveSession | None = Depends(optional_session)) -> Response:
            if active is None:
                return redirect("/login", next="/account")
            return await handle_form(request, "account.html",
                                     lambda data: act(request, active, data), keep=keep,
                                     context={**_view(request, active), "pending": pending})

        router.post(path)(submit)
        return act

    return decorate


@_account_form("/account/password")
async def _password(request: Request, active: ActiveSession, data: dict[str, str]) -> Response:
    await request.app.state.flows.account.change_password(
        account=active.account, session=active.session,
        current=data.get("current_password", ""), new=data.get("new_password", ""),
        ctx=request.state.facts.context())
    return redirect("/account", notice="password_changed")


@_account_form("/account/reauth")
async def _reauth(request: Request, active: ActiveSession, data: dict[str, str]) -> Response:
    result = await request.app.state.flows.login.reauthenticate(
        session=active.session, account=active.account, password=data.get("password", ""),
        ctx=request.state.facts.context(), device_cookie=known_device_cookie(request))
    set_known_device_cookie(request, result.device_cookie)
    return redirect("/account", notice="reauthenticated")


@_account_form("/account/email", keep=("email",))
async def _email(request: Request, active: ActiveSession, data: dict[str, str]) -> Response:
    await request.app.state.flows.contact.request_email(
        active=active, email=data.get("email", ""), ctx=request.state.facts.context())
    return redirect("/account", pending="email", notice="email_code_sent")


@_account_form("/account/email/confirm", pending="email")
async def _email_confirm(request: Request, active: ActiveSession,
                         data: dict[str, str]) -> Response:
    await request.app.state.flows.contact.confirm_email(
        active=active, code=data.get("code", ""), ctx=request.state.facts.context())
    return redirect("/account", notice="email_changed")


@_account_form("/account/phone", keep=("phone",))
async def _phone(request: Request, active: ActiveSession, data: dict[str, str]) -> Response:
    await request.app.state.flows.contact.request_phone(
        active=active, phone=data.get("phone", ""), ctx=request.state.facts.context())
    return redirect("/account", pending="phone", notice="phone_code_sent")


@_account_form("/account/phone/confirm", pending="phone")
async def _phone_confirm(request: Request, active: ActiveSession,
                         data: dict[str, str]) -> Response:
    await request.app.state.flows.contact.confirm_phone(
        active=active, code=data.get("code", ""), ctx=request.state.facts.context())
    return redirect("/account", notice="phone_changed")


@router.get("/account/revert")
async def revert_page(request: Request) -> Response:
    """The "this wasn't me" link: a button (mail scanners prefetch links), or at once the
    reason it no longer works."""
    token = request.query_params.get("token", "")
    context: dict[str, Any] = {"values": {"token": token}}
    try:
        await request.app.state.flows.contact.check_revert(token)
    except SekishoError as error:
        context["error"] = await error_view(request, error)
        context["dead"] = True
        return request.app.state.pages.render(request, "revert.html", context,
                                              status_code=error.spec.status)
    return request.app.state.pages.render(request, "revert.html", context)


@router.post("/account/revert")
async def revert_submit(request: Request) -> Response:
    async def act(data: dict[str, str]) -> Response:
        reset_to = await request.app.state.flows.contact.revert(
            token=data.get("token", ""), ctx=request.state.facts.context())
        clear_session_cookie(request)
        return request.app.state.pages.render(request, "revert.html",
                                              {"done": True, "email": reset_to})

    return await handle_form(request, "revert.html", act, keep=("token",))
