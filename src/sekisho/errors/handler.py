"""Turns every error into the CONTRACT.md envelope (JSON) or an error page (HTML).

Every error response names the recorded event behind it (``reference``): if the code that
raised the error did not record one, it is recorded here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from sqlalchemy import insert
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sekisho.errors.catalogue import FIELD_LABELS, REASONS, SekishoError, fill
from sekisho.events.models import AuthEvent, EventKind
from sekisho.status.notice import status_notice

log = logging.getLogger("sekisho.errors")


def wants_json(request: Request) -> bool:
    path = request.scope["path"]  # not request.url, which builds the whole URL
    if path.startswith("/api/") or path.endswith(".json"):
        return True
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def describe(error: SekishoError, locale: str,
             local_time: Callable[[datetime], str] | None = None) -> dict[str, Any]:
    """The error object of the envelope, in ``locale``, without the reference.

    ``local_time`` renders datetimes in the member's time zone ("sent at 14:05").
    """
    params = dict(error.params)
    for key, value in params.items():
        if isinstance(value, datetime):
            params[key] = local_time(value)[-5:] if local_time else value.strftime("%H:%M UTC")
    if error.retry_after is not None:
        params.setdefault("retry_after", error.retry_after)
        params.setdefault("retry_minutes", max(1, -(-error.retry_after // 60)))
    if error.field:
        params["field_label"] = FIELD_LABELS.get(error.field, {}).get(locale, error.field)
    reason = params.get("reason")
    if reason in REASONS:
        params["reason_text"] = fill(REASONS[reason][locale], params)
    message, remedy = error.spec.text(locale, params)
    body: dict[str, Any] = {"code": error.code, "message": message, "remedy": remedy}
    if error.field:
        body["field"] = error.field
    if reason:
        body["reason"] = reason
    if error.retry_after is not None:
        body["retry_after"] = error.retry_after
    body.update(error.extra)
    return body


async def ensure_reference(request: Request, error: SekishoError) -> str:
    """Record the event behind ``error`` unless its raiser already did; return the reference."""
    if error.reference:
        return error.reference
    core = request.app.state.core
    facts = request.state.facts
    # One plain INSERT in one hop: an overload answers many of these at once
    # (``service.busy``), and they must not cost more than the requests they refuse.
    event = core.events.values(
        kind=EventKind.REQUEST_REJECTED, outcome=error.code, ctx=facts.context(),
        account_id=getattr(request.state, "account_id", None),
        detail={"path": request.url.path, "method": request.method,
                **({"field": error.field} if error.field else {})})
    try:
        await core.db.run(lambda conn: conn.execute(insert(AuthEvent.__table__), event),
                          write=True)
        error.reference = event["reference"]
    except Exception:  # the database itself may be what failed; still give a reference
        error.reference = core.tokens.reference()
        log.exception("could not record event %s for %s", error.reference, error.code)
    return error.reference


async def error_object(request: Request, error: SekishoError) -> dict[str, Any]:
    """The envelope's error object in the request's language, with its ``reference``."""
    reference = await ensure_reference(request, error)
    body = describe(error, request.state.facts.locale, request.app.state.core.local_time)
    body["reference"] = reference
    return body


async def page_error(request: Request, error: SekishoError) -> dict[str, Any]:
    """``error`` as a page shows it (``base.html``: error pages and inline form errors alike):
    the error object and, as ``status_notice``, what ``/status`` says about the components the
    request needs, linking the incident behind it (see :func:`status_notice`)."""
    body = await error_object(request, error)
    body["status_notice"] = await status_notice(request)
    return body


async def render_error(request: Request, error: SekishoError) -> Response:
    """The envelope (JSON) or ``error.html``, and one log line naming both."""
    as_json = wants_json(request)
    body = await (error_object if as_json else page_error)(request, error)
    headers = {"Retry-After": str(error.retry_after)} if error.retry_after is not None else {}
    # As fields, not in the message text: the X-Request-Id a member quotes and the
    # ``auth_events`` row behind ``reference`` find this line by value in the JSON logs.
    log.info("error %s reference=%s", error.code, body["reference"], extra={
        "code": error.code, "reference": body["reference"],
        "request_id": request.state.facts.request_id})
    if as_json:
        return JSONResponse({"error": body}, status_code=error.spec.status, headers=headers)
    return request.app.state.pages.render(request, "error.html", {"error": body},
                                          status_code=error.spec.status, headers=headers)


def _validation_to_error(exc: RequestValidationError) -> SekishoError:
    first = exc.errors()[0] if exc.errors() else {}
    loc = [str(part) for part in first.get("loc", ()) if part not in ("body", "query")]
    kind = first.get("type", "")
    reason = {"missing": "missing", "string_too_long": "too_long",
              "json_invalid": "malformed_json"}.get(kind, "wrong_type")
    return SekishoError("request.invalid", field=loc[0] if loc else "body",
                        params={"reason": reason})


def install(app: FastAPI) -> None:
    """Register the one set of handlers."""

    @app.exception_handler(SekishoError)
    async def _sekisho(request: Request, exc: SekishoError) -> Response:
        return await render_error(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        return await render_error(request, _validation_to_error(exc))

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> Response:
        code = {404: "request.not_found", 405: "request.method_not_allowed"}.get(
            exc.status_code, "request.invalid")
        return await render_error(request, SekishoError(code))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return await render_error(request, SekishoError("service.error"))
