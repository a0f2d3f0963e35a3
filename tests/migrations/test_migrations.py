"""The Alembic migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import AsyncEngine

from sekisho.db import make_engine
from sekisho.models import Base


async def _diff(url: str) -> list[object]:
    engine: AsyncEngine = make_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(
                lambda sync: compare_metadata(
                    MigrationContext.configure(sync, opts={"compare_type": True}),
                    Base.metadata))
    finally:
        await engine.dispose()


async def test_migrated_schema_matches_models(database_url):
    assert await _diff(database_url) == []
