"""CSRF protection for HTML forms: a per-browser random token, echoed in every form.

Double-submit with a random cookie plus SameSite=Lax. JSON endpoints need no token: they
accept only ``application/json`` bodies, which a cross-site form cannot send without CORS.
"""

from __future__ import annotations

import hmac

from starlette.requests import Request

from sekisho.clock import TokenSource
from sekisho.errors import SekishoError
from sekisho.web.cookies import CookieJar, queue_cookie


def csrf_token(request: Request, cookies: CookieJar, tokens: TokenSource) -> str:
    """The browser's token; a new one is made (and set on the response) when it has none."""
    existing = request.cookies.get(cookies.csrf)
    if existing and len(existing) >= 32:
        return existing
    fresh: str | None = getattr(request.state, "new_csrf", None)
    if fresh is None:
        fresh = request.state.new_csrf = tokens.token(32)
        queue_cookie(request, cookies.csrf, fresh)
    return fresh


def check_csrf(request: Request, cookies: CookieJar, submitted: str | None) -> None:
    expected = request.cookies.get(cookies.csrf)
    if not expected or not submitted or not hmac.compare_digest(expected, submitted):
        raise SekishoError("request.csrf_failed")
