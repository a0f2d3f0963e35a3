"""The account page, logout and password change for signed-in members."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from sekisho.account.service import account_view
from sekisho.sessions.service import ActiveSession
from sekisho.web.cookies import clear_session_cookie
from sekisho.web.deps import optional_session
from sekisho.web.forms import form_data, handle_form, redirect

router = APIRouter(include_in_schema=False)


@router.get("/account")
async def account_page(request: Request,
                       active: ActiveSession | None = Depends(optional_session)) -> Response:
    if active is None:
        return redirect("/login", next="/account")
    return request.app.state.pages.render(request, "account.html", {
        "account": account_view(active.account),
        "notice": request.query_params.get("notice"),
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


@router.post("/account/password")
async def password_submit(request: Request,
                          active: ActiveSession | None = Depends(optional_session)) -> Response:
    if active is None:
        return redirect("/login", next="/account")

    async def act(data: dict[str, str]) -> Response:
        await request.app.state.flows.account.change_password(
            account=active.account, session=active.session,
            current=data.get("current_password", ""), new=data.get("new_password", ""),
            ctx=request.state.facts.context())
        return redirect("/account", notice="password_changed")

    return await handle_form(request, "account.html", act,
                             context={"account": account_view(active.account)})
