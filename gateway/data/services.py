"""The process-wide services a request may use, built once at start-up and closed at exit."""

from __future__ import annotations

from dataclasses import dataclass

from purgatory import AsyncCircuitBreakerFactory
from sqlalchemy.ext.asyncio import AsyncEngine

from connectors.models import ObjectKind, SystemName
from gateway.auth.keys import ApiKeys
from gateway.auth.middleware import Authenticate, Authenticator
from gateway.auth.tokens import TokenVerifier
from gateway.data.audit import AuditLog
from gateway.data.breakers import FallbackUnitOfWork
from gateway.data.cache import EntityCache, FallbackCache, MemoryCache
from gateway.data.crosswalk import Crosswalk
from gateway.data.owned import Owned
from gateway.data.reads import Reader
from gateway.data.redis_guard import RedisGuard
from gateway.data.registry import Registry
from gateway.ownership import OwnershipMap
from gateway.settings import Settings
from gateway.storage.database import PoolSize, create_engine, sessions


@dataclass
class Services:
    engine: AsyncEngine
    registry: Registry
    crosswalk: Crosswalk
    redis: RedisGuard | None  # every Redis call goes through it
    reader: Reader
    owned: Owned
    breakers: AsyncCircuitBreakerFactory
    # A request's credential -> its principal (gateway.auth.middleware).
    authenticate: Authenticate
    keys: ApiKeys
    audit: AuditLog

    @classmethod
    def build(cls, settings: Settings, ownership: OwnershipMap) -> Services:
        engine = create_engine(
            settings.database_url,
            PoolSize(
                settings.database_pool_size,
                settings.database_max_overflow,
                settings.database_pool_timeout_s,
            ),
        )
        session_factory = sessions(engine)
        redis = (
            RedisGuard.from_url(
                settings.redis_url, settings.redis_timeout_s, settings.redis_retry_s
            )
            if settings.redis_url
            else None
        )
        # With Redis, breaker state is shared: a system one replica finds down is paused
        # for every replica, not rediscovered by each. While Redis is down, each keeps its own.
        breakers = AsyncCircuitBreakerFactory(
            uow=None if redis is None else FallbackUnitOfWork(redis)
        )
        registry = Registry.from_settings(settings, ownership, breakers)
        cache: EntityCache = MemoryCache() if redis is None else FallbackCache(redis)
        fresh = {SystemName(name): c.cache_ttl_s for name, c in settings.connectors().items()}
        keys = ApiKeys(session_factory)
        return cls(
            engine=engine,
            registry=registry,
            crosswalk=Crosswalk(session_factory),
            redis=redis,
            breakers=breakers,
            reader=Reader(
                registry,
                cache,
                fresh,
                settings.cache_keep_s,
                catalogs={ObjectKind.PLAN: settings.catalog_ttl_s},
            ),
            owned=Owned(session_factory),
            authenticate=Authenticator(TokenVerifier(settings.auth), keys),
            keys=keys,
            audit=AuditLog(session_factory),
        )

    async def start(self) -> None:
        await self.breakers.initialize()
        self.registry.start()

    async def aclose(self) -> None:
        await self.registry.aclose()
        await self.audit.drain()
        await self.keys.drain()
        if self.redis is not None:
            await self.redis.aclose()
        await self.engine.dispose()
