"""The gateway database's connection pool comes from settings, on both databases."""

from __future__ import annotations

from sqlalchemy.pool import QueuePool

from gateway.data.services import Services
from gateway.ownership import OwnershipMap
from gateway.settings import load_settings


async def test_the_pool_is_sized_from_settings(database_url: str) -> None:
    settings = load_settings(
        database_url=database_url,
        database_pool_size=7,
        database_max_overflow=3,
        database_pool_timeout_s=2.5,
    )
    services = Services.build(settings, OwnershipMap.load(settings.ownership_file))
    try:
        pool = services.engine.sync_engine.pool
        assert isinstance(pool, QueuePool)
        assert (pool.size(), pool._max_overflow, pool._timeout) == (7, 3, 2.5)
    finally:
        await services.aclose()
