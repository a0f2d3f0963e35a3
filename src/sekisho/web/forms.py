"""Helpers for server-rendered forms: CSRF check, inline errors with their reference, PRG,
and the one-time form token that makes a resubmitted form harmless."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from sekisho.errors import SekishoError
from sekisho.errors.handler import page_error
from sekisho.web.csrf import check_csrf
from sekisho.web.idempotency_store import (
    LEASE_SECONDS,
    MAX_KEPT_BODY,
    Claim,
    Cookie,
    IdempotencyLedger,
    Outcome,
)

FORM_TOKEN = "form_token"
"""The hidden input naming one rendered form (``{{ form_token() }}`` in templates)."""
_MAX_FORM_TOKEN = 64

Action = Callable[[dict[str, str]], Awaitable[Response]]
"""What a form does with its submitted fields: returns the redirect or page to answer with."""
Context = dict[str, Any] | Callable[[], Awaitable[dict[str, Any]]]
"""What the form's page needs besides the error, or how to build it: built only when there
is an error to show, so a lookup that the action itself makes stale (an enrolment's pending
app, once confirmed) is never made for a submission that succeeded or is replayed."""


async def form_data(request: Request) -> dict[str, str]:
    """The submitted fields (strings only), after the CSRF check."""
    form = await request.form()
    data = {k: v for k, v in form.items() if isinstance(v, str)}
    check_csrf(request, request.app.state.cookies, data.get("csrf_token"))
    return data


error_view = page_error
"""``error`` as a form shows it inline, as an error page would: message, remedy, reference,
and the notice linking an incident on the components the form needs."""


def redirect(path: str, **query: str) -> RedirectResponse:
    """303 after POST, so reload and back never resubmit the form."""
    target = f"{path}?{urlencode(query)}" if query else path
    return RedirectResponse(target, status_code=303)


def safe_next(value: str | None, default: str = "/account") -> str:
    """Only same-site paths: never let ``next`` send a member to another origin."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return default


def form_token(request: Request) -> str:
    """A fresh token for one rendered form; see :func:`run_once`."""
    return request.app.state.core.tokens.token(16)  # type: ignore[no-any-return]


async def run_once(request: Request, data: dict[str, str], action: Action) -> Response:
    """Run a submitted form's ``action`` once per form token and filled-in fields.

    A double click, or back-then-resubmit, sends the same form again. The first submission
    runs and its answer is kept against the token: a redirect, or a page (the recovery codes
    of an enrolment, a login's second-factor step), with the cookies it set (a login's
    session). The same submission again gets that answer without running anything, and one
    arriving while the first still runs waits for it. Only successful answers are kept:
    after an error the form is shown again with a new token, and a retry should run.

    A redirect is kept for ``idempotency_ttl_seconds`` (a day): its body holds nothing, so
    going back and resubmitting hours later still lands where the first did. A page is kept
    only ``form_page_ttl_seconds`` (minutes): it may show a secret meant to be shown once
    (recovery codes), and on a shared computer the next person's back-then-resubmit must not
    bring it back. Either is sealed in the ledger under a key derived from the form token,
    which the store never sees (:class:`~sekisho.web.idempotency_store.IdempotencyLedger`).

    A form sent without a token (or with one the store no longer knows) just runs; CSRF is
    checked before this, and the token is scoped to the browser's CSRF cookie, so one browser
    can never be answered with another's outcome. The fields are part of the key: a form
    edited after going back is a new submission.
    """
    ledger: IdempotencyLedger | None = getattr(request.app.state, "idempotency", None)
    token = data.get(FORM_TOKEN, "")
    if ledger is None or not token or len(token) > _MAX_FORM_TOKEN:
        return await action(data)
    fields = ledger.digest(json.dumps(sorted(data.items())).encode())
    browser = request.cookies.get(request.app.state.cookies.csrf, "")
    begun = await ledger.begin("form:" + browser, request.method, request.url.path,
                               f"{token}:{fields}", fields, wait=LEASE_SECONDS)
    if isinstance(begun, Outcome):
        request.state.set_cookies.extend(begun.cookies)
        return begun.response()
    return await _run_claimed(request, data, action, ledger, begun)


async def _run_claimed(request: Request, data: dict[str, str], action: Action,
                       ledger: IdempotencyLedger, claim: Claim) -> Response:
    queued = request.state.set_cookies
    before = len(queued)
    try:
        response = await action(data)
    except BaseException:
        await ledger.release(claim)
        raise
    outcome = _worth_keeping(response, queued[before:])
    if outcome is None:
        await ledger.release(claim)
        return response
    # A page may show a secret meant to be shown once: kept minutes. A redirect: the
    # ledger's own lifetime.
    settings = request.app.state.core.settings
    await ledger.finish(claim, outcome,
                        ttl=settings.form_page_ttl_seconds if outcome.status < 300 else None)
    return response


def _worth_keeping(response: Response, cookies: list[Cookie]) -> Outcome | None:
    """A redirect, or a page small enough to keep; never an error (a retry must run)."""
    if not 200 <= response.status_code < 400:
        return None
    body = getattr(response, "body", None)  # a streamed answer has none to keep
    if not isinstance(body, bytes) or len(body) > MAX_KEPT_BODY:
        return None
    return Outcome(response.status_code, list(response.raw_headers), body, list(cookies))


async def handle_form(request: Request, template: str, action: Action,
                      keep: tuple[str, ...] = (), context: Context | None = None) -> Response:
    """Run a form POST (once per form token, see :func:`run_once`): on a catalogue error,
    show the form again with the error inline."""
    data: dict[str, str] = {}
    try:
        data = await form_data(request)
        return await run_once(request, data, action)
    except SekishoError as error:
        # First: if the form itself can no longer be shown (its flow expired), that error
        # is the one to show, and the one recorded.
        extra = await context() if callable(context) else context or {}
        view = await error_view(request, error)
        values = {k: data.get(k, "") for k in keep}
        headers = {"Retry-After": str(error.retry_after)} if error.retry_after else None
        return request.app.state.pages.render(
            request, template, {"error": view, "values": values, **extra},
            status_code=error.spec.status, headers=headers)
