"""Signed Stripe webhooks through the gateway into the billing service, end to end.

::

    .venv/bin/python -m bench.webhooks                     # SQLite, then PostgreSQL + Redis
    .venv/bin/python -m bench.webhooks --backend sqlite --users 300 --concurrency 32

For each backend it starts the Stripe emulator (webhooks held, so nothing is
delivered by itself), the billing service, the gateway, and the baseline (an
aiohttp endpoint that verifies the signature with the same SDK call and
answers 200, nothing else). It then creates real subscriptions through
CreateCheckout and the emulator, so the events are the emulator's own: the
mix Stripe sends for a checkout (customer.*, customer.subscription.*,
invoice.*, checkout.session.completed) plus cancellations at period end. 10%
of the deliveries are repeated (Stripe's at-least-once delivery). Every
delivery is signed and POSTed with ``--concurrency`` in flight, first through
the gateway, then to the baseline. A 503 is retried like Stripe would; the
latency of a delivery is until its 200. Afterwards the processed_event table
must hold each event exactly once. Prints a table and writes
bench/results/webhooks.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import platform
import random
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import stripe

from billing_client.names import OUTCOME_NAMES
from billing_service.storage.database import migrate, open_database
from devtools.processes import ListeningProcess
from devtools.stripe_emulator.process import EmulatorProcess
from devtools.waiting import wait_until_async
from generated.billing.v1 import billing_pb2 as pb
from generated.billing.v1 import billing_pb2_grpc as pb_grpc

REPO = Path(__file__).resolve().parents[1]
PLANS = REPO / "plans.example.toml"
RESULTS = REPO / "bench" / "results" / "webhooks.json"
POSTGRES_ADMIN = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
SECRET = "whsec_bench_" + "0" * 24
KEY = "sk_test_bench"
SEED = 20251127
DUPLICATE_SHARE = 0.10
CANCEL_SHARE = 0.30


@dataclass
class Run:
    """One measured endpoint."""

    backend: str
    endpoint: str
    deliveries: int
    events: int
    concurrency: int
    seconds: float
    events_per_second: float
    p50_ms: float
    p99_ms: float
    retried_503: int
    answers: dict[str, int]


def child(args: Sequence[str], env: dict[str, str], ready_line: str) -> ListeningProcess:
    """``python -m ARGS`` started and listening (``.target``); logs discarded with the run."""
    return ListeningProcess(args, env, ready_line=ready_line).start()


@contextlib.contextmanager
def backend_urls(backend: str, tmp: Path) -> Iterator[tuple[str, str]]:
    """(DATABASE_URL, REDIS_URL) of a fresh, migrated database for ``backend``."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp / 'billing.db'}"
        db = open_database(url)
        migrate(db)
        db.close()
        yield url, ""
        return
    import redis

    redis.Redis.from_url(REDIS).flushdb()
    with empty_postgres_database("bench_webhooks") as url:
        db = open_database(url)
        migrate(db)
        getattr(db, "close_all", db.close)()
        yield url, REDIS


@contextlib.contextmanager
def empty_postgres_database(prefix: str) -> Iterator[str]:
    """The URL of a new, empty database on BENCH_POSTGRES_URL's server; dropped after."""
    import psycopg2

    admin = psycopg2.connect(POSTGRES_ADMIN)
    admin.autocommit = True
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        yield POSTGRES_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def generate_events(target: str, emulator: EmulatorProcess, users: int) -> list[bytes]:
    """Subscribe ``users`` users (some cancel at period end); returns every event's JSON."""
    rng = random.Random(SEED)
    client = stripe.StripeClient(KEY, base_addresses={"api": emulator.base_url})
    with grpc.insecure_channel(target) as channel:
        stub = pb_grpc.BillingServiceStub(channel)
        for i in range(users):
            session = stub.CreateCheckout(
                pb.CreateCheckoutRequest(
                    user_id=f"bench-{i:05d}",
                    plan=rng.choice(["pro", "pro", "studio"]),
                    success_url="https://app.example.com/ok",
                    cancel_url="https://app.example.com/back",
                ),
                timeout=30,
            )
            completed = emulator.complete_checkout(session.session_id)
            if rng.random() < CANCEL_SHARE:
                client.v1.subscriptions.update(
                    completed["subscription"], {"cancel_at_period_end": True}
                )
    events: list[bytes] = []
    after = ""
    while True:
        query = "limit=100" + (f"&starting_after={after}" if after else "")
        req = urllib.request.Request(  # noqa: S310 - the emulator on loopback
            f"{emulator.base_url}/v1/events?{query}", headers={"Authorization": f"Bearer {KEY}"}
        )
        with urllib.request.urlopen(req, timeout=30) as response:  # noqa: S310
            page = json.loads(response.read())
        events.extend(json.dumps(e).encode() for e in page["data"])
        if not page["has_more"]:
            break
        after = page["data"][-1]["id"]
    # The emulator lists newest first; Stripe sends roughly in creation order.
    return list(reversed(events))


def deliveries(events: list[bytes]) -> list[bytes]:
    """The events plus 10% repeats, each repeat placed after its original."""
    rng = random.Random(SEED)
    out = list(events)
    for _ in range(round(len(events) * DUPLICATE_SHARE)):
        original = rng.randrange(len(events))
        out.insert(rng.randrange(original + 1, len(out) + 1), events[original])
    return out


async def drive(
    url: str, bodies: list[bytes], concurrency: int
) -> tuple[float, list[float], int, dict[str, int]]:
    """POST every body signed now, ``concurrency`` at a time.

    Returns (seconds, latencies, 503s retried, answers by status).
    """
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    latencies: list[float] = []
    answers: dict[str, int] = {}
    retried = 0

    async def post(session: aiohttp.ClientSession, body: bytes) -> tuple[int, Any]:
        nonlocal retried
        header = stripe.WebhookSignature.generate_signature_header(body.decode(), SECRET)
        async with session.post(url, data=body, headers={"Stripe-Signature": header}) as response:
            if response.status == 503:
                retried += 1
            return response.status, await response.json()

    async def worker(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            body = queue.get_nowait()
            started = time.perf_counter()
            # 503: a concurrent twin holds the event's lock; Stripe would retry.
            _, answer = await wait_until_async(
                "an answer other than 503",
                functools.partial(post, session, body),
                lambda got: got[0] != 503,
                within=30,
            )
            latencies.append(time.perf_counter() - started)
            key = str(answer.get("status") or answer.get("error"))
            answers[key] = answers.get(key, 0) + 1

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return elapsed, latencies, retried, answers


async def drive_grpc(
    target: str, bodies: list[bytes], concurrency: int
) -> tuple[float, list[float], int, dict[str, int]]:
    """ApplyStripeEvent for every body straight over gRPC (no gateway), same shape as drive()."""
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    latencies: list[float] = []
    answers: dict[str, int] = {}
    async with grpc.aio.insecure_channel(target) as channel:
        stub = pb_grpc.BillingServiceStub(channel)

        async def worker() -> None:
            while not queue.empty():
                body = queue.get_nowait()
                started = time.perf_counter()
                response = await stub.ApplyStripeEvent(
                    pb.ApplyStripeEventRequest(payload=body), timeout=30
                )
                latencies.append(time.perf_counter() - started)
                key = OUTCOME_NAMES.get(response.outcome, "unspecified")
                answers[key] = answers.get(key, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return elapsed, latencies, 0, answers


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of ``values``, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(
    backend: str, endpoint: str, url: str, bodies: list[bytes], events: int, concurrency: int
) -> Run:
    """Drive ``url`` (http://... through HTTP, else a gRPC target) and summarise."""
    if url.startswith("http"):
        outcome = asyncio.run(drive(url, bodies, concurrency))
    else:
        outcome = asyncio.run(drive_grpc(url, bodies, concurrency))
    seconds, latencies, retried, answers = outcome
    return Run(
        backend=backend,
        endpoint=endpoint,
        deliveries=len(bodies),
        events=events,
        concurrency=concurrency,
        seconds=round(seconds, 3),
        events_per_second=round(len(bodies) / seconds, 1),
        p50_ms=round(percentile(latencies, 0.50) * 1000, 2),
        p99_ms=round(percentile(latencies, 0.99) * 1000, 2),
        retried_503=retried,
        answers=answers,
    )


def processed_rows(database_url: str) -> int:
    """How many events the service recorded."""
    db = open_database(database_url)
    try:
        with db.connection_context():
            return int(db.execute_sql("SELECT COUNT(*) FROM processed_event").fetchone()[0])
    finally:
        close_all = getattr(db, "close_all", None)
        (close_all or db.close)()


def bench_backend(backend: str, users: int, concurrency: int) -> tuple[list[Run], dict[str, Any]]:
    """The gateway run, the baseline run and the two replay runs on one backend."""
    with (
        tempfile.TemporaryDirectory(prefix="bench-webhooks-") as tmp,
        backend_urls(backend, Path(tmp)) as (database_url, redis_url),
        EmulatorProcess(PLANS) as emulator,
    ):
        emulator.hold_webhooks(True)
        quiet = {"BILLING_LOG_LEVEL": "WARNING", "GATEWAY_LOG_LEVEL": "WARNING"}
        service = child(
            ["billing_service.cli", "serve"],
            {
                **quiet,
                "BILLING_GRPC_ADDR": "127.0.0.1:0",
                "BILLING_INSECURE_NO_AUTH": "true",
                "DATABASE_URL": database_url,
                "REDIS_URL": redis_url,
                "STRIPE_API_BASE": emulator.base_url,
                "STRIPE_SECRET_KEY": KEY,
                "BILLING_PLANS_FILE": str(PLANS),
            },
            "BILLING_SERVICE_LISTENING",
        )
        children = [service]
        try:
            common = {**quiet, "STRIPE_WEBHOOK_SECRETS": SECRET, "DATABASE_URL": database_url}
            gateway = child(
                ["webhook_gateway.cli", "serve"],
                {**common, "GATEWAY_ADDR": "127.0.0.1:0", "BILLING_SERVICE_TARGET": service.target},
                "BILLING_GATEWAY_LISTENING",
            )
            children.append(gateway)
            baseline = child(
                ["bench.webhook_baseline", "127.0.0.1", "0"], common, "BASELINE_LISTENING"
            )
            children.append(baseline)
            print(f"[{backend}] creating {users} subscriptions in the emulator ...", flush=True)
            events = generate_events(service.target, emulator, users)
            bodies = deliveries(events)
            print(f"[{backend}] {len(events)} events, {len(bodies)} deliveries", flush=True)
            before = processed_rows(database_url)
            gateway_run = measure(
                backend,
                "gateway -> service",
                f"http://{gateway.target}/webhooks/stripe",
                bodies,
                len(events),
                concurrency,
            )
            check = {
                "processed_rows": processed_rows(database_url) - before,
                "distinct_events": len(events),
            }
            baseline_run = measure(
                backend,
                "baseline (verify + 200)",
                f"http://{baseline.target}/webhooks/stripe",
                bodies,
                len(events),
                concurrency,
            )
            # Attribution: the same deliveries again (all duplicates now), straight to the
            # service and through the gateway, show what the gateway itself adds.
            direct_replay = measure(
                backend, "replay: direct gRPC", service.target, bodies, len(events), concurrency
            )
            gateway_replay = measure(
                backend,
                "replay: gateway -> service",
                f"http://{gateway.target}/webhooks/stripe",
                bodies,
                len(events),
                concurrency,
            )
        finally:
            for process in reversed(children):
                process.stop()
    return [gateway_run, baseline_run, direct_replay, gateway_replay], check


def table(rows: list[dict[str, Any]]) -> str:
    """The results as a Markdown table; ratio is events/s over the baseline's."""
    lines = [
        "| backend | endpoint | deliveries | events/s | p50 ms | p99 ms | 503 retried | ratio |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        base = row["baseline"]["events_per_second"]
        for run in row["runs"]:
            lines.append(
                f"| {run['backend']} | {run['endpoint']} | {run['deliveries']} | "
                f"{run['events_per_second']} | {run['p50_ms']} | {run['p99_ms']} | "
                f"{run['retried_503']} | {run['events_per_second'] / base:.3f} |"
            )
    return "\n".join(lines)


def renewal_main(args: argparse.Namespace, backends: list[str], argv: Sequence[str] | None) -> int:
    """The renewal-wave stream on each backend; writes bench/results/webhooks_renewal.json."""
    from bench.renewal_run import bench_renewal, renewal_table

    variants = {"both": [False, True], "full": [True], "subscription-only": [False]}[args.variant]
    results = [
        bench_renewal(backend, args.subscriptions, args.concurrency, payload_events, args.peer)
        for backend in backends
        for payload_events in variants
    ]
    print(renewal_table(results))
    for result in results:
        print(f"[{result['backend']}] {result['stream']}: {result['checks']}")
    # The side-by-side with the peer keeps its own file, next to the plain run's.
    out = RESULTS.with_name("webhooks_renewal_peer.json" if args.peer else "webhooks_renewal.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "command": " ".join(["python -m bench.webhooks", *(argv or sys.argv[1:])]),
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                "results": results,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {out.relative_to(REPO)}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the bench for the chosen backends."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.webhooks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--users", type=int, default=200, help="subscriptions to create")
    parser.add_argument("--concurrency", type=int, default=32, help="deliveries in flight")
    parser.add_argument(
        "--stream",
        choices=["emulator", "renewal"],
        default="emulator",
        help="emulator: checkouts made in the emulator; renewal: the wave in bench/renewal.py",
    )
    parser.add_argument(
        "--subscriptions", type=int, default=2000, help="renewal: subscriptions in the wave"
    )
    parser.add_argument(
        "--variant",
        choices=["both", "full", "subscription-only"],
        default="both",
        help="renewal: with invoice/checkout events, without them, or both",
    )
    parser.add_argument(
        "--peer",
        action="store_true",
        help="renewal, PostgreSQL: also run the stream through the peer consumer (bench/peer.py)",
    )
    args = parser.parse_args(argv)
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    if args.stream == "renewal":
        return renewal_main(args, backends, argv)
    rows: list[dict[str, Any]] = []
    for backend in backends:
        runs, check = bench_backend(backend, args.users, args.concurrency)
        if check["processed_rows"] != check["distinct_events"]:
            print(f"[{backend}] NOT EXACTLY ONCE: {check}", file=sys.stderr)
            return 1
        gateway_run, baseline_run = runs[0], runs[1]
        rows.append(
            {
                "backend": backend,
                "gateway": asdict(gateway_run),
                "baseline": asdict(baseline_run),
                "ratio": round(gateway_run.events_per_second / baseline_run.events_per_second, 3),
                "runs": [asdict(run) for run in runs],
                "exactly_once": check,
            }
        )
    print(table(rows))
    previous: dict[str, Any] = {}
    if RESULTS.exists():
        with contextlib.suppress(ValueError):
            previous = json.loads(RESULTS.read_text())
    by_backend = {row["backend"]: row for row in previous.get("results", [])}
    by_backend.update({row["backend"]: row for row in rows})
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "command": " ".join(["python -m bench.webhooks", *(argv or sys.argv[1:])]),
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                "duplicate_share": DUPLICATE_SHARE,
                "results": list(by_backend.values()),
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {RESULTS.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
