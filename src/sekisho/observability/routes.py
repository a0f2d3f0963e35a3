"""``/readyz`` and ``/metrics``. (``/healthz``, liveness, is in ``status/routes.py``.)"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import JSONResponse, Response

from sekisho.errors import SekishoError
from sekisho.observability.readiness import readiness

router = APIRouter(include_in_schema=False)


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """200 when the database (and Redis, when configured) answer and the outbox keeps up;
    503 otherwise, naming what failed. For load balancers: take the process out, not down."""
    schedule = request.app.state.maintenance
    held = await schedule.held_channels(schedule.clock.now())
    ready, checks = await readiness(request.app.state.core, frozenset(map(str, held)))
    return JSONResponse({"status": "ready" if ready else "not_ready", "checks": checks},
                        status_code=200 if ready else 503)


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    """Prometheus text format. With ``metrics_token`` set, only for ``Bearer <token>``."""
    token = request.app.state.core.settings.metrics_token
    if token:
        given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise SekishoError("auth.required")
    collector = request.app.state.metrics
    await collector.refresh()
    return Response(generate_latest(request.app.state.metrics_registry),
                    media_type=CONTENT_TYPE_LATEST)
