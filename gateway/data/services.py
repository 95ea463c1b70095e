"""The process-wide services a request may use, built once at start-up and closed at exit."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta

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
from gateway.data.detached import stop
from gateway.data.owned import Owned
from gateway.data.reads import Reader
from gateway.data.redis_guard import RedisGuard
from gateway.data.registry import Registry
from gateway.data.remembered import Kind, Remembered
from gateway.data.responses import Responses
from gateway.events.actions import ACTIONS, Actions
from gateway.events.broadcast import CREDITS, CUSTOMERS, WORKFLOW_RUNS, Broadcast
from gateway.events.consumer import StreamConsumer, sweep_forever
from gateway.events.feeds import ChangeFeeds
from gateway.events.intake import Intake
from gateway.events.relay import Relay
from gateway.events.routing import Router, Routes
from gateway.ownership import OwnershipMap
from gateway.reconcile.book import Book
from gateway.reconcile.engine import Reconciler, ReconciliationRunning
from gateway.reconcile.scope import Scope, scope_of
from gateway.rules.credit_policy import CreditPolicy
from gateway.rules.severity import SeverityPolicy
from gateway.settings import Settings
from gateway.storage.database import PoolSize, create_engine, sessions
from gateway.telemetry import tracing
from gateway.telemetry.metrics import Metrics
from gateway.workflows.engine import Engine, run_json
from gateway.writes.credits import SERVICE_CREDIT, Credits
from gateway.writes.idempotency import Idempotency
from gateway.writes.outbox import Notifications
from gateway.writes.pipeline import Writes

log = logging.getLogger("opsgraph.services")

# How often idempotency records past their 24 h are deleted (they are absent to reads
# as soon as they expire; this only keeps the table small).
PURGE_EVERY_S = 3600.0
# How often the outbox's events are relayed to the stream, and the stream read for new ones.
RELAY_INTERVAL_S = 1.0
CONSUME_INTERVAL_S = 0.2


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
    # Governed writes: idempotency keys, routing to owners, their audit.
    writes: Writes
    credits: Credits
    workflows: Engine
    notifications: Notifications
    # Events in: webhook deliveries, proved, stored and processed; the change feeds of the
    # systems that send none, polled every ``change_feed_interval_s``.
    intake: Intake
    feeds: ChangeFeeds
    relay: Relay
    # Which events start which actions, and the stream's consumer (with Redis) that routes
    # them; events no consumer routed within ``event_claim_after_s`` are routed from the inbox.
    router: Router
    consumer: StreamConsumer | None
    event_claim_after_s: float
    # Status out: what subscriptions hear, on every replica (Redis pub/sub when configured),
    # and how many may run at once on one connection.
    broadcast: Broadcast
    # What opsgraph owns, kept in memory for the read path, forgotten by the writes.
    remembered: Remembered
    # Registered queries' answers, served again while what they were built from holds.
    responses: Responses
    # Billing against the ERP: runs, and the book of exceptions they keep.
    reconciler: Reconciler
    book: Book
    reconcile_at_start: Scope | None
    reconcile_every_s: float
    reconcile_periods: int
    subscriptions_per_connection: int
    streams_per_principal: int
    background_interval_s: float
    change_feed_interval_s: float
    # What ``/metrics`` exports; every service here records into it.
    metrics: Metrics
    # The HTTP streams each principal holds open now (``resolvers.subscriptions``).
    streams: Counter[str] = field(default_factory=Counter)
    _background: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    def build(
        cls,
        settings: Settings,
        ownership: OwnershipMap,
        policy: CreditPolicy | None = None,
        routes: Routes | None = None,
        metrics: Metrics | None = None,
    ) -> Services:
        """The services for ``settings``; ``policy`` and ``routes`` are the credit policy
        and event routes the caller loaded (else the settings' files are loaded here), and
        ``metrics`` the app's (else they have their own)."""
        metrics = metrics or Metrics()
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
        if settings.telemetry.tracing:
            tracing.trace_engine(engine)
            if redis is not None:
                tracing.trace_redis(redis.redis)
        # With Redis, breaker state is shared: a system one replica finds down is paused
        # for every replica, not rediscovered by each. While Redis is down, each keeps its own.
        breakers = AsyncCircuitBreakerFactory(
            uow=None if redis is None else FallbackUnitOfWork(redis)
        )
        registry = Registry.from_settings(settings, ownership, breakers, metrics.calls)
        cache: EntityCache = MemoryCache() if redis is None else FallbackCache(redis)
        fresh = {SystemName(name): c.cache_ttl_s for name, c in settings.connectors().items()}
        keys = ApiKeys(session_factory)
        audit = AuditLog(session_factory)
        reader = Reader(
            registry,
            cache,
            fresh,
            settings.cache_keep_s,
            catalogs={ObjectKind.PLAN: settings.catalog_ttl_s},
        )
        writes = Writes(
            ownership, registry, reader, Idempotency(session_factory), audit, metrics=metrics
        )
        remembered = Remembered(settings.owned_ttl_s)
        crosswalk = Crosswalk(session_factory, remembered)
        credits = Credits(
            session_factory,
            writes,
            crosswalk,
            policy or CreditPolicy.load(settings.credit_policy_file),
            metrics=metrics,
        )
        broadcast = Broadcast(redis)

        async def run_moved(run_id: str) -> None:
            # The run as it is now, read once here rather than by every subscriber later
            # (by when it may have moved on again).
            assert credits.engine is not None
            run = await credits.engine.get(run_id)
            if run is not None:
                await broadcast.publish(WORKFLOW_RUNS, {"run": run_id, "view": run_json(run)})

        routes = routes or Routes.load(settings.event_routes_file, ACTIONS)
        actions = Actions(writes, crosswalk, credits)
        credits.engine = Engine(
            session_factory,
            {SERVICE_CREDIT: credits.workflow(), **routes.workflows(actions)},
            lease_s=settings.workflow_lease_s,
            step_timeout_s=settings.workflow_lease_s / 2,
            moved=run_moved,
            ended=metrics.workflow_finished,
        )

        async def credit_moved(credit_id: str) -> None:
            credit = await credits.get(credit_id)
            await remembered.forget(Kind.CREDITS, [credit.customer_id])
            await broadcast.publish(CREDITS, {"credit": credit_id})
            await broadcast.publish(CUSTOMERS, {"customer": credit.customer_id})

        credits.moved = credit_moved
        secrets = {SystemName(n): c.webhook_secret for n, c in settings.connectors().items()}
        intake = Intake(
            session_factory, reader, audit, secrets, broadcast, crosswalk, metrics=metrics
        )
        router = Router(session_factory, credits.engine, routes)
        claim_after_s = settings.event_claim_after_s
        return cls(
            engine=engine,
            registry=registry,
            crosswalk=crosswalk,
            redis=redis,
            breakers=breakers,
            reader=reader,
            owned=Owned(session_factory, remembered),
            remembered=remembered,
            responses=Responses(settings.response_cache, cache, metrics),
            authenticate=Authenticator(TokenVerifier(settings.auth), keys),
            keys=keys,
            audit=audit,
            writes=writes,
            credits=credits,
            workflows=credits.engine,
            notifications=Notifications(session_factory, writes),
            intake=intake,
            feeds=ChangeFeeds(session_factory, registry, intake),
            relay=Relay(session_factory, redis, route=router.route),
            router=router,
            consumer=(
                None
                if redis is None
                else StreamConsumer(redis, router, claim_after_s=claim_after_s)
            ),
            event_claim_after_s=claim_after_s,
            broadcast=broadcast,
            reconciler=Reconciler(
                session_factory,
                registry,
                SeverityPolicy.load(settings.reconciliation_policy_file),
                broadcast,
                remembered=remembered,
            ),
            book=Book(session_factory, remembered),
            reconcile_at_start=(
                None
                if settings.reconcile_at_start is None
                else scope_of(settings.reconcile_at_start)
            ),
            reconcile_every_s=settings.reconcile_every_s,
            reconcile_periods=settings.reconcile_periods,
            subscriptions_per_connection=settings.limits.max_subscriptions_per_connection,
            streams_per_principal=settings.limits.max_streams_per_principal,
            background_interval_s=settings.workflow_interval_s,
            change_feed_interval_s=settings.change_feed_interval_s,
            metrics=metrics,
        )

    async def start(self) -> None:
        await self.breakers.initialize()
        self.broadcast.start()
        self.registry.start()
        self.intake.start()
        # Runs a stopped process left behind resume, and notifications go out, from here on.
        interval = self.background_interval_s
        self._background = [
            asyncio.create_task(self.workflows.run_forever(interval)),
            asyncio.create_task(self.notifications.run_forever(interval)),
            asyncio.create_task(self.writes.idempotency.purge_forever(PURGE_EVERY_S)),
            asyncio.create_task(self.intake.process_forever(interval)),
            asyncio.create_task(self.feeds.poll_forever(self.change_feed_interval_s)),
            asyncio.create_task(self.relay.run_forever(RELAY_INTERVAL_S, PURGE_EVERY_S)),
            asyncio.create_task(self.remembered.listen(self.broadcast)),
            asyncio.create_task(
                sweep_forever(self.router, timedelta(seconds=self.event_claim_after_s), interval)
            ),
        ]
        if self.reconcile_at_start is not None:
            try:
                await self.reconciler.start(self.reconcile_at_start, "opsgraph (at start)")
            except ReconciliationRunning as running:
                log.info("no reconciliation at start: run %s is under way", running.run_id)
        if self.reconcile_every_s > 0:
            self._background.append(
                asyncio.create_task(
                    self.reconciler.schedule_forever(self.reconcile_every_s, self.reconcile_periods)
                )
            )
        if self.consumer is not None:
            self._background.append(
                asyncio.create_task(self.consumer.run_forever(CONSUME_INTERVAL_S))
            )

    async def aclose(self) -> None:
        await stop(self._background, "background work")
        await self.reconciler.aclose()
        await self.intake.aclose()
        await self.broadcast.aclose()
        await self.registry.aclose()
        await self.audit.drain()
        await self.keys.drain()
        if self.redis is not None:
            await self.redis.aclose()
        await self.engine.dispose()
