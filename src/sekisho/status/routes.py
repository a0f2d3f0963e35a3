"""``/healthz`` (liveness) and ``/status`` (what members see)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from sekisho.web.i18n import N_

router = APIRouter(include_in_schema=False)


@router.get("/healthz")
async def healthz() -> JSONResponse:
    """Liveness only: answers without touching the database, so it stays fast under load."""
    return JSONResponse({"status": "ok"})


@router.get("/status")
async def status_page(request: Request) -> Response:
    return request.app.state.pages.render(request, "status.html", {
        "components": [(N_("Login"), N_("Operational")),
                       (N_("Registration"), N_("Operational")),
                       (N_("Email delivery"), N_("Operational"))],
    })
