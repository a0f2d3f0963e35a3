"""Helpers for server-rendered forms: CSRF check, inline errors with their reference, PRG."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from sekisho.errors import SekishoError
from sekisho.errors.handler import describe, ensure_reference
from sekisho.web.csrf import check_csrf


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


async def handle_form(request: Request, template: str,
                      action: Callable[[dict[str, str]], Awaitable[Response]],
                      keep: tuple[str, ...] = (), context: dict[str, Any] | None = None,
                      ) -> Response:
    """Run a form POST: on a catalogue error, show the form again with the error inline."""
    data: dict[str, str] = {}
    try:
        data = await form_data(request)
        return await action(data)
    except SekishoError as error:
        view = await error_view(request, error)
        values = {k: data.get(k, "") for k in keep}
        headers = {"Retry-After": str(error.retry_after)} if error.retry_after else None
        return request.app.state.pages.render(
            request, template, {"error": view, "values": values, **(context or {})},
            status_code=error.spec.status, headers=headers)
