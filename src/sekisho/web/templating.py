"""Jinja2 pages with gettext, the locale and the CSRF token available to every template."""

from __future__ import annotations

from functools import partial
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from sekisho.web.forms import form_token
from sekisho.web.i18n import translations


class Pages:
    def __init__(self, service_name: str) -> None:
        self.env = Environment(
            loader=PackageLoader("sekisho", "templates"),
            autoescape=select_autoescape(["html"]),
            extensions=["jinja2.ext.i18n"],
            trim_blocks=True, lstrip_blocks=True,
            # Templates ship with the package: no file check on every render (a crowd's
            # waiting pages are thousands of renders a minute).
            auto_reload=False,
        )
        self.env.globals["service_name"] = service_name

    def render(self, request: Request, name: str, context: dict[str, Any] | None = None,
               status_code: int = 200, headers: dict[str, str] | None = None) -> HTMLResponse:
        facts = request.state.facts
        locale = facts.locale
        t = translations(locale)
        values = {"request": request, "locale": locale, "csrf_token": request.state.csrf_token(),
                  "form_token": partial(form_token, request),
                  "_": t.gettext, "gettext": t.gettext, "ngettext": t.ngettext,
                  "current_path": request.url.path, **(context or {})}
        html = self.env.get_template(name).render(values)
        response = HTMLResponse(html, status_code=status_code, headers=headers)
        response.headers.setdefault("Cache-Control", "no-store")
        return response
