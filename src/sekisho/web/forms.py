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
from sekisho.errors.handler import describe, ensure_reference
from sekisho.web.csrf import check_csrf
from sekisho.web.idempotency_store import (
    LEASE_SECONDS,
    Claim,
    IdempotencyLedger,
    Outcome,
)

FORM_TOKEN = "form_token"
"""The hidden input naming one rendered form (``{{ form_token() }}`` in templates)."""
_MAX_FORM_TOKEN = 64


async def form_data(request: Request) -> dict[str, str]:
    """The submitted fields (strings only), after the CSRF check."""
    form = await request.form()
    data = {k: v for k, v in form.items() if isinstance(v, str)}
    check_csrf(request, request.app.state.cookies, data.get("csrf_token"))
    return data


async def error_view(request: Request, error: SekishoError) -> dict[str, Any]:
    reference = await ensure_reference(request, error)
    body = describe(error, request.state.facts.locale, request.app.state.core.local_time)
    body["reference"] = reference
    return body


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


async def run_once(request: Request, data: dict[str, str],
                   action: Callable[[dict[str, str]], Awaitable[Response]]) -> Response:
    """Run a submitted form's ``action`` once per form token and filled-in fields.

    A double click, or back-then-resubmit, sends the same form again. The first submission
    runs and its redirect (with the cookies it set: a login's session) is kept against the
    token; the same submission again gets that redirect without running anything, and one
    arriving while the first still runs waits for it. Only redirects are kept: after an
    error the form is shown again with a new token, and a retry should run. A form sent
    without a token (or with one the store no longer knows) just runs; CSRF is checked
    before this, and the token is scoped to the browser's CSRF cookie, so one browser can
    never be answered with another's redirect. The fields are part of the key: a form edited
    after going back is a new submission.
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


async def _run_claimed(request: Request, data: dict[str, str],
                       action: Callable[[dict[str, str]], Awaitable[Response]],
                       ledger: IdempotencyLedger, claim: Claim) -> Response:
    queued = request.state.set_cookies
    before = len(queued)
    try:
        response = await action(data)
    except BaseException:
        await ledger.release(claim)
        raise
    if 300 <= response.status_code < 400:
        await ledger.finish(claim, Outcome(response.status_code, list(response.raw_headers),
                                           cookies=list(queued[before:])))
    else:
        await ledger.release(claim)
    return response


async def handle_form(request: Request, template: str,
                      action: Callable[[dict[str, str]], Awaitable[Response]],
                      keep: tuple[str, ...] = (), context: dict[str, Any] | None = None,
                      ) -> Response:
    """Run a form POST (once per form token, see :func:`run_once`): on a catalogue error,
    show the form again with the error inline."""
    data: dict[str, str] = {}
    try:
        data = await form_data(request)
        return await run_once(request, data, action)
    except SekishoError as error:
        view = await error_view(request, error)
        values = {k: data.get(k, "") for k in keep}
        headers = {"Retry-After": str(error.retry_after)} if error.retry_after else None
        return request.app.state.pages.render(
            request, template, {"error": view, "values": values, **(context or {})},
            status_code=error.spec.status, headers=headers)
