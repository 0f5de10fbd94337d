"""Entitlements at scale: bulk population loads, service RSS and warm-up, Watch fan-out.

Used by ``bench.entitlements`` (``--memory``, ``--watch``); see docs/performance.md.
"""

from __future__ import annotations

import asyncio
import io
import sqlite3
import statistics
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import grpc
from prometheus_client.parser import text_string_to_metric_families

from bench.proc_stats import rss_bytes
from devtools.processes import REPO_ROOT, ListeningProcess
from devtools.waiting import wait_until
from generated.billing.v1 import billing_pb2 as pb
from generated.billing.v1 import billing_pb2_grpc as pb_grpc

COLUMNS = (
    "stripe_subscription_id",
    "user_id",
    "stripe_customer_id",
    "status",
    "plan",
    "price_id",
    "current_period_start",
    "current_period_end",
    "cancel_at_period_end",
    "stripe_created",
    "last_event_created",
    "last_event_id",
    "last_state_digest",
    "interval",
    "quantity",
    "unit_amount",
    "currency",
    "discount",
    "created_at",
    "updated_at",
)


def _values(row: dict[str, Any]) -> tuple[Any, ...]:
    full = {
        "last_event_created": 0,
        "last_event_id": "",
        "last_state_digest": "",
        "interval": "month",
        "quantity": 1,
        "unit_amount": 0,
        "currency": "usd",
        "discount": "",
        **row,
    }
    return tuple(full[c] for c in COLUMNS)


def bulk_load(url: str, rows: Iterator[dict[str, Any]]) -> int:
    """Insert ``rows`` into the migrated database at ``url``: COPY on PostgreSQL,
    executemany on SQLite (the ORM's insert_many takes minutes at a million rows)."""
    count = 0
    if url.startswith("sqlite:///"):
        conn = sqlite3.connect(url[len("sqlite:///") :])
        placeholders = ", ".join("?" for _ in COLUMNS)
        with conn:
            batch: list[tuple[Any, ...]] = []
            for row in rows:
                batch.append(tuple(_sqlite(v) for v in _values(row)))
                if len(batch) == 10_000:
                    conn.executemany(
                        f"INSERT INTO subscription ({', '.join(COLUMNS)}) VALUES ({placeholders})",  # noqa: S608
                        batch,
                    )
                    count += len(batch)
                    batch = []
            if batch:
                conn.executemany(
                    f"INSERT INTO subscription ({', '.join(COLUMNS)}) VALUES ({placeholders})",  # noqa: S608
                    batch,
                )
                count += len(batch)
        conn.close()
        return count
    import psycopg2

    pg = psycopg2.connect(url)
    with pg, pg.cursor() as cur:
        buf = io.StringIO()
        for row in rows:
            buf.write("\t".join(_pg(v) for v in _values(row)) + "\n")
            count += 1
            if count % 100_000 == 0:
                buf.seek(0)
                cur.copy_expert(f"COPY subscription ({', '.join(COLUMNS)}) FROM STDIN", buf)
                buf = io.StringIO()
        buf.seek(0)
        cur.copy_expert(f"COPY subscription ({', '.join(COLUMNS)}) FROM STDIN", buf)
        cur.execute("ANALYZE subscription")
    pg.close()
    return count


def _sqlite(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat(" ")
    if isinstance(value, bool):
        return int(value)
    return value


def _pg(value: Any) -> str:
    if value is None:
        return r"\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, datetime):
        return value.isoformat(" ")
    return str(value)


# -- memory and warm-up -----------------------------------------------------------------


def scrape(target: str) -> dict[str, float]:
    """Every unlabelled sample of the service's /metrics."""
    with urllib.request.urlopen(f"http://{target}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if not sample.labels
    }


class MetricsService(ListeningProcess):
    """``billing-service serve`` that also reports where /metrics is served."""

    name = "billing-service"

    def __init__(self, env: dict[str, str], checkout: Path = REPO_ROOT) -> None:
        super().__init__(
            ["billing_service.cli", "serve"],
            {**env, "BILLING_METRICS_ADDR": "127.0.0.1:0"},
            ready_line="BILLING_SERVICE_LISTENING",
            ready_timeout=120,
            cwd=checkout,
        )
        self.metrics_target = ""

    def on_line(self, line: str) -> None:
        """Remember where /metrics is served."""
        if line.startswith("BILLING_METRICS_LISTENING "):
            self.metrics_target = line.split()[1]


def wait_complete(service: MetricsService, timeout: float = 600) -> dict[str, float]:
    """Poll /metrics until the entitlement cache is complete; the metrics then."""
    return wait_until(
        "the entitlement cache to be complete",
        lambda: scrape(service.metrics_target),
        lambda metrics: metrics.get("billing_entitlement_cache_complete") == 1,
        within=timeout,
    )


def warm_service(env: dict[str, str]) -> dict[str, float]:
    """Start the service on ``env``; wait for complete mode; its RSS and warm-up figures."""
    started = time.perf_counter()
    with MetricsService(env) as service:
        assert service.proc is not None
        metrics = wait_complete(service)
        ready = time.perf_counter() - started
        time.sleep(1.0)  # let the warm-up's garbage go before reading RSS
        return {
            "rss_bytes": rss_bytes(service.proc.pid),
            "warm_s": metrics["billing_entitlement_cache_warm_seconds"],
            "warm_cpu_s": metrics["billing_entitlement_cache_warm_cpu_seconds"],
            "start_to_complete_s": ready,
            "entries": metrics["billing_entitlement_cache_entries"],
        }


# -- Watch fan-out ----------------------------------------------------------------------


def run_watchers(
    target: str, streams: int, changes: int, ready: Any, received: Any, out: Any
) -> None:
    """Process entry: ``streams`` WatchEntitlements streams of user "fan-out"; put the wall-clock
    arrival time of each live change on each stream (``changes`` per stream) on ``out``."""

    async def main() -> list[list[float]]:
        arrivals: list[list[float]] = [[] for _ in range(streams)]
        async with grpc.aio.insecure_channel(target) as channel:
            stub = pb_grpc.BillingServiceStub(channel)
            calls = [
                stub.WatchEntitlements(pb.WatchEntitlementsRequest(user_ids=["fan-out"]))
                for _ in range(streams)
            ]

            async def reader(call: Any, times: list[float]) -> None:
                async for message in call:
                    if not message.snapshot:
                        times.append(time.time())
                        with received.get_lock():
                            received.value += 1
                        if len(times) == changes:
                            return

            tasks = [
                asyncio.create_task(reader(c, t)) for c, t in zip(calls, arrivals, strict=True)
            ]
            for call in calls:
                await call.initial_metadata()
            ready.put(True)
            await asyncio.wait_for(asyncio.gather(*tasks), 600)
            for call in calls:
                call.cancel()
        return arrivals

    out.put(asyncio.run(main()))


def watch_fanout(
    target: str,
    pid: int,
    streams: int,
    changes: int,
    processes: int,
    subscribe: Callable[[int], None],
    ctx: Any,
) -> dict[str, float]:
    """``streams`` WatchEntitlements streams (user "fan-out") on one replica, spread over
    ``processes`` client processes; ``changes`` times, ``subscribe(n)`` (ApplyStripeEvent) and the
    delay from its answer to each stream's message; the server's RSS per open stream."""
    ready, out = ctx.Queue(), ctx.Queue()
    received = ctx.Value("l", 0)
    per = [streams // processes + (1 if k < streams % processes else 0) for k in range(processes)]
    rss_before = rss_bytes(pid)
    procs = [
        ctx.Process(target=run_watchers, args=(target, n, changes, ready, received, out))
        for n in per
    ]
    for proc in procs:
        proc.start()
    for _ in procs:
        ready.get(timeout=300)
    time.sleep(1.0)  # let the open streams' allocations settle before reading RSS
    rss_open = rss_bytes(pid)
    answered: list[float] = []
    for n in range(changes):
        subscribe(n)
        answered.append(time.time())
        expected = streams * (n + 1)
        wait_until(
            f"change {n} to reach all {streams} streams",
            lambda: received.value,
            lambda count: count >= expected,  # noqa: B023 - called before the next turn
            within=60,
            interval=0.001,
        )
    arrivals = [times for _ in procs for times in out.get(timeout=120)]
    for proc in procs:
        proc.join()
    delays = [times[n] - answered[n] for times in arrivals for n in range(changes)]
    q = statistics.quantiles(sorted(delays), n=100, method="inclusive")
    return {
        "streams": streams,
        "changes": changes,
        "client_processes": processes,
        "p50_ms": round(q[49] * 1e3, 2),
        "p99_ms": round(q[98] * 1e3, 2),
        "max_ms": round(max(delays) * 1e3, 2),
        "rss_per_stream_bytes": round((rss_open - rss_before) / streams),
    }
