"""The account page (password, email, phone), logout, step-up, and undoing a change."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from sekisho.account.service import account_view, authenticator_view
from sekisho.errors import SekishoError
from sekisho.identity.masking import display_phone
from sekisho.oidc.service import linked_view
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


async def _view(request: Request, active: ActiveSession) -> dict[str, Any]:
    core = request.app.state.core
    view = account_view(active.account)
    if view["phone"]:
        view["phone"] = display_phone(view["phone"], core.settings.phone_default_region)
    factors = request.app.state.flows.login.factors
    async with core.db.read() as db:
        enrolled = await factors.enrolled(db, active.account.id)
        codes_left = await factors.unused_recovery_codes(db, active.account.id)
    linked = await request.app.state.oidc.linked(active.account.id)
    return {"account": view, "factors": [authenticator_view(a) for a in enrolled],
            "recovery_codes_left": codes_left,
            "linked": [linked_view(service, core.local_time) for service in linked]}


@router.get("/account")
async def account_page(request: Request,
                       active: ActiveSession | None = Depends(optional_session)) -> Response:
    if active is None:
        return redirect("/login", next="/account")
    pending = request.query_params.get("pending")
    return request.app.state.pages.render(request, "account.html", {
        **await _view(request, active), "notice": request.query_params.get("notice"),
        "pending": pending if pending in _PENDING else None,
        "step_up": request.query_params.get("step_up") == "1",
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
                                     context={**await _view(request, active),
                                              "pending": pending})

        router.post(path)(submit)
        return act

    return decorate


@_account_form("/account/password")
async def _password(request: Request, active: ActiveSession, data: dict[str, str]) -> Response:
    await request.app.state.flows.account.change_password(
        active=active, current=data.get("current_password", ""),
        new=data.get("new_password", ""), ctx=request.state.facts.context())
    return redirect("/account", notice="password_changed")


@_account_form("/account/linked/unlink")
async def _unlink(request: Request, active: ActiveSession, data: dict[str, str]) -> Response:
    await request.app.state.oidc.unlink(active.account.id, data.get("client_id", ""),
                                        request.state.facts.context())
    return redirect("/account", notice="unlinked")


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


@_account_form("/account/notices")
async def _notices(request: Request, active: ActiveSession, data: dict[str, str]) -> Response:
    await request.app.state.flows.login.factors.require_recent(active)
    await request.app.state.flows.account.set_notices(
        account=active.account, new_device_login=data.get("new_device_login") == "on",
        ctx=request.state.facts.context())
    return redirect("/account", notice="notices_saved")


@_account_form("/account/totp")
async def _totp_start(request: Request, active: ActiveSession, data: dict[str, str]) -> Response:
    await request.app.state.flows.login.factors.require_recent(active)
    authenticator_id, provisioning = await request.app.state.flows.login.factors.start_totp(
        active.account, data.get("name", ""))
    return request.app.state.pages.render(request, "totp_setup.html", {
        "authenticator_id": authenticator_id, "provisioning": provisioning})


@router.post("/account/totp/{authenticator_id}/confirm")
async def totp_confirm_submit(authenticator_id: int, request: Request,
                              active: ActiveSession | None = Depends(optional_session),
                              ) -> Response:
    if active is None:
        return redirect("/login", next="/account")
    factors = request.app.state.flows.login.factors

    async def act(data: dict[str, str]) -> Response:
        codes = await factors.confirm_totp(active.account, authenticator_id,
                                           data.get("code", ""), request.state.facts.context())
        if codes is None:
            return redirect("/account", notice="totp_added")
        return request.app.state.pages.render(request, "recovery_codes.html",
                                              {"codes": codes, "first": True})

    async def again() -> dict[str, Any]:  # after a wrong code: the same app, shown again
        return {"authenticator_id": authenticator_id,
                "provisioning": await factors.pending_totp(active.account, authenticator_id)}

    return await handle_form(request, "totp_setup.html", act, context=again)


@router.post("/account/second-factors/{authenticator_id}/remove")
async def second_factor_remove_submit(authenticator_id: int, request: Request,
                                      active: ActiveSession | None = Depends(optional_session),
                                      ) -> Response:
    if active is None:
        return redirect("/login", next="/account")

    async def act(data: dict[str, str]) -> Response:
        await request.app.state.flows.login.factors.require_recent(active)
        await request.app.state.flows.login.factors.remove(
            active.account, authenticator_id, request.state.facts.context())
        return redirect("/account", notice="second_factor_removed")

    return await handle_form(request, "account.html", act,
                             context=await _view(request, active))


@_account_form("/account/recovery-codes")
async def _recovery_codes(request: Request, active: ActiveSession,
                          data: dict[str, str]) -> Response:
    await request.app.state.flows.login.factors.require_recent(active)
    codes = await request.app.state.flows.login.factors.regenerate_codes(
        active.account, request.state.facts.context())
    return request.app.state.pages.render(request, "recovery_codes.html", {"codes": codes})


@router.get("/account/not-me")
async def not_me_page(request: Request) -> Response:
    """The new-device notice's "this wasn't me"."""
    return await _link_page(request, "not_me.html", request.app.state.flows.login.alarm.check)


@router.post("/account/not-me")
async def not_me_submit(request: Request) -> Response:
    async def act(data: dict[str, str]) -> Response:
        account = await request.app.state.flows.login.alarm.not_me(
            token=data.get("token", ""), ctx=request.state.facts.context())
        clear_session_cookie(request)
        return request.app.state.pages.render(request, "not_me.html",
                                              {"done": True, "email": account.email})

    return await handle_form(request, "not_me.html", act, keep=("token",))


@router.get("/account/revert")
async def revert_page(request: Request) -> Response:
    """The "this wasn't me" after an email or phone change."""
    return await _link_page(request, "revert.html",
                            request.app.state.flows.contact.check_revert)


async def _link_page(request: Request, template: str,
                     check: Callable[[str], Awaitable[None]]) -> Response:
    """A one-time link opens a button, not an action (mail scanners prefetch links); a link
    that can no longer be used says why at once."""
    token = request.query_params.get("token", "")
    context: dict[str, Any] = {"values": {"token": token}}
    try:
        await check(token)
    except SekishoError as error:
        context |= {"error": await error_view(request, error), "dead": True}
        return request.app.state.pages.render(request, template, context,
                                              status_code=error.spec.status)
    return request.app.state.pages.render(request, template, context)


@router.post("/account/revert")
async def revert_submit(request: Request) -> Response:
    async def act(data: dict[str, str]) -> Response:
        reset_to = await request.app.state.flows.contact.revert(
            token=data.get("token", ""), ctx=request.state.facts.context())
        clear_session_cookie(request)
        return request.app.state.pages.render(request, "revert.html",
                                              {"done": True, "email": reset_to})

    return await handle_form(request, "revert.html", act, keep=("token",))
