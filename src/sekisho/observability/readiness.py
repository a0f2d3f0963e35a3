"""``/readyz``: can this process serve? The database answers, Redis (when configured) answers,
and the outbox is not falling behind."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, func, select, text

from sekisho.notify.models import DeliveryState, OutboxMessage

if TYPE_CHECKING:
    from sekisho.core import Core


async def outbox_figures(core: Core, held: frozenset[str] = frozenset(),
                         ) -> tuple[dict[tuple[str, str], int], float]:
    """Messages by (channel, state), and the age in seconds of the oldest pending one (not
    counting ``held`` channels: a maintenance window holds their delivery on purpose)."""
    table = OutboxMessage.__table__
    now = core.clock.now()

    def read(conn: Connection) -> tuple[dict[tuple[str, str], int], float]:
        counts = {(str(channel), str(state)): int(n) for channel, state, n in conn.execute(
            select(table.c.channel, table.c.state, func.count())
            .where(table.c.state != DeliveryState.SENT)
            .group_by(table.c.channel, table.c.state))}
        pending = select(func.min(table.c.created_at)).where(
            table.c.state == DeliveryState.PENDING)
        if held:
            pending = pending.where(table.c.channel.not_in(sorted(held)))
        oldest = conn.scalar(pending)
        return counts, max(0.0, (now - oldest).total_seconds()) if oldest else 0.0

    return await core.db.run(read)


async def readiness(core: Core, held: frozenset[str] = frozenset(),
                    ) -> tuple[bool, dict[str, Any]]:
    """Each check's result; ready only if all pass."""
    checks: dict[str, Any] = {}
    try:
        await core.db.run(lambda conn: conn.execute(text("SELECT 1")))
        checks["database"] = "ok"
    except Exception as error:  # noqa: BLE001 - any failure means not ready
        checks["database"] = f"error: {type(error).__name__}"
    redis = getattr(core.lockout.store, "redis", None)  # the lanes' client, when shared
    if redis is not None:
        try:
            await redis.ping()
            checks["redis"] = "ok"
        except Exception as error:  # noqa: BLE001
            checks["redis"] = f"error: {type(error).__name__}"
    try:
        _, lag = await outbox_figures(core, held)
        limit = core.settings.outbox_lag_limit_seconds
        checks["outbox_lag_seconds"] = round(lag, 1)
        if lag > limit:
            checks["outbox"] = f"behind by more than {limit} s"
    except Exception as error:  # noqa: BLE001
        checks["outbox"] = f"error: {type(error).__name__}"
    ready = all(v == "ok" for k, v in checks.items() if k in ("database", "redis")) \
        and "outbox" not in checks
    return ready, checks
