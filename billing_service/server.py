"""Builds and runs the gRPC server: servicer, health, reflection, graceful shutdown.

This is the composition root, a little over 300 lines on purpose: ``start``
builds every component in the order they depend on each other (database,
Redis, locks, events, entitlements, usage, servicer, server) and ``App.stop``
undoes it in reverse; kept in one place, the start and stop orders can be
read side by side.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from dataclasses import dataclass
from typing import cast

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio  # type: ignore[attr-defined]

from billing_client.names import SERVICE_NAME, method_path
from billing_service.audit import AuditLog
from billing_service.auth import build_authorizer, server_credentials
from billing_service.changes import ChangeNotifier
from billing_service.checkout import CheckoutService
from billing_service.collector import settle_after_start_up
from billing_service.duplicates import DuplicateHandler
from billing_service.entitlements import EntitlementService, WarmGate
from billing_service.events.fetch_budget import FetchBudget
from billing_service.events.group_commit import GroupCommitter
from billing_service.events.service import EventService
from billing_service.events.writer import SubscriptionWriter
from billing_service.health import DependencyHealth, track_cache_readiness
from billing_service.interceptors import GuardedServer
from billing_service.invoices import InvoiceLog
from billing_service.listen import describe_os_error, listen_problem
from billing_service.locks import EventLocks
from billing_service.metrics import start_http_exporter
from billing_service.plan_changes import PlanChanges
from billing_service.plans import Catalog, load_catalog
from billing_service.redis_breaker import RedisBreaker
from billing_service.redis_client import Redis, connect, connect_sync
from billing_service.reflection import enable_reflection
from billing_service.resync import ResyncService
from billing_service.seat_changes import SeatChanges
from billing_service.servicer import BillingServicer
from billing_service.settings import Settings
from billing_service.storage.database import Database, migrate, pending_migrations
from billing_service.stream_limits import StreamLimiter
from billing_service.stripe_api import StripeApi
from billing_service.subscriptions import SubscriptionService
from billing_service.tracing import Tracing
from billing_service.tracing import from_env as tracing_from_env
from billing_service.usage.announce import UsageAnnouncer
from billing_service.usage.clock import make_clock
from billing_service.usage.counters import RedisCounters
from billing_service.usage.messages import delivered_as_messages
from billing_service.usage.reporter import UsageReporter
from billing_service.usage.service import UsageService
from generated.billing.v1 import billing_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)

# Accept the keepalive pings billing-client channels send (every 60 s, even
# between calls, to keep idle watch streams honest); gRPC's default would
# answer them with GOAWAY "too_many_pings".
SERVER_OPTIONS = [
    ("grpc.so_reuseport", 0),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_recv_ping_interval_without_data_ms", 30_000),
]


class StartupError(RuntimeError):
    """The service cannot start; the message says why."""


@dataclass
class App:
    """Everything one server process holds open."""

    settings: Settings
    catalog: Catalog
    db: Database
    stripe: StripeApi
    server: grpc.aio.Server
    health: health_aio.HealthServicer
    port: int
    redis: Redis | None
    entitlements: EntitlementService
    dependencies: DependencyHealth
    usage_reporter: UsageReporter
    usage: UsageService
    committer: GroupCommitter

    async def stop(self, grace: float | None = None) -> None:
        """Refuse new calls, let in-flight ones finish within ``grace``, then close."""
        await self.dependencies.close()
        await self.health.enter_graceful_shutdown()
        # Watch streams never finish on their own; end them so the grace is for unary calls.
        self.entitlements.end_streams()
        await self.server.stop(self.settings.shutdown_grace_seconds if grace is None else grace)
        await self.usage_reporter.close()
        await self.usage.close()
        await self.committer.close()
        await self.stripe.close()
        await self.entitlements.close()
        if self.redis is not None:
            await self.redis.aclose()
        self.db.close()


def prepare_database(settings: Settings) -> Database:
    """Open the database; SQLite migrates itself, PostgreSQL must be migrated first."""
    db = Database(settings.database_url, workers=settings.db_workers)
    if not db.is_postgres:
        applied = migrate(db.db)
        if applied:
            log.info("migrated sqlite database: %s", ", ".join(applied))
        return db
    pending = pending_migrations(db.db)
    if pending:
        raise StartupError(
            f"database has pending migrations ({', '.join(pending)}); run `billing-service migrate`"
        )
    return db


async def start(
    settings: Settings,
    tracing: Tracing | None = None,
    *,
    entitlement_warm_gate: WarmGate | None = None,
) -> App:
    """Build the server from ``settings`` and start serving (traced into ``tracing``, if any).

    ``entitlement_warm_gate`` lets a test hold the entitlement cache's warm-up
    at a chosen stage (see ``EntitlementService``).
    """
    catalog = load_catalog(settings.plans_file)
    authorizer = build_authorizer(
        settings.grpc_addr, settings.auth_policy_file, settings.insecure_no_auth
    )
    credentials = server_credentials(
        settings.tls_cert_file, settings.tls_key_file, settings.tls_client_ca_file
    )
    db = prepare_database(settings)
    stripe_api = StripeApi(
        settings, trace_config=tracing.aiohttp_client_trace_config() if tracing else None
    )
    # One client (one pool) for the whole process; see redis_client.py.
    redis = (
        connect(settings.redis_url, settings.redis_timeout_seconds) if settings.redis_url else None
    )
    changes = ChangeNotifier()
    entitlements = EntitlementService(db, catalog, redis=redis, warm_gate=entitlement_warm_gate)
    changes.subscribe(entitlements.user_changed)
    await entitlements.start()
    writer = SubscriptionWriter(db, catalog, stripe_api, changes.user_changed)
    subscriptions = SubscriptionService(
        db, stripe_api, catalog, writer, redirect_hosts=settings.redirect_hosts
    )
    duplicates = DuplicateHandler(db, stripe_api, subscriptions, catalog.on_duplicate)
    writer.on_duplicate = duplicates.handle

    # The tracing interceptor (when tracing is on) is the only grpc interceptor, so
    # refused calls are traced too. Every servicer is added through the guard:
    # authentication, deadlines and metrics wrap each method handler once, at
    # registration, not per call (billing_service/interceptors.py).
    interceptors = list(tracing.grpc_server_interceptors()) if tracing else None
    server = GuardedServer(
        grpc.aio.server(interceptors=interceptors, options=SERVER_OPTIONS),
        authorizer,
        default_deadline=settings.default_deadline_seconds,
    )
    breaker = RedisBreaker(settings.redis_breaker_seconds)
    locks = EventLocks(
        redis,
        lock_ttl=settings.event_lock_ttl_seconds,
        dedupe_ttl=settings.event_dedupe_ttl_seconds,
        breaker=breaker,
    )
    committer = GroupCommitter(
        db,
        max_batch=settings.event_batch_max,
        max_wait=settings.event_batch_wait_ms / 1000,
        concurrency=settings.event_writers,
    )
    events = EventService(
        db,
        catalog,
        stripe_api.single_attempt(),
        locks,
        lock_wait=settings.event_lock_wait_seconds,
        on_user_changed=writer.notify,
        fetch_budget=FetchBudget(settings.stripe_event_fetch_rate, redis),
        committer=committer,
        on_duplicate=duplicates.handle,
    )
    usage_clock = make_clock(settings.test_clock_file)
    announcer: UsageAnnouncer | None = None
    if redis is not None:
        announcer = UsageAnnouncer(redis, entitlements.usage_changed)
        await announcer.start()
    usage = UsageService(
        db,
        catalog,
        usage_clock,
        on_change=delivered_as_messages(
            announcer.announce if announcer is not None else entitlements.usage_changed
        ),
        announcer=announcer,
        counters=(
            RedisCounters(connect_sync(settings.redis_url, settings.redis_timeout_seconds))
            if settings.redis_url
            else None
        ),
    )
    usage.start()
    servicer = BillingServicer(
        subscriptions,
        events,
        AuditLog(db),
        entitlements,
        plan_changes=PlanChanges(stripe_api, catalog, subscriptions),
        seat_changes=SeatChanges(stripe_api, catalog, subscriptions),
        resync=ResyncService(db, stripe_api, events, subscriptions, writer),
        invoices=InvoiceLog(db),
        checkout=CheckoutService(
            db, stripe_api, catalog, subscriptions, redirect_hosts=settings.redirect_hosts
        ),
        usage=usage,
        stream_limits=StreamLimiter(settings.watch_max_streams_per_caller),
    )
    # The hot path: a cache hit is answered by the guard's wrapper itself.
    server.answer_first(method_path("CheckEntitlement"), servicer.answer_from_memory)
    pb_grpc.add_BillingServiceServicer_to_server(servicer, cast(grpc.aio.Server, server))
    health_servicer = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    await track_cache_readiness(entitlements, health_servicer)
    enable_reflection(
        (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name),
        cast(grpc.aio.Server, server),
    )
    try:
        if credentials is None:
            port = server.add_insecure_port(settings.grpc_addr)
        else:
            port = server.add_secure_port(settings.grpc_addr, credentials)
    except RuntimeError:
        port = 0
    if port == 0:
        # gRPC says only "failed to bind"; a bind of our own says why.
        raise StartupError(
            f"cannot listen on {settings.grpc_addr}: {listen_problem(settings.grpc_addr)} "
            "(BILLING_GRPC_ADDR)"
        )
    await server.start()
    dependencies = DependencyHealth(
        health_servicer, db, ("", SERVICE_NAME), redis=redis, breaker=breaker
    )
    await dependencies.start()
    reporter = UsageReporter(
        db,
        stripe_api,
        usage_clock,
        interval=settings.usage_report_interval_seconds,
        batch=settings.usage_report_batch,
    )
    reporter.start()
    return App(
        settings,
        catalog,
        db,
        stripe_api,
        server.server,
        health_servicer,
        port,
        redis,
        entitlements,
        dependencies,
        reporter,
        usage,
        committer,
    )


async def serve(settings: Settings) -> None:
    """Serve until SIGTERM or SIGINT, then shut down gracefully."""
    tracing = tracing_from_env("billing-service")
    if settings.metrics_addr:
        # First, so a taken metrics address stops the start before anything listens.
        try:
            metrics_port = start_http_exporter(settings.metrics_addr)
        except OSError as exc:
            raise StartupError(
                f"cannot listen on {settings.metrics_addr}: {describe_os_error(exc)} "
                "(BILLING_METRICS_ADDR)"
            ) from None
        metrics_host = settings.metrics_addr.rsplit(":", 1)[0]
        print(f"BILLING_METRICS_LISTENING {metrics_host}:{metrics_port}", flush=True)
    app = await start(settings, tracing)
    # Everything built so far lives as long as the process; the cyclic GC need not walk it.
    settle_after_start_up()
    host = settings.grpc_addr.rsplit(":", 1)[0]
    log.info("billing.v1 gRPC serving on %s:%d", host, app.port)
    # The line tests and tools wait for; it carries the real port when :0 was asked.
    print(f"BILLING_SERVICE_LISTENING {host}:{app.port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down: in-flight calls get %.1fs", settings.shutdown_grace_seconds)
    await app.stop()
    log.info("stopped")
    if tracing is not None:
        tracing.shutdown()
