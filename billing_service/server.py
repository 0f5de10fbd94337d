"""Builds and runs the gRPC server: servicer, health, reflection, graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from dataclasses import dataclass
from typing import cast

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio  # type: ignore[attr-defined]
from grpc_reflection.v1alpha import reflection

from billing_service.audit import AuditLog
from billing_service.auth import build_authorizer, server_credentials
from billing_service.changes import ChangeNotifier
from billing_service.entitlements import EntitlementService
from billing_service.entitlements.service import WarmGate
from billing_service.events.service import EventService
from billing_service.health import DependencyHealth, track_cache_readiness
from billing_service.interceptors import GuardedServer
from billing_service.locks import EventGuard
from billing_service.metrics import start_http_exporter
from billing_service.plan_changes import PlanChanges
from billing_service.plans import Catalog, load_catalog
from billing_service.resync import ResyncService
from billing_service.servicer import BillingServicer
from billing_service.settings import Settings
from billing_service.storage.database import Database, migrate, pending_migrations
from billing_service.stripe_api import StripeApi
from billing_service.subscriptions import SubscriptionService
from generated.billing.v1 import billing_pb2 as pb
from generated.billing.v1 import billing_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["BillingService"].full_name


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
    guard: EventGuard
    entitlements: EntitlementService
    dependencies: DependencyHealth

    async def stop(self, grace: float | None = None) -> None:
        """Refuse new calls, let in-flight ones finish within ``grace``, then close."""
        await self.dependencies.close()
        await self.health.enter_graceful_shutdown()
        # Watch streams never finish on their own; end them so the grace is for unary calls.
        self.entitlements.end_streams()
        await self.server.stop(self.settings.shutdown_grace_seconds if grace is None else grace)
        await self.stripe.close()
        await self.guard.close()
        await self.entitlements.close()
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


async def start(settings: Settings, *, entitlement_warm_gate: WarmGate | None = None) -> App:
    """Build the server from ``settings`` and start serving.

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
    stripe_api = StripeApi(settings)
    changes = ChangeNotifier()
    entitlements = EntitlementService(
        db,
        catalog,
        redis_url=settings.redis_url,
        warm_gate=entitlement_warm_gate,
    )
    changes.subscribe(entitlements.user_changed)
    await entitlements.start()
    subscriptions = SubscriptionService(db, stripe_api, catalog, changes.user_changed)

    # Every servicer is added through the guard: authentication and metrics wrap each
    # method handler once, at registration (billing_service/interceptors.py).
    server = GuardedServer(grpc.aio.server(options=[("grpc.so_reuseport", 0)]), authorizer)
    guard = EventGuard(
        settings.redis_url,
        lock_ttl=settings.event_lock_ttl_seconds,
        dedupe_ttl=settings.event_dedupe_ttl_seconds,
        timeout=settings.redis_timeout_seconds,
    )
    events = EventService(
        db,
        catalog,
        stripe_api,
        guard,
        lock_wait=settings.event_lock_wait_seconds,
        on_user_changed=changes.user_changed,
    )
    servicer = BillingServicer(
        subscriptions,
        events,
        AuditLog(db),
        entitlements,
        plan_changes=PlanChanges(stripe_api, catalog, subscriptions),
        resync=ResyncService(
            db, catalog, stripe_api, events, subscriptions, on_user_changed=changes.user_changed
        ),
    )
    # The hot path: a cache hit is answered by the guard's wrapper itself.
    server.answer_first(f"/{SERVICE_NAME}/CheckEntitlement", servicer.answer_from_memory)
    pb_grpc.add_BillingServiceServicer_to_server(servicer, cast(grpc.aio.Server, server))
    health_servicer = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    await track_cache_readiness(entitlements, health_servicer)
    reflection.enable_server_reflection(
        (
            SERVICE_NAME,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ),
        cast(grpc.aio.Server, server),
    )
    if credentials is None:
        port = server.add_insecure_port(settings.grpc_addr)
    else:
        port = server.add_secure_port(settings.grpc_addr, credentials)
    if port == 0:
        raise StartupError(f"cannot listen on {settings.grpc_addr} (BILLING_GRPC_ADDR)")
    await server.start()
    dependencies = DependencyHealth(
        health_servicer, db, ("", SERVICE_NAME), redis_url=settings.redis_url
    )
    await dependencies.start()
    return App(
        settings,
        catalog,
        db,
        stripe_api,
        server.server,
        health_servicer,
        port,
        guard,
        entitlements,
        dependencies,
    )


async def serve(settings: Settings) -> None:
    """Serve until SIGTERM or SIGINT, then shut down gracefully."""
    app = await start(settings)
    # Everything built so far lives as long as the process; the cyclic GC need not walk it.
    gc.freeze()
    if settings.metrics_addr:
        metrics_port = start_http_exporter(settings.metrics_addr)
        metrics_host = settings.metrics_addr.rsplit(":", 1)[0]
        print(f"BILLING_METRICS_LISTENING {metrics_host}:{metrics_port}", flush=True)
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
