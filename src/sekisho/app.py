"""``create_app(settings)``: the ASGI application."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from fastapi import FastAPI

from sekisho import __version__
from sekisho.account.contact import ContactChanges
from sekisho.account.routes_activity import router as account_activity
from sekisho.account.routes_api import router as account_api
from sekisho.account.routes_html import router as account_pages
from sekisho.account.service import AccountSettings
from sekisho.clock import Clock, TokenSource
from sekisho.context import describe_user_agent
from sekisho.core import Core, build_core
from sekisho.db import Database
from sekisho.errors import handler as error_handler
from sekisho.flows.login.service import LoginFlow
from sekisho.flows.recovery.service import RecoveryFlow
from sekisho.flows.registration.service import RegistrationFlow
from sekisho.flows.routes_api import router as flow_api
from sekisho.flows.routes_html import router as flow_pages
from sekisho.maintenance.middleware import MaintenanceMiddleware
from sekisho.maintenance.routes_api import router as maintenance_api
from sekisho.maintenance.service import MaintenanceSchedule
from sekisho.methods.password.hashing import python_on_one_cpu
from sekisho.notify.worker import OutboxWorker
from sekisho.observability.metrics import ServiceCollector, registry_for
from sekisho.observability.routes import router as observability_routes
from sekisho.oidc.routes import router as oidc_routes
from sekisho.oidc.routes_admin import router as oidc_admin_api
from sekisho.oidc.service import OidcService
from sekisho.settings import Settings
from sekisho.status.board import build_board
from sekisho.status.routes import router as status_routes
from sekisho.status.routes_api import router as status_api
from sekisho.waiting_room.middleware import WaitingRoomMiddleware
from sekisho.waiting_room.routes import router as waiting_room_api
from sekisho.waiting_room.service import WaitingRoom
from sekisho.web.cookies import CookieJar
from sekisho.web.idempotency import IdempotencyMiddleware
from sekisho.web.idempotency_store import IdempotencyLedger, open_store
from sekisho.web.middleware import EdgeMiddleware
from sekisho.web.pacing import PacingMiddleware
from sekisho.web.static import static_router
from sekisho.web.templating import Pages

log = logging.getLogger("sekisho")


@dataclass
class Flows:
    registration: RegistrationFlow
    login: LoginFlow
    recovery: RecoveryFlow
    account: AccountSettings
    contact: ContactChanges


def create_app(settings: Settings | None = None, *, clock: Clock | None = None,
               tokens: TokenSource | None = None, database: Database | None = None) -> FastAPI:
    """Build the app. Everything it needs is passed in; nothing is read from globals."""
    settings = settings or Settings()
    core: Core = build_core(settings, clock, tokens, database)
    # Duplicate-safe requests (Idempotency-Key, one-time form tokens), shared across
    # processes through Redis like the lockout lanes.
    idempotency = IdempotencyLedger(open_store(settings.redis_url, core.clock),
                                    settings.resolved_secret_key(),
                                    ttl=settings.idempotency_ttl_seconds)
    maintenance = MaintenanceSchedule.from_core(core)
    worker = OutboxWorker(core.db, settings, core.clock, held=maintenance.held_channels)
    core.notifier.on_enqueue = worker.wake

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()
        task = None
        # What start-up built (modules, templates, word lists) lives as long as the process:
        # moved out of the collector's sight, full collections stay short under load.
        # Loaded now rather than by their first use, which would stall the event loop
        # 0.05-0.1 s each: the compiled mail templates, the user-agent tables and the password
        # blocklist (the first failed login checks its typo corrections against it).
        core.notifier.renderer.preload()
        core.policy.preload()
        describe_user_agent("Mozilla/5.0")
        gc.collect()
        gc.freeze()
        if settings.python_on_one_cpu and (cpu := python_on_one_cpu()) is not None:
            log.info("python threads on cpu %d, hashing threads on every cpu", cpu)
        if settings.run_outbox_worker:
            task = asyncio.create_task(worker.run_forever(stop), name="sekisho-outbox")
        try:
            yield
        finally:
            stop.set()
            worker.wake()
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait_for(task, timeout=10)
            await worker.close()
            await core.close()
            await idempotency.close()

    app = FastAPI(title="sekisho", version=__version__, lifespan=lifespan,
                  openapi_url="/api/v1/openapi.json", docs_url="/api/v1/docs", redoc_url=None)
    app.state.core = core
    app.state.worker = worker
    app.state.maintenance = maintenance
    app.state.cookies = CookieJar(settings)
    app.state.pages = Pages(settings.service_name)
    app.state.idempotency = idempotency
    app.state.waiting_room = WaitingRoom.build(settings, core.clock, core.tokens)
    app.state.status = build_board(core, worker, maintenance)
    app.state.metrics = ServiceCollector(core, app.state.waiting_room, worker,
                                         app.state.status.delivery)
    app.state.metrics_registry = registry_for(app.state.metrics)
    app.state.pages.env.globals["delivery_delays"] = app.state.status.delivery_delays
    app.state.flows = Flows(RegistrationFlow(core), LoginFlow(core), RecoveryFlow(core),
                            AccountSettings(core), ContactChanges(core))
    app.state.oidc = OidcService(core, app.state.flows.login.factors)
    error_handler.install(app)
    for router in (flow_api, account_api, account_activity, maintenance_api, status_api,
                   waiting_room_api, oidc_admin_api, flow_pages, account_pages, status_routes,
                   oidc_routes, observability_routes, static_router()):
        app.include_router(router)
    # Middleware, outermost last: the edge (request facts, security headers, cookies, the
    # access log), then maintenance (nobody waits for or retries into a closed service),
    # then the waiting room, then paced starts (a burst starts a few per turn of the event
    # loop), then duplicate-safe requests (a queued answer is never stored), then the routes.
    app.add_middleware(IdempotencyMiddleware, ledger=idempotency)
    app.add_middleware(PacingMiddleware)
    app.add_middleware(WaitingRoomMiddleware, room=app.state.waiting_room)
    app.add_middleware(MaintenanceMiddleware, schedule=maintenance)
    app.add_middleware(EdgeMiddleware, settings=settings, tokens=core.tokens,
                       cookies=app.state.cookies)
    return app
