"""CheckEntitlement under load, against a bare gRPC server answering the same messages from a dict.

::

    .venv/bin/python -m bench.entitlements                      # SQLite, then PostgreSQL + Redis
    .venv/bin/python -m bench.entitlements --backend sqlite --users 100000 --duration 10

For each backend it loads a population of users across tiers (bulk insert),
starts ``billing-service serve`` on it and, in the same run, a bare grpc.aio
server with the same method, request and response messages answering from a
dict. Client processes (grpc.aio, many calls in flight each) then load each
server in turn: a warm-up, then the measured window. It prints QPS and
p50/p99 latency for both and their ratio, and writes
bench/results/entitlements.json. Users are drawn with a Zipf-like skew, as
real traffic is; users first seen during the window are real cache misses.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import multiprocessing as mp
import os
import platform
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import grpc

from bench.entitlements_scale import (
    MetricsService,
    bulk_load,
    wait_complete,
    warm_service,
    watch_fanout,
)
from bench.proc_stats import cpu_seconds
from devtools.redis_server import RedisServer
from generated.billing.v1 import billing_pb2 as pb
from generated.billing.v1 import billing_pb2_grpc as pb_grpc

REPO = Path(__file__).resolve().parents[1]
PLANS = REPO / "plans.example.toml"
RESULTS = REPO / "bench" / "results" / "entitlements.json"
POSTGRES_ADMIN = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
SEED = 20251127

# (share of users, kind): what the population looks like.
MIX: tuple[tuple[float, str], ...] = (
    (0.40, "none"),
    (0.30, "pro"),
    (0.15, "studio"),
    (0.05, "pro_cancelling"),
    (0.05, "pro_past_due"),
    (0.05, "canceled"),
)


def user_ids(n: int) -> list[str]:
    """The population's user ids."""
    return [f"bench-user-{i:07d}" for i in range(n)]


FREE_SHARE = 0.40


def kinds(n: int, free_share: float = FREE_SHARE) -> list[str]:
    """Each user's kind (deterministic); ``free_share`` of them have no subscription."""
    rng = random.Random(SEED)
    paid = 1.0 - MIX[0][0]
    shares = [free_share] + [share / paid * (1.0 - free_share) for share, _ in MIX[1:]]
    names = [name for _, name in MIX]
    return rng.choices(names, weights=shares, k=n)


def rows(n: int, now: datetime, free_share: float = FREE_SHARE) -> Iterator[dict[str, Any]]:
    """Subscription rows of the population (users of kind "none" have none)."""
    for i, (user, kind) in enumerate(zip(user_ids(n), kinds(n, free_share), strict=True)):
        if kind == "none":
            continue
        plan = "studio" if kind == "studio" else "pro"
        status = {"pro_past_due": "past_due", "canceled": "canceled"}.get(kind, "active")
        yield {
            "stripe_subscription_id": f"sub_bench_{i}",
            "user_id": user,
            "stripe_customer_id": f"cus_bench_{i}",
            "status": status,
            "plan": plan,
            "price_id": f"price_{plan}_monthly",
            "current_period_start": now - timedelta(days=10),
            "current_period_end": now + timedelta(days=20),
            "cancel_at_period_end": kind == "pro_cancelling",
            "stripe_created": 1_700_000_000 + i,
            "created_at": now,
            "updated_at": now,
        }


# -- backends ---------------------------------------------------------------------------


def load_population(url: str, n: int, free_share: float = FREE_SHARE) -> tuple[float, int]:
    """Migrate ``url`` and bulk-insert the population; (seconds taken, subscribed users)."""
    from billing_service.storage.database import migrate, open_database
    from billing_service.storage.models import database, utcnow

    started = time.perf_counter()
    db = open_database(url)
    database.initialize(db)
    migrate(db)
    db.close()
    count = bulk_load(url, rows(n, utcnow(), free_share))
    return time.perf_counter() - started, count


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A throwaway PostgreSQL database."""
    from urllib.parse import urlsplit

    import psycopg2

    admin = psycopg2.connect(POSTGRES_ADMIN, connect_timeout=3)
    admin.autocommit = True
    name = f"billing_bench_{uuid.uuid4().hex[:10]}"
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlsplit(POSTGRES_ADMIN)._replace(path=f"/{name}").geturl()
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def service_env(database_url: str, redis_url: str, plans: Path = PLANS) -> dict[str, str]:
    """Environment of ``billing-service serve`` over the database."""
    return {
        "BILLING_GRPC_ADDR": "127.0.0.1:0",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "BILLING_PLANS_FILE": str(plans),
        "BILLING_LOG_LEVEL": "WARNING",
        "BILLING_SHUTDOWN_GRACE_SECONDS": "1",
        # Loopback only; the auth interceptor still runs (and is measured) on every call.
        "BILLING_INSECURE_NO_AUTH": "true",
        # Nothing in these benchmarks needs Stripe; a closed port makes sure nothing reaches it.
        "STRIPE_SECRET_KEY": "sk_test_bench",
        "STRIPE_API_BASE": "http://127.0.0.1:9",
        "STRIPE_MAX_NETWORK_RETRIES": "0",
        # The fan-out part opens its 1,000 streams as one caller.
        "BILLING_WATCH_MAX_STREAMS_PER_CALLER": "10000",
    }


@contextlib.contextmanager
def billing_service(
    database_url: str, redis_url: str, extra: dict[str, str] | None = None
) -> Iterator[MetricsService]:
    """``billing-service serve`` over the database, once its entitlement cache is complete."""
    with MetricsService({**service_env(database_url, redis_url), **(extra or {})}) as service:
        wait_complete(service)
        yield service


@contextlib.contextmanager
def backend_database(backend: str) -> Iterator[tuple[str, str]]:
    """(database URL, Redis URL) of a fresh database: SQLite alone, or PostgreSQL + Redis."""
    with contextlib.ExitStack() as stack:
        if backend == "sqlite":
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-"))
            yield f"sqlite:///{tmp}/billing.db", ""
        else:
            url = stack.enter_context(postgres_database())
            yield url, stack.enter_context(RedisServer()).url


# -- the bare server --------------------------------------------------------------------


class BareServicer(pb_grpc.BillingServiceServicer):
    """CheckEntitlement from a dict of prebuilt responses, nothing else."""

    def __init__(self, answers: dict[str, Mapping[str, pb.CheckEntitlementResponse]]) -> None:
        self._answers = answers

    async def CheckEntitlement(
        self, request: pb.CheckEntitlementRequest, context: Any
    ) -> pb.CheckEntitlementResponse:
        """The prebuilt answer for (user, feature)."""
        return self._answers[request.user_id][request.feature]


def bare_answers(n: int) -> dict[str, Mapping[str, pb.CheckEntitlementResponse]]:
    """The same answers the service gives, computed without a database."""
    from billing_service.entitlements.model import build_entry
    from billing_service.entitlements.wire import ResponseBook
    from billing_service.plans import load_catalog
    from billing_service.storage.models import Subscription, utcnow

    book = ResponseBook(load_catalog(PLANS))
    now = utcnow()
    by_user: dict[str, Subscription | None] = dict.fromkeys(user_ids(n))
    for row in rows(n, now, FREE_SHARE):
        by_user[row["user_id"]] = Subscription(**row)
    # The per-tier answer dicts are shared, as in the service; the lookups per call are the same.
    return {user: build_entry(user, row, book, now).checks for user, row in by_user.items()}


def run_bare(n: int, ready: Any, loop: str = "") -> None:
    """Process entry: serve the bare server (on uvloop when ``loop`` says so); report its port."""

    async def main() -> None:
        server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
        pb_grpc.add_BillingServiceServicer_to_server(BareServicer(bare_answers(n)), server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        ready.put(port)
        await server.wait_for_termination()

    if loop == "uvloop":
        import uvloop

        uvloop.run(main())
    else:
        asyncio.run(main())


# -- clients ----------------------------------------------------------------------------


def requests_for(n: int, seed: int, count: int = 50_000) -> list[pb.CheckEntitlementRequest]:
    """Requests with a Zipf-like skew over users (rank r drawn with weight 1/(r+1))."""
    from billing_service.plans import load_catalog

    features = sorted(load_catalog(PLANS).all_features)
    users = user_ids(n)
    random.Random(SEED).shuffle(users)
    cum: list[float] = []
    total = 0.0
    for rank in range(n):
        total += 1.0 / (rank + 1)
        cum.append(total)
    rng = random.Random(seed)
    picked = rng.choices(users, cum_weights=cum, k=count)
    return [pb.CheckEntitlementRequest(user_id=u, feature=rng.choice(features)) for u in picked]


def run_client(
    target: str, n: int, seed: int, inflight: int, warmup: float, duration: float, out: Any
) -> None:
    """Process entry: keep ``inflight`` calls going; report (calls, latencies) of the window."""

    async def main() -> tuple[int, list[float], int]:
        reqs = requests_for(n, seed)
        latencies: list[float] = []
        calls = total = 0
        async with grpc.aio.insecure_channel(target) as channel:
            stub = pb_grpc.BillingServiceStub(channel)
            await channel.channel_ready()
            start = time.perf_counter()
            measure_from = start + warmup
            end = measure_from + duration

            async def worker(offset: int) -> None:
                nonlocal calls, total
                i = offset
                while True:
                    t0 = time.perf_counter()
                    if t0 >= end:
                        return
                    await stub.CheckEntitlement(reqs[i % len(reqs)])
                    t1 = time.perf_counter()
                    total += 1
                    if t0 >= measure_from and t1 <= end:
                        latencies.append(t1 - t0)
                        calls += 1
                    i += inflight

            await asyncio.gather(*(worker(k) for k in range(inflight)))
        return calls, latencies, total

    out.put(asyncio.run(main()))


@dataclass
class Measurement:
    """Throughput and latency of one server under the load."""

    qps: float
    p50_ms: float
    p99_ms: float
    calls: int
    cpu_us_per_call: float


def load(
    target: str, pid: int, args: argparse.Namespace, ctx: Any, duration: float
) -> tuple[int, list[float], float]:
    """Run the client processes against ``target`` (process ``pid``); the calls and latencies
    of the window, and the server's CPU seconds per call over every call made."""
    out = ctx.Queue()
    procs = [
        ctx.Process(
            target=run_client,
            args=(target, args.users, SEED + k, args.inflight, args.warmup, duration, out),
        )
        for k in range(args.clients)
    ]
    cpu_before = cpu_seconds(pid)
    for proc in procs:
        proc.start()
    results = [out.get() for _ in procs]
    cpu = cpu_seconds(pid) - cpu_before
    for proc in procs:
        proc.join()
    made = sum(t for _, _, t in results)
    return sum(c for c, _, _ in results), [x for _, xs, _ in results for x in xs], cpu / made


def summarize(
    calls: int, latencies: list[float], seconds: float, cpu: list[float] | None = None
) -> Measurement:
    """QPS and percentiles of everything measured; the median round's server CPU per call."""
    q = statistics.quantiles(sorted(latencies), n=100, method="inclusive")
    cpu_us = round(statistics.median(cpu) * 1e6, 1) if cpu else 0.0
    return Measurement(calls / seconds, q[49] * 1e3, q[98] * 1e3, calls, cpu_us)


def bench_backend(backend: str, args: argparse.Namespace, ctx: Any) -> dict[str, Any]:
    """Set up ``backend``, measure the bare server and the service in alternating rounds."""
    with contextlib.ExitStack() as stack:
        url, redis_url = stack.enter_context(backend_database(backend))
        loaded, _ = load_population(url, args.users)
        print(f"[{backend}] loaded {args.users} users in {loaded:.1f}s", flush=True)
        targets: dict[str, tuple[str, int]] = {}
        for name in args.servers.split(","):
            loop = name.split("-", 1)[1] if "-" in name else ""
            if name.startswith("bare"):
                ready = ctx.Queue()
                bare = ctx.Process(target=run_bare, args=(args.users, ready, loop), daemon=True)
                bare.start()
                stack.callback(bare.terminate)
                targets[name] = (f"127.0.0.1:{ready.get(timeout=600)}", bare.pid)
            else:
                env = {"BILLING_EVENT_LOOP": loop} if loop else {}
                service = stack.enter_context(billing_service(url, redis_url, env))
                assert service.proc is not None
                targets[name] = (service.target, service.proc.pid)
        # Alternating rounds spread any background load on the machine over every server.
        window = args.duration / args.rounds
        totals: dict[str, tuple[int, list[float], list[float]]] = {
            name: (0, [], []) for name in targets
        }
        for round_no in range(args.rounds):
            for name, (target, pid) in targets.items():
                calls, lat, cpu = load(target, pid, args, ctx, window)
                print(
                    f"[{backend}] round {round_no + 1} {name}: {calls / window:.0f} QPS, "
                    f"{cpu * 1e6:.0f} us CPU per call",
                    flush=True,
                )
                done, lats, cpus = totals[name]
                totals[name] = (done + calls, lats + lat, [*cpus, cpu])
    measured = {
        name: summarize(totals[name][0], totals[name][1], args.duration, totals[name][2])
        for name in targets
    }
    baseline = measured[next(iter(targets))]
    return {
        "backend": backend if backend == "sqlite" else "postgresql+redis",
        "population_load_s": round(loaded, 1),
        "baseline": next(iter(targets)),
        "servers": {
            name: {
                **asdict(m),
                "qps_ratio": round(m.qps / baseline.qps, 3),
                "p99_ratio": round(m.p99_ms / baseline.p99_ms, 3),
                "cpu_ratio": round(m.cpu_us_per_call / baseline.cpu_us_per_call, 3),
            }
            for name, m in measured.items()
        },
    }


def bench_memory(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    """RSS of the service over an empty database and over the population; warm-up time."""
    with backend_database(backend) as (url, redis_url):
        load_population(url, 0)
        empty = warm_service(service_env(url, redis_url))
    with backend_database(backend) as (url, redis_url):
        loaded_s, subscribed = load_population(url, args.users, args.free_share)
        print(f"[{backend}] loaded {subscribed} subscriptions in {loaded_s:.1f}s", flush=True)
        full = warm_service(service_env(url, redis_url))
    grown = full["rss_bytes"] - empty["rss_bytes"]
    row = {
        "backend": backend if backend == "sqlite" else "postgresql+redis",
        "users": args.users,
        "subscribed": subscribed,
        "warm_s": round(full["warm_s"], 2),
        "warm_cpu_s": round(full["warm_cpu_s"], 2),
        "start_to_complete_s": round(full["start_to_complete_s"], 2),
        "rss_empty_mb": round(empty["rss_bytes"] / 2**20, 1),
        "rss_mb": round(full["rss_bytes"] / 2**20, 1),
        "bytes_per_subscribed_user": round(grown / max(1, subscribed)),
    }
    print(f"[{backend}] memory: {row}", flush=True)
    return row


def memory_table(rows_: list[dict[str, Any]]) -> str:
    """The RSS and warm-up results as a Markdown table."""
    lines = [
        "| backend | users (subscribed) | warm-up s | warm-up CPU s | start to complete s "
        "| RSS empty MB | RSS MB | bytes per subscribed user |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows_:
        lines.append(
            f"| {r['backend']} | {r['users']:,} ({r['subscribed']:,}) | {r['warm_s']} | "
            f"{r['warm_cpu_s']} | "
            f"{r['start_to_complete_s']} | {r['rss_empty_mb']} | {r['rss_mb']} | "
            f"{r['bytes_per_subscribed_user']} |"
        )
    return "\n".join(lines)


def bench_watch(backend: str, args: argparse.Namespace, ctx: Any) -> dict[str, Any]:
    """WatchEntitlements fan-out: ``--watch-streams`` streams on one replica."""
    from tests.events import factory

    def subscribe(target: str, n: int) -> None:
        status = "active" if n % 2 == 0 else "past_due"
        obj = factory.subscription(
            "sub_fanout", "cus_fanout", status, price="price_pro_monthly", user_id="fan-out"
        )
        event = factory.event("customer.subscription.updated", obj)
        with grpc.insecure_channel(target) as channel:
            stub = pb_grpc.BillingServiceStub(channel)
            stub.ApplyStripeEvent(
                pb.ApplyStripeEventRequest(payload=factory.payload(event)), timeout=30
            )

    with backend_database(backend) as (url, redis_url):
        load_population(url, args.users)
        with billing_service(url, redis_url) as service:
            assert service.proc is not None
            target = service.target
            result = watch_fanout(
                target,
                service.proc.pid,
                args.watch_streams,
                args.watch_changes,
                args.clients,
                functools.partial(subscribe, target),
                ctx,
            )
    row = {"backend": backend if backend == "sqlite" else "postgresql+redis", **result}
    print(f"[{backend}] watch: {row}", flush=True)
    return row


def table(results: list[dict[str, Any]]) -> str:
    """The results as a Markdown table."""
    lines = [
        "| backend | server | QPS | p50 ms | p99 ms | server CPU µs/call | QPS ratio "
        "| p99 ratio | CPU ratio |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        for name, m in r["servers"].items():
            lines.append(
                f"| {r['backend']} | {name} | {m['qps']:.0f} | {m['p50_ms']:.2f} | "
                f"{m['p99_ms']:.2f} | {m['cpu_us_per_call']:.0f} | {m['qps_ratio']:.2f} | "
                f"{m['p99_ratio']:.2f} | {m['cpu_ratio']:.2f} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; see the module docstring."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.entitlements",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per server")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds per round")
    parser.add_argument("--clients", type=int, default=3, help="client processes")
    parser.add_argument("--inflight", type=int, default=100, help="calls in flight per client")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds per server")
    parser.add_argument(
        "--parts",
        default="qps",
        help="comma-separated: qps (A/B against the bare server), memory (RSS and warm-up), "
        "watch (WatchEntitlements fan-out)",
    )
    parser.add_argument(
        "--free-share",
        type=float,
        default=FREE_SHARE,
        help="memory: share of users without a subscription (0: every user subscribed)",
    )
    parser.add_argument(
        "--servers",
        default="bare,service",
        help="qps: servers in the A/B, the first is the baseline: bare, bare-uvloop, service, "
        "service-asyncio, service-uvloop (BILLING_EVENT_LOOP)",
    )
    parser.add_argument("--watch-streams", type=int, default=1000)
    parser.add_argument("--watch-changes", type=int, default=20)
    args = parser.parse_args(argv)
    ctx = mp.get_context("spawn")  # no fork after gRPC started (grpc#16001)
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    parts = set(args.parts.split(","))
    memory = [bench_memory(b, args) for b in backends] if "memory" in parts else []
    watch = [bench_watch(b, args, ctx) for b in backends] if "watch" in parts else []
    results = [bench_backend(b, args, ctx) for b in backends] if "qps" in parts else []
    report = {
        "command": "python -m bench.entitlements " + " ".join(argv or sys.argv[1:]),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "users": args.users,
        "duration_s": args.duration,
        "warmup_s_per_round": args.warmup,
        "rounds": args.rounds,
        "clients": args.clients,
        "inflight_per_client": args.inflight,
        "target": "service QPS >= 0.9 x bare, service p99 <= 1.25 x bare",
        "results": results,
        "memory": memory,
        "watch": watch,
        "loadavg_at_end": os.getloadavg(),
    }
    out = (
        RESULTS
        if parts == {"qps"}
        else RESULTS.with_name(f"entitlements-{'-'.join(sorted(parts))}.json")
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print()
    if memory:
        print(memory_table(memory))
    if watch:
        print(json.dumps(watch, indent=2))
    if results:
        print(table(results))
    print(f"\nwritten to {out.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
