"""Runs the renewal-wave stream (bench/renewal.py) through the gateway and measures each process.

Per backend and stream variant: a fresh database, a Stripe API that is never
available (bench.renewal.StripeCounter), ``bench.counted_service`` (the
service with SQL statements and commits counted), the gateway and the
verify-and-200 baseline. Phases, all with the same deliveries and in-flight
count: gateway (first delivery), baseline, and the all-duplicates replays:
through the same gateway, which answers them from its memory of finished
events (webhook_gateway/seen.py); with Redis, through a second gateway with
that memory off that reads the service's processed markers
(webhook_gateway/markers.py), as a replica that did not see the first
delivery does; and through a third with neither, so each is forwarded and
the service answers it. The first gateway shares the service's Redis, as
deployed. Each phase records events/s, p50/p99, HTTP statuses,
CPU ms per delivery of the service, the gateway and the database's backends
(PostgreSQL; SQLite runs inside the service), statements and commits per
applied event, Stripe calls and peak RSS. Then it checks exactly-once, the
final subscription state against the stream's truth and ``audit verify``.
"""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp
import stripe

from bench.proc_stats import machine_cpu_seconds, peak_rss_mb
from bench.renewal import Stream, renewal_stream, stripe_counter
from bench.renewal_meters import MeteredService, Meters
from bench.webhooks import PLANS, SECRET, backend_urls, child, percentile
from billing_service.storage.database import open_database
from devtools.processes import ListeningProcess

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Phase:
    """One measured phase of one stream on one backend."""

    backend: str
    stream: str
    endpoint: str
    deliveries: int
    seconds: float
    events_per_second: float
    p50_ms: float
    p99_ms: float
    statuses: dict[str, int]
    cpu_ms_per_delivery: dict[str, float]
    applied: int = 0
    statements_per_applied: float = 0.0
    round_trips_per_applied: float = 0.0
    commits_per_applied: float = 0.0
    statements_per_delivery: float = 0.0
    stripe_calls: int = 0
    ratio: float = 0.0
    # Events per group-commit transaction, on average (0: none committed).
    mean_batch: float = 0.0
    # Events per gateway -> service call, on average (0: not through a gateway).
    events_per_forward: float = 0.0
    # Redis round trips (script calls, MGETs) per delivery, every client (0: no Redis).
    redis_round_trips_per_delivery: float = 0.0
    # CPU of the whole machine per delivery: every process (this driver, Redis, the
    # kernel's loopback work included), all cores summed.
    machine_cpu_ms_per_delivery: float = 0.0
    # The share of the cores' time that was busy during the phase.
    machine_busy_share: float = 0.0
    # Events/s were every core busy at the same CPU per delivery: the most this
    # machine allows the measured code; events_per_second can only approach it.
    cpu_ceiling_events_per_second: float = 0.0


async def _drive(
    url: str, bodies: list[bytes], concurrency: int
) -> tuple[float, list[float], dict[str, int]]:
    """POST every body once (no retries: a non-2xx is counted), ``concurrency`` in flight."""
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    latencies: list[float] = []
    statuses: dict[str, int] = {}

    async def worker(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            body = queue.get_nowait()
            started = time.perf_counter()
            header = stripe.WebhookSignature.generate_signature_header(body.decode(), SECRET)
            async with session.post(url, data=body, headers={"Stripe-Signature": header}) as resp:
                await resp.read()
                status = str(resp.status)
            latencies.append(time.perf_counter() - started)
            statuses[status] = statuses.get(status, 0) + 1

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        return time.perf_counter() - started, latencies, statuses


def _phase(
    label: tuple[str, str, str],
    url: str,
    bodies: list[bytes],
    concurrency: int,
    meters: Meters | None,
    stripe_calls: Any,
) -> Phase:
    backend, stream_name, endpoint = label
    before = meters.read() if meters else None
    calls_before = stripe_calls()
    busy_before, total_before = machine_cpu_seconds()
    seconds, latencies, statuses = asyncio.run(_drive(url, bodies, concurrency))
    busy_after, total_after = machine_cpu_seconds()
    machine_busy, machine_total = busy_after - busy_before, total_after - total_before
    phase = Phase(
        backend,
        stream_name,
        endpoint,
        len(bodies),
        round(seconds, 3),
        round(len(bodies) / seconds, 1),
        round(percentile(latencies, 0.50) * 1000, 2),
        round(percentile(latencies, 0.99) * 1000, 2),
        statuses,
        {},
        stripe_calls=stripe_calls() - calls_before,
    )
    if machine_busy > 0 and machine_total > 0:
        phase.machine_cpu_ms_per_delivery = round(machine_busy * 1000 / len(bodies), 3)
        phase.machine_busy_share = round(machine_busy / machine_total, 3)
        phase.cpu_ceiling_events_per_second = round(
            phase.events_per_second / phase.machine_busy_share, 1
        )
    if meters is None or before is None:
        return phase
    time.sleep(1.0)  # let PostgreSQL flush its backends' stats; the service's counters settle
    after = meters.read()
    per = 1000 / len(bodies)
    pg = sum(cpu - before["postgres"].get(pid, 0.0) for pid, cpu in after["postgres"].items())
    phase.cpu_ms_per_delivery = {
        "service": round((after["service"] - before["service"]) * per, 3),
        "gateway": round((after["gateway"] - before["gateway"]) * per, 3),
        "postgres": round(pg * per, 3),
    }
    delta = {k: after["counters"][k] - before["counters"][k] for k in after["counters"]}
    phase.applied = int(delta["applied"])
    batches = delta["billing_event_group_commit_size_count"]
    if batches:
        phase.mean_batch = round(delta["billing_event_group_commit_size_sum"] / batches, 2)
    forward = {
        k: after["gateway_counters"][k] - before["gateway_counters"][k]
        for k in after["gateway_counters"]
    }
    if calls := forward["billing_gateway_forward_batch_size_count"]:
        phase.events_per_forward = round(
            forward["billing_gateway_forward_batch_size_sum"] / calls, 2
        )
    phase.statements_per_delivery = round(delta["bench_sql_statements_total"] / len(bodies), 2)
    redis_served = after["redis_round_trips"] - before["redis_round_trips"]
    phase.redis_round_trips_per_delivery = round(redis_served / len(bodies), 2)
    if phase.applied:
        phase.statements_per_applied = round(delta["bench_sql_statements_total"] / phase.applied, 2)
        phase.round_trips_per_applied = round(
            delta["bench_sql_round_trips_total"] / phase.applied, 2
        )
        phase.commits_per_applied = round(delta["bench_sql_commits_total"] / phase.applied, 2)
    return phase


def _final_state(database_url: str) -> dict[str, tuple[str, int]]:
    db = open_database(database_url)
    try:
        with db.connection_context():
            rows = db.execute_sql(
                "SELECT stripe_subscription_id, status, current_period_end FROM subscription"
            ).fetchall()
            processed = int(db.execute_sql("SELECT COUNT(*) FROM processed_event").fetchone()[0])
    finally:
        getattr(db, "close_all", db.close)()
    state: dict[str, tuple[str, int]] = {}
    for sub_id, status, period_end in rows:
        if isinstance(period_end, str):
            from datetime import datetime

            period_end = datetime.fromisoformat(period_end)
        from datetime import UTC

        state[sub_id] = (status, int(period_end.replace(tzinfo=UTC).timestamp()))
    state["__processed__"] = ("", processed)
    return state


def _audit_verify(database_url: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "billing_service.cli", "audit", "verify"],
        env={"DATABASE_URL": database_url, "PATH": ""},
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    return (done.stdout + done.stderr).strip()


def _peer_phase(
    label: tuple[str, str, str], stream: Stream, concurrency: int, stripe_calls: Any
) -> tuple[Phase, float, list[str]]:
    """The stream through the peer (bench/peer.py) on its own database.

    Returns the phase, the peer's peak RSS and the subscriptions whose final
    status it got wrong.
    """
    from bench.peer import PeerMeters, start_peer, wrong_statuses
    from bench.webhooks import empty_postgres_database

    with empty_postgres_database("bench_peer") as database_url:
        peer = start_peer(database_url, SECRET)
        try:
            meters = PeerMeters(peer, database_url)
            before = meters.read()
            phase = _phase(
                label,
                f"http://{peer.target}/webhooks/stripe",
                stream.deliveries,
                concurrency,
                None,
                stripe_calls,
            )
            time.sleep(1.0)  # as _phase: let the backends' CPU settle
            cpu = meters.per_delivery_ms(before, len(stream.deliveries))
            phase.cpu_ms_per_delivery = {
                "service": cpu["peer"],
                "gateway": 0.0,
                "postgres": cpu["postgres"],
            }
            rss = meters.peak_rss_mb()
        finally:
            peer.stop()
        return phase, rss, wrong_statuses(database_url, stream)


def bench_renewal(
    backend: str, subscriptions: int, concurrency: int, payload_events: bool, peer: bool = False
) -> dict[str, Any]:
    """One backend, one stream variant: phases, peak RSS and the correctness checks.

    With ``peer`` (PostgreSQL, subscription-only stream), the stream also goes
    through the peer consumer of bench/peer.py, after the baseline.
    """
    stream_name = "renewal" if payload_events else "renewal (subscription events only)"
    stream: Stream = renewal_stream(subscriptions, int(time.time()), payload_events=payload_events)
    # The driver's own full collections walked the stream (~70 ms each, the event loop
    # stopped), which showed as latency in every phase: freeze it, as the servers do.
    gc.freeze()
    print(
        f"[{backend}] {stream_name}: {stream.events} events, {len(stream.deliveries)} deliveries "
        f"{stream.by_type}",
        flush=True,
    )
    quiet = {"BILLING_LOG_LEVEL": "WARNING", "GATEWAY_LOG_LEVEL": "WARNING"}
    with (
        tempfile.TemporaryDirectory(prefix="bench-renewal-") as tmp,
        backend_urls(backend, Path(tmp)) as (database_url, redis_url),
        stripe_counter() as stripe_api,
    ):
        service = MeteredService(
            ["bench.counted_service", "serve"],
            {
                **quiet,
                "BILLING_GRPC_ADDR": "127.0.0.1:0",
                "BILLING_METRICS_ADDR": "127.0.0.1:0",
                "BILLING_INSECURE_NO_AUTH": "true",
                "DATABASE_URL": database_url,
                "REDIS_URL": redis_url,
                "STRIPE_API_BASE": stripe_api.base_url,
                "STRIPE_SECRET_KEY": "sk_test_bench",
                "STRIPE_MAX_NETWORK_RETRIES": "0",
                "BILLING_PLANS_FILE": str(PLANS),
            },
            ready_line="BILLING_SERVICE_LISTENING",
        ).start()
        children: list[ListeningProcess] = [service]
        try:
            common = {**quiet, "STRIPE_WEBHOOK_SECRETS": SECRET, "DATABASE_URL": database_url}
            to_service = {
                **common,
                "GATEWAY_ADDR": "127.0.0.1:0",
                "BILLING_SERVICE_TARGET": service.target,
            }
            # As deployed: every gateway shares the service's Redis (when there is one).
            gateway = child(
                ["webhook_gateway.cli", "serve"],
                {**to_service, "REDIS_URL": redis_url},
                "BILLING_GATEWAY_LISTENING",
            )
            children.append(gateway)
            replicas = {"other gateway, no Redis -> service": ""}
            if redis_url:
                replicas = {"other gateway (Redis markers)": redis_url, **replicas}
            others: dict[str, ListeningProcess] = {}
            for name, replica_redis in replicas.items():
                others[name] = child(
                    ["webhook_gateway.cli", "serve"],
                    {**to_service, "GATEWAY_SEEN_EVENTS": "0", "REDIS_URL": replica_redis},
                    "BILLING_GATEWAY_LISTENING",
                )
                children.append(others[name])
            baseline = child(
                ["bench.webhook_baseline", "127.0.0.1", "0"], common, "BASELINE_LISTENING"
            )
            children.append(baseline)
            meters = Meters(service, gateway, database_url, redis_url)
            gateway_url = f"http://{gateway.target}/webhooks/stripe"
            calls = lambda: stripe_api.calls  # noqa: E731
            first = _phase(
                (backend, stream_name, "gateway -> service"),
                gateway_url,
                stream.deliveries,
                concurrency,
                meters,
                calls,
            )
            base = _phase(
                (backend, stream_name, "baseline (verify + 200)"),
                f"http://{baseline.target}/webhooks/stripe",
                stream.deliveries,
                concurrency,
                None,
                calls,
            )
            peer_result = None
            if peer and backend == "postgres" and not payload_events:
                peer_result = _peer_phase(
                    (backend, stream_name, "peer: stripe-sync-engine (Node)"),
                    stream,
                    concurrency,
                    calls,
                )
            remembered = _phase(
                (backend, stream_name, "all-duplicates replay, same gateway (its memory)"),
                gateway_url,
                stream.deliveries,
                concurrency,
                meters,
                calls,
            )
            replays = [
                _phase(
                    (backend, stream_name, f"all-duplicates replay, {name}"),
                    f"http://{other.target}/webhooks/stripe",
                    stream.deliveries,
                    concurrency,
                    Meters(service, other, database_url, redis_url),
                    calls,
                )
                for name, other in others.items()
            ]
            rss = {
                "service": peak_rss_mb(service.proc.pid),  # type: ignore[union-attr]
                "gateway": peak_rss_mb(gateway.proc.pid),  # type: ignore[union-attr]
            }
        finally:
            for process in reversed(children):
                process.stop()
        state = _final_state(database_url)
        audit = _audit_verify(database_url)
    processed = state.pop("__processed__")[1]
    wrong = sorted(sub for sub, want in stream.truth.items() if state.get(sub) != want)
    phases = (first, base, *([peer_result[0]] if peer_result else []), remembered, *replays)
    if peer_result:
        rss["peer"] = peer_result[1]
    for phase in phases:
        phase.ratio = round(phase.events_per_second / base.events_per_second, 3)
    return {
        "backend": backend,
        "stream": stream_name,
        "events": stream.events,
        "deliveries": len(stream.deliveries),
        "by_type": stream.by_type,
        "phases": [asdict(p) for p in phases],
        "peak_rss_mb": rss,
        "checks": {
            "processed_rows": processed,
            "distinct_events": stream.events,
            "subscriptions_wrong": len(wrong),
            "first_wrong": wrong[:3],
            "audit_verify": audit,
            **({"peer_statuses_wrong": len(peer_result[2])} if peer_result else {}),
        },
    }


def renewal_table(results: list[dict[str, Any]]) -> str:
    """The phases as a Markdown table."""
    lines = [
        "| backend | stream | endpoint | deliveries | events/s | ratio | p50 ms | p99 ms | "
        "non-2xx | CPU ms/delivery svc / gw / pg | stmts / round trips / commits per applied | "
        "Stripe calls | "
        "events per commit | events per forward | Redis round trips per delivery | "
        "machine CPU ms/delivery (busy %) | CPU ceiling events/s |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        for p in result["phases"]:
            non_2xx = sum(n for s, n in p["statuses"].items() if not s.startswith("2"))
            cpu = p["cpu_ms_per_delivery"]
            cpu_text = f"{cpu['service']} / {cpu['gateway']} / {cpu['postgres']}" if cpu else "-"
            sql = (
                f"{p['statements_per_applied']} / {p.get('round_trips_per_applied', '-')} / "
                f"{p['commits_per_applied']}"
                if p["applied"]
                else (f"{p['statements_per_delivery']} per delivery" if cpu else "-")
            )
            machine = (
                f"{p['machine_cpu_ms_per_delivery']} ({p['machine_busy_share']:.0%})"
                if p.get("machine_cpu_ms_per_delivery")
                else "-"
            )
            lines.append(
                f"| {p['backend']} | {p['stream']} | {p['endpoint']} | {p['deliveries']} | "
                f"{p['events_per_second']} | {p['ratio']:.3f} | {p['p50_ms']} | {p['p99_ms']} | "
                f"{non_2xx} | {cpu_text} | {sql} | {p['stripe_calls']} | "
                f"{p.get('mean_batch') or '-'} | {p.get('events_per_forward') or '-'} | "
                f"{p.get('redis_round_trips_per_delivery') or '-'} | {machine} | "
                f"{p.get('cpu_ceiling_events_per_second') or '-'} |"
            )
    return "\n".join(lines)
