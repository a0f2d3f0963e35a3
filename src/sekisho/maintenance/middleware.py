"""Enforcement: during a window, its routes answer ``503 service.maintenance``.

A pure ASGI middleware, installed inside :class:`~sekisho.web.middleware.EdgeMiddleware`
(it needs the request facts, and its answers get the security headers and request id).
Outside windows it costs one in-memory lookup: no database query (see
:meth:`MaintenanceSchedule.timetable`).

Errors raised here would not reach FastAPI's handlers, so the answer is rendered with the
handler's own functions: the JSON envelope by :func:`render_error`, the page from the same
:func:`describe` / :func:`ensure_reference` (a recorded event, a reference, ``Retry-After``).
Besides the CONTRACT members, the JSON error carries ``ends_at`` (RFC 3339, UTC) and, for a
window on some components only, ``components``.
"""

from __future__ import annotations

import logging
import math
from datetime import datetime

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from sekisho.errors import SekishoError
from sekisho.errors.handler import describe, ensure_reference, render_error, wants_json
from sekisho.identity.models import Role
from sekisho.maintenance.service import MaintenanceSchedule, component_labels, utc_iso
from sekisho.maintenance.timetable import ActiveWindow
from sekisho.status.components import Component
from sekisho.web.deps import optional_session

log = logging.getLogger("sekisho.maintenance")

ALWAYS_OPEN = ("/healthz", "/readyz", "/metrics", "/static", "/status")
"""Probes, monitoring, assets and the status page answer whatever the schedule says."""

ROUTES: tuple[tuple[str, Component], ...] = (
    ("/login", Component.LOGIN),
    ("/api/v1/login", Component.LOGIN),
    ("/unlock", Component.LOGIN),
    ("/api/v1/unlock", Component.LOGIN),
    ("/register", Component.REGISTRATION),
    ("/api/v1/registrations", Component.REGISTRATION),
    ("/verify", Component.REGISTRATION),
    ("/api/v1/verifications", Component.REGISTRATION),
    ("/login/mfa", Component.SECOND_FACTORS),
    ("/api/v1/login/mfa", Component.SECOND_FACTORS),
    ("/login/enrol", Component.SECOND_FACTORS),
    ("/api/v1/login/enrol", Component.SECOND_FACTORS),
    ("/api/v1/login/passkey", Component.SECOND_FACTORS),
    ("/account/totp", Component.SECOND_FACTORS),
    ("/account/second-factors", Component.SECOND_FACTORS),
    ("/api/v1/account/second-factors", Component.SECOND_FACTORS),
    ("/api/v1/account/passkeys", Component.SECOND_FACTORS),
    ("/api/v1/account/recovery-codes", Component.SECOND_FACTORS),
    # Routes whose whole point is to send a message now: better told "not now" than sent
    # a code that the outbox holds until after it has expired.
    ("/login/mfa/sms", Component.SMS),
    ("/api/v1/login/mfa/sms", Component.SMS),
    ("/verify/resend", Component.EMAIL),
    ("/api/v1/verifications/email/resend", Component.EMAIL),
    ("/recovery/resend", Component.EMAIL),
    ("/api/v1/recovery/resend", Component.EMAIL),
)
"""Which routes each component's windows close: a path belongs to every prefix it falls
under (``/api/v1/login/mfa/sms`` is login, second factors and SMS). Email and SMS windows
also hold their outbox channel (:meth:`MaintenanceSchedule.held_channels`)."""


def _under(path: str, prefix: str) -> bool:
    """``/login`` covers ``/login`` and ``/login/...``, never ``/loginx``."""
    return path == prefix or (path.startswith(prefix) and path[len(prefix)] in "/.")


def components_for(path: str) -> frozenset[Component]:
    return frozenset(component for prefix, component in ROUTES if _under(path, prefix))


def always_open(path: str) -> bool:
    return any(_under(path, prefix) for prefix in ALWAYS_OPEN)


def seconds_until(end: datetime, now: datetime) -> int:
    return max(1, math.ceil((end - now).total_seconds()))


class MaintenanceMiddleware:
    def __init__(self, app: ASGIApp, *, schedule: MaintenanceSchedule) -> None:
        self.app = app
        self.schedule = schedule

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or always_open(path):
            await self.app(scope, receive, send)
            return
        now = self.schedule.clock.now()
        window = await self.schedule.active(now, *components_for(path))
        if window is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        if await _is_staff(request):
            await self.app(scope, receive, send)
            return
        response = await maintenance_response(request, window, now)
        await response(scope, receive, send)


async def _is_staff(request: Request) -> bool:
    """Only inside a window is the session looked up (the route then reuses it:
    ``optional_session`` keeps it on request.state). The window may be for the database
    itself: if the lookup fails, the caller is treated as a member and gets the
    maintenance answer, not a 500."""
    try:
        active = await optional_session(request)
    except Exception:
        log.warning("session lookup failed during maintenance", exc_info=True)
        return False
    return active is not None and active.account.role == Role.ADMIN


async def maintenance_response(request: Request, window: ActiveWindow,
                               now: datetime) -> Response:
    """``503 service.maintenance`` as JSON (the CONTRACT envelope) or as the maintenance page."""
    core = request.app.state.core
    error = SekishoError("service.maintenance", retry_after=seconds_until(window.ends_at, now),
                         params={"ends_at": core.local_time(window.ends_at)},
                         extra={"ends_at": utc_iso(window.ends_at),
                                **({"components": sorted(c.value for c in window.components)}
                                   if window.components else {})})
    if wants_json(request):
        return await render_error(request, error)
    reference = await ensure_reference(request, error)
    locale = request.state.facts.locale
    body = describe(error, locale, core.local_time)
    body["reference"] = reference
    return request.app.state.pages.render(
        request, "maintenance.html",
        {"error": body, "window": window, "note": window.note(locale),
         "components": component_labels(window.components, locale)},
        status_code=error.spec.status, headers={"Retry-After": str(error.retry_after)})
