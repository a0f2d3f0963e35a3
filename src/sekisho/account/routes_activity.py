"""A member's sessions and login history: the JSON endpoints and the ``/account/activity``
page, both over :class:`~sekisho.account.activity.AccountActivity`.

The history's plain-language lines are worded here, once, for the API and the page.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from sekisho.account.activity import AccountActivity, HistoryEntry
from sekisho.context import RequestContext
from sekisho.errors.catalogue import CATALOGUE, fill
from sekisho.events.models import OK, EventKind
from sekisho.sessions.service import ActiveSession
from sekisho.web.cookies import clear_session_cookie
from sekisho.web.deps import ctx, optional_session, require_json, require_session
from sekisho.web.forms import handle_form, redirect
from sekisho.web.i18n import N_, translations
from sekisho.web.templating import Pages

router = APIRouter()

_API = "/api/v1/account"
_JSON = [Depends(require_json)]
_PAGE = "/account/activity"
_NOTICES = {"session_ended", "others_ended"}

# What each recorded outcome means, in plain words (message ids are the English text).
_LOGIN, _REAUTH = EventKind.LOGIN.value, EventKind.REAUTHENTICATION.value
_FACTOR = "second_factor"  # enrolment changes; a login's second step is recorded as a login
_SUCCESS = {
    (_LOGIN, None): N_("Logged in"),
    (_LOGIN, "passkey"): N_("Logged in with a passkey"),
    (_LOGIN, "totp"): N_("Logged in with an authenticator app"),
    (_LOGIN, "sms"): N_("Logged in with a code sent by SMS"),
    (_LOGIN, "recovery_code"): N_("Logged in with a recovery code"),
    (_REAUTH, None): N_("Confirmed it was you with your password"),
    (_REAUTH, "passkey"): N_("Confirmed it was you with a passkey"),
    (_REAUTH, "totp"): N_("Confirmed it was you with an authenticator app"),
}
_FACTOR_CHANGES: dict[tuple[str | None, str | None], str] = {
    ("added", "totp"): N_("Authenticator app added"),
    ("added", "passkey"): N_("Passkey added"),
    ("removed", "totp"): N_("Authenticator app removed"),
    ("removed", "passkey"): N_("Passkey removed"),
    ("recovery_codes_regenerated", None): N_("New recovery codes made"),
}
_FACTOR_CHANGED = N_("Login steps changed")
_CORRECTIONS = {
    "caps_lock": N_("Caps Lock corrected"),
    "first_letter": N_("first letter's case corrected"),
}
_WITH_NOTE = N_("{text} ({note})")
_REFUSED = {
    "login.invalid_credentials": N_("Wrong password"),
    "login.throttled": N_("Refused: logins paused after several wrong passwords"),
    "login.password_disabled": N_("Refused: password login disabled"),
    # Not a refusal: the password was right and the second step was asked for. Without a
    # login right after it, someone else may know the password.
    "second_factor_required": N_("Password accepted; second step asked for"),
}
_LOCKED = N_("Wrong password; logins paused until {time}")
_UNKNOWN = N_("Not completed")


def describe(entry: HistoryEntry, locale: str, local_time: Callable[[datetime], str]) -> str:
    """One history line in ``locale``, e.g. "Logged in (Caps Lock corrected)"."""
    gettext = translations(locale).gettext
    detail = entry.detail
    if entry.outcome == OK:
        return _success(entry, gettext)
    until = detail.get("locked_until")
    if entry.outcome == "login.invalid_credentials" and isinstance(until, int | float):
        return gettext(_LOCKED).format(time=_lock_end(entry.at, until, local_time))
    if entry.outcome in _REFUSED:
        return gettext(_REFUSED[entry.outcome])
    spec = CATALOGUE.get(entry.outcome)
    if spec is not None:  # account.suspended, second_factor.invalid_code...
        return fill(spec.message.get(locale, spec.message["ja"]), {})
    return gettext(_UNKNOWN)


def _success(entry: HistoryEntry, gettext: Callable[[str], str]) -> str:
    detail = entry.detail
    if entry.kind == _FACTOR:
        action = detail.get("action")
        return gettext(_FACTOR_CHANGES.get((action, detail.get("method")))
                       or _FACTOR_CHANGES.get((action, None)) or _FACTOR_CHANGED)
    kind = _REAUTH if entry.kind == _REAUTH else _LOGIN
    # The login flow names the second step ``second_factor``; ``method`` covers a login
    # that needs no password (a passkey).
    method = detail.get("second_factor") or detail.get("method")
    text = gettext(_SUCCESS.get((kind, method)) or _SUCCESS[(kind, None)])
    note = _CORRECTIONS.get(str(detail.get("correction")))
    return gettext(_WITH_NOTE).format(text=text, note=gettext(note)) if note else text


def _lock_end(at: datetime, until: float, local_time: Callable[[datetime], str]) -> str:
    """``HH:MM`` in the display zone, with the date when the lock ends on another day."""
    ends = local_time(datetime.fromtimestamp(until, UTC))
    return ends[-5:] if ends[:10] == local_time(at)[:10] else ends


def _activity(request: Request) -> AccountActivity:
    return AccountActivity(request.app.state.core)


async def _history(request: Request, active: ActiveSession,
                   when: Callable[[datetime], str]) -> list[dict[str, Any]]:
    core = request.app.state.core
    locale = request.state.facts.locale
    return [{"at": when(entry.at), "outcome": entry.outcome,
             "text": describe(entry, locale, core.local_time), "device": entry.device,
             "ip": entry.ip}
            for entry in await _activity(request).history(active.account.id)]


# --- JSON -----------------------------------------------------------------------------------


@router.get(f"{_API}/sessions", dependencies=_JSON)
async def list_sessions(request: Request,
                        active: ActiveSession = Depends(require_session)) -> dict[str, Any]:
    """The member's live sessions, newest first; ``current`` marks the one asking."""
    return {"sessions": [entry.view() for entry in await _activity(request).sessions(active)]}


@router.delete(f"{_API}/sessions/{{session_id}}", dependencies=_JSON)
async def end_session(session_id: int, request: Request, context: RequestContext = Depends(ctx),
                      active: ActiveSession = Depends(require_session)) -> dict[str, Any]:
    """End one of the member's own sessions (``request.not_found`` for any other id).
    Ending the current one is a logout."""
    current = await _activity(request).end_session(active, session_id, context)
    if current:
        clear_session_cookie(request)
    return {"status": "ended", "current": current}


@router.post(f"{_API}/sessions/end-others", dependencies=_JSON)
async def end_other_sessions(request: Request, context: RequestContext = Depends(ctx),
                             active: ActiveSession = Depends(require_session),
                             ) -> dict[str, Any]:
    """"Log out everywhere else": every session but this one ends."""
    return {"ended": await _activity(request).end_others(active, context)}


@router.get(f"{_API}/history", dependencies=_JSON)
async def login_history(request: Request,
                        active: ActiveSession = Depends(require_session)) -> dict[str, Any]:
    """Logins, step-ups and refused attempts of the last ``login_history_days``, newest first
    (at most 100), each described in the request's language."""
    return {"entries": await _history(request, active, datetime.isoformat),
            "days": _activity(request).history_days}


# --- the page -------------------------------------------------------------------------------


async def _page_context(request: Request, active: ActiveSession) -> dict[str, Any]:
    """The page's sessions (as they are now) and history."""
    core = request.app.state.core
    activity = _activity(request)
    sessions = [{**entry.view(), "created_at": core.local_time(entry.created_at),
                 "last_seen_at": core.local_time(entry.last_seen_at)}
                for entry in await activity.sessions(active)]
    return {"sessions": sessions, "history": await _history(request, active, core.local_time),
            "days": activity.history_days}


@router.get(_PAGE, include_in_schema=False)
async def activity_page(request: Request,
                        active: ActiveSession | None = Depends(optional_session)) -> Response:
    if active is None:
        return redirect("/login", next=_PAGE)
    notice = request.query_params.get("notice")
    ended = request.query_params.get("ended", "")
    pages: Pages = request.app.state.pages
    return pages.render(request, "activity.html", {
        **await _page_context(request, active),
        "notice": notice if notice in _NOTICES else None,
        "ended": int(ended) if ended.isdigit() else 0})


async def _submit(request: Request, active: ActiveSession | None,
                  act: Callable[[ActiveSession, RequestContext], Awaitable[Response]],
                  ) -> Response:
    """A form of the page, run once per form token (:func:`~sekisho.web.forms.run_once`: a
    second click on "End" gets the first one's redirect, not ``request.not_found``); a
    catalogue error shows the page again with the error (and the sessions as they now are)."""
    if active is None:
        return redirect("/login", next=_PAGE)
    context = request.state.facts.context()
    return await handle_form(request, "activity.html", lambda _: act(active, context),
                             context=lambda: _page_context(request, active))


@router.post(_PAGE + "/sessions/{session_id}/end", include_in_schema=False)
async def end_session_submit(session_id: int, request: Request,
                             active: ActiveSession | None = Depends(optional_session),
                             ) -> Response:
    async def act(active: ActiveSession, context: RequestContext) -> Response:
        if await _activity(request).end_session(active, session_id, context):
            clear_session_cookie(request)
            return redirect("/login", notice="logged_out")
        return redirect(_PAGE, notice="session_ended")

    return await _submit(request, active, act)


@router.post(_PAGE + "/end-others", include_in_schema=False)
async def end_others_submit(request: Request,
                            active: ActiveSession | None = Depends(optional_session),
                            ) -> Response:
    async def act(active: ActiveSession, context: RequestContext) -> Response:
        ended = await _activity(request).end_others(active, context)
        return redirect(_PAGE, notice="others_ended", ended=str(ended))

    return await _submit(request, active, act)
