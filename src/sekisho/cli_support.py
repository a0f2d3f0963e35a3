"""What the operator commands share: the configured database, migrated when embedded, and
catalogue errors shown as usage errors."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import typer

from sekisho.settings import Settings

if TYPE_CHECKING:
    from sekisho.core import Core

T = TypeVar("T")


def run_with_core(work: Callable[[Core], Awaitable[T]]) -> T:
    """Run ``work(core)`` against the configured database; errors become CLI errors."""
    from sekisho.core import build_core
    from sekisho.errors import SekishoError
    from sekisho.errors.handler import describe

    settings = Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if settings.is_embedded_database:
        from sekisho.migrations.runner import upgrade

        upgrade(settings.resolved_database_url)

    async def main() -> T:
        core = build_core(settings)
        try:
            return await work(core)
        finally:
            await core.close()

    try:
        return asyncio.run(main())
    except SekishoError as error:
        text = describe(error, "en")
        where = f" ({error.field})" if error.field else ""
        reason = f" [{error.params['reason']}]" if error.params.get("reason") else ""
        raise typer.BadParameter(f"{error.code}{where}{reason}: {text['message']} "
                                 f"{text['remedy']}".strip()) from None
