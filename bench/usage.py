"""ConsumeUsage under load on PostgreSQL, against a bare gRPC server answering the same messages.

::

    .venv/bin/python -m bench.usage                       # spread users, then one hot user
    .venv/bin/python -m bench.usage --duration 10 --users 10000

It starts ``billing-service serve`` on a fresh PostgreSQL database (with a
Redis for the entitlement cache) and, in the same run, a bare grpc.aio server
whose ConsumeUsage returns a prebuilt answer. Client processes keep many
calls in flight, each with a fresh idempotency key, first on users drawn
uniformly from a population (``spread``), then all on one user (``hot``: every
call waits on the same counter row lock). After each run the ledger is checked:
the counters equal the sum of the counted records, no counter passes the
limit, and the service counted exactly the calls it answered ``allowed``.
Prints a table, writes bench/results/usage.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import platform
import random
import sys
import tempfile
import time
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any

import grpc

from bench.entitlements import postgres_database, summarize
from bench.proc_stats import cpu_seconds
from devtools.processes import ListeningProcess
from devtools.redis_server import RedisServer
from generated.billing.v1 import billing_pb2 as pb
from generated.billing.v1 import billing_pb2_grpc as pb_grpc

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "usage.json"
METER = "api_calls"
SEED = 20261130


def plans_file(directory: str, limit: int) -> Path:
    """The example catalog with the free tier's api_calls set to ``limit``."""
    text = (REPO / "plans.example.toml").read_text(encoding="utf-8")
    text = text.replace("[free.limits]\napi_calls = 20", f"[free.limits]\napi_calls = {limit}")
    path = Path(directory) / "plans.toml"
    path.write_text(text, encoding="utf-8")
    return path


class BareServicer(pb_grpc.BillingServiceServicer):
    """ConsumeUsage answering a prebuilt message, nothing else."""

    def __init__(self) -> None:
        self._answer = pb.ConsumeUsageResponse(
            allowed=True, used=1, limit=1000, remaining=999, reason="counted"
        )
        self._answer.period_end.GetCurrentTime()
        self._answer.period_start.GetCurrentTime()

    async def ConsumeUsage(
        self, request: pb.ConsumeUsageRequest, context: Any
    ) -> pb.ConsumeUsageResponse:
        """The prebuilt answer."""
        return self._answer


def run_bare(ready: Any) -> None:
    """Process entry: serve the bare server; report its port on ``ready``."""

    async def main() -> None:
        server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
        pb_grpc.add_BillingServiceServicer_to_server(BareServicer(), server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        ready.put(port)
        await server.wait_for_termination()

    asyncio.run(main())


def run_client(
    target: str,
    users: list[str],
    seed: int,
    inflight: int,
    warmup: float,
    duration: float,
    out: Any,
) -> None:
    """Process entry: keep ``inflight`` calls going; report (calls, latencies, allowed)."""

    async def main() -> tuple[int, list[float], int]:
        rng = random.Random(seed)
        prefix = uuid.uuid4().hex[:12]
        latencies: list[float] = []
        calls = allowed = 0
        async with grpc.aio.insecure_channel(target) as channel:
            stub = pb_grpc.BillingServiceStub(channel)
            await channel.channel_ready()
            start = time.perf_counter()
            measure_from = start + warmup
            end = measure_from + duration
            counter = 0

            async def worker() -> None:
                nonlocal calls, allowed, counter
                while True:
                    t0 = time.perf_counter()
                    if t0 >= end:
                        return
                    counter += 1
                    request = pb.ConsumeUsageRequest(
                        user_id=rng.choice(users),
                        meter=METER,
                        quantity=1,
                        idempotency_key=f"{prefix}-{counter}",
                    )
                    answer = await stub.ConsumeUsage(request)
                    allowed += answer.allowed
                    t1 = time.perf_counter()
                    if t0 >= measure_from and t1 <= end:
                        latencies.append(t1 - t0)
                        calls += 1

            await asyncio.gather(*(worker() for _ in range(inflight)))
        return calls, latencies, allowed

    out.put(asyncio.run(main()))


def load(
    target: str, users: list[str], args: argparse.Namespace, ctx: Any
) -> tuple[int, list[float], int]:
    """Run the client processes against ``target``; calls, latencies and allowed answers."""
    out = ctx.Queue()
    procs = [
        ctx.Process(
            target=run_client,
            args=(target, users, SEED + k, args.inflight, args.warmup, args.duration, out),
        )
        for k in range(args.clients)
    ]
    for proc in procs:
        proc.start()
    results = [out.get() for _ in procs]
    for proc in procs:
        proc.join()
    return (
        sum(r[0] for r in results),
        [x for r in results for x in r[1]],
        sum(r[2] for r in results),
    )


def commits(url: str) -> int:
    """Transactions committed in the database so far (pg_stat_database)."""
    import psycopg2

    with contextlib.closing(psycopg2.connect(url)) as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_stat_force_next_flush()")
        cur.execute("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
        return int(cur.fetchone()[0])


def ledger_check(url: str, limit: int) -> dict[str, Any]:
    """Counters vs the ledger: sums, the largest counter, records counted."""
    import psycopg2

    with contextlib.closing(psycopg2.connect(url)) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT COALESCE(SUM(counted), 0), COUNT(*) FILTER (WHERE counted > 0) "
            "FROM usage_record WHERE refunded_at IS NULL"
        )
        counted, records = cur.fetchone()
        cur.execute("SELECT COALESCE(SUM(used), 0), COALESCE(MAX(used), 0) FROM usage_counter")
        used, largest = cur.fetchone()
    return {
        "ledger_sum": int(counted),
        "counter_sum": int(used),
        "max_counter": int(largest),
        "counted_records": int(records),
        "exact": int(counted) == int(used) and int(largest) <= limit,
    }


def bench(args: argparse.Namespace, ctx: Any) -> list[dict[str, Any]]:
    """Both scenarios, each against the bare server and the service."""
    results = []
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-usage-"))
        plans = plans_file(tmp, args.limit)
        url = stack.enter_context(postgres_database())
        from billing_service.storage.database import migrate, open_database

        migrate(open_database(url))
        redis_url = stack.enter_context(RedisServer()).url
        ready = ctx.Queue()
        bare = ctx.Process(target=run_bare, args=(ready,), daemon=True)
        bare.start()
        stack.callback(bare.terminate)
        bare_target = f"127.0.0.1:{ready.get(timeout=60)}"
        service = stack.enter_context(
            ListeningProcess(
                ["billing_service.cli", "serve"],
                {
                    "BILLING_GRPC_ADDR": "127.0.0.1:0",
                    "DATABASE_URL": url,
                    "REDIS_URL": redis_url,
                    "BILLING_PLANS_FILE": str(plans),
                    "BILLING_LOG_LEVEL": "WARNING",
                    "BILLING_SHUTDOWN_GRACE_SECONDS": "1",
                    "BILLING_INSECURE_NO_AUTH": "true",
                },
                ready_line="BILLING_SERVICE_LISTENING",
            )
        )
        service_target = service.target
        scenarios = {
            "spread": [f"bench-usage-{i:06d}" for i in range(args.users)],
            "hot": ["bench-usage-hot"],
        }
        for name, users in scenarios.items():
            before = ledger_check(url, args.limit)
            bare_cpu = cpu_seconds(bare.pid or 0)
            b_calls, b_lat, b_allowed = load(bare_target, users, args, ctx)
            bare_cpu = cpu_seconds(bare.pid or 0) - bare_cpu
            cpu_before, commits_before = cpu_seconds(service.proc.pid), commits(url)
            s_calls, s_lat, s_allowed = load(service_target, users, args, ctx)
            cpu_used = cpu_seconds(service.proc.pid) - cpu_before
            committed = commits(url) - commits_before
            after = ledger_check(url, args.limit)
            bare_m = summarize(b_calls, b_lat, args.duration)
            service_m = summarize(s_calls, s_lat, args.duration)
            exact = after["exact"] and (after["ledger_sum"] - before["ledger_sum"] == s_allowed)
            print(
                f"[{name}] bare {bare_m.qps:.0f} QPS, service {service_m.qps:.0f} QPS, "
                f"CPU ms/call bare {bare_cpu * 1e3 / max(1, b_allowed):.2f} "
                f"service {cpu_used * 1e3 / max(1, s_allowed):.2f}, "
                f"{committed / max(1, s_allowed):.3f} commits/call, exact={exact}",
                flush=True,
            )
            results.append(
                {
                    "scenario": name,
                    "users": len(users),
                    "bare": asdict(bare_m),
                    "service": asdict(service_m),
                    "qps_ratio": round(service_m.qps / bare_m.qps, 3),
                    "allowed_answers": s_allowed,
                    # Over every call of the run (warm-up included): the service's own cost.
                    "service_cpu_ms_per_call": round(cpu_used * 1e3 / max(1, s_allowed), 3),
                    "bare_cpu_ms_per_call": round(bare_cpu * 1e3 / max(1, b_allowed), 3),
                    "pg_commits_per_call": round(committed / max(1, s_allowed), 3),
                    "ledger": after,
                    "exact": exact,
                }
            )
    return results


def table(results: list[dict[str, Any]]) -> str:
    """The results as a Markdown table."""
    lines = [
        "| scenario | server | QPS | p50 ms | p99 ms | QPS ratio | exact |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for r in results:
        for name in ("bare", "service"):
            m: dict[str, Any] = r[name]
            extra = f"{r['qps_ratio']:.2f} | {r['exact']}" if name == "service" else " | "
            lines.append(
                f"| {r['scenario']} | {name} | {m['qps']:.0f} | {m['p50_ms']:.2f} | "
                f"{m['p99_ms']:.2f} | {extra} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; see the module docstring."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.usage",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--users", type=int, default=10_000, help="users of the spread run")
    parser.add_argument("--limit", type=int, default=1_000_000, help="api_calls limit per user")
    parser.add_argument("--duration", type=float, default=8.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds per run")
    parser.add_argument("--clients", type=int, default=2, help="client processes")
    parser.add_argument("--inflight", type=int, default=32, help="calls in flight per client")
    args = parser.parse_args(argv)
    ctx = mp.get_context("spawn")  # no fork after gRPC started (grpc#16001)
    results = bench(args, ctx)
    report = {
        "command": "python -m bench.usage " + " ".join(argv or sys.argv[1:]),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "duration_s": args.duration,
        "clients": args.clients,
        "inflight_per_client": args.inflight,
        "target": "service QPS >= 0.5 x bare (spread), >= 0.3 x bare (hot); exact after each run",
        "results": results,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print()
    print(table(results))
    print(f"\nwritten to {RESULTS.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
