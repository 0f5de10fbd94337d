"""ApplyStripeEvent latency with a Redis that hangs, against no Redis at all, in one run.

::

    .venv/bin/python -m bench.redis_breaker                 # 20 events per case
    .venv/bin/python -m bench.redis_breaker --events 50

Three services on private SQLite files: without Redis (the baseline), with a
Redis stand-in that accepts connections and never answers (the breaker on,
default settings), and the same with the breaker off
(``BILLING_REDIS_BREAKER_SECONDS=0``: every command tries Redis, as before the
breaker). Events are sent one at a time; two kinds: ``ignored`` (a
subscription nobody can be tied to: no entitlement change) and ``applied``
(a tied subscription: the entitlement cache announces the change). Prints
p50/p95 per event and the ratio to the baseline; writes
bench/results/redis_breaker.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import grpc

from devtools.hanging_server import HangingServer
from devtools.processes import ListeningProcess
from generated.billing.v1 import billing_pb2 as pb
from generated.billing.v1 import billing_pb2_grpc as pb_grpc

REPO = Path(__file__).resolve().parents[1]
PLANS = REPO / "plans.example.toml"
RESULTS = REPO / "bench" / "results" / "redis_breaker.json"


def event(kind: str, now: int) -> bytes:
    """A customer.subscription.updated event; ``applied`` ties it to a fresh user."""
    sub_id, customer = f"sub_{uuid.uuid4().hex[:20]}", f"cus_{uuid.uuid4().hex[:14]}"
    metadata = {"user_id": f"bench-{uuid.uuid4().hex[:10]}"} if kind == "applied" else {}
    item = {
        "id": f"si_{uuid.uuid4().hex[:14]}",
        "object": "subscription_item",
        "price": {"id": "price_pro_monthly", "object": "price"},
        "current_period_start": now - 3600,
        "current_period_end": now + 30 * 86400,
    }
    obj = {
        "id": sub_id,
        "object": "subscription",
        "customer": customer,
        "status": "active",
        "created": now - 7200,
        "cancel_at_period_end": False,
        "metadata": metadata,
        "items": {"object": "list", "data": [item]},
    }
    envelope = {
        "id": f"evt_{uuid.uuid4().hex[:24]}",
        "object": "event",
        "type": "customer.subscription.updated",
        "created": now,
        "api_version": "2025-03-31.basil",
        "data": {"object": obj},
    }
    return json.dumps(envelope).encode()


def measure(env: dict[str, str], kind: str, count: int) -> list[float]:
    """Per-event seconds of ``count`` sequential ApplyStripeEvent calls."""
    with tempfile.TemporaryDirectory() as tmp:
        service_env = {
            "DATABASE_URL": f"sqlite:///{tmp}/billing.db",
            "BILLING_GRPC_ADDR": "127.0.0.1:0",
            "BILLING_PLANS_FILE": str(PLANS),
            "BILLING_INSECURE_NO_AUTH": "true",
            "BILLING_LOG_LEVEL": "ERROR",
            "STRIPE_SECRET_KEY": "sk_test_bench",
            "STRIPE_API_BASE": "http://127.0.0.1:9",
            **env,
        }
        process = ListeningProcess(
            ["billing_service.cli", "serve"],
            service_env,
            ready_timeout=60,
            ready_line="BILLING_SERVICE_LISTENING",
        )
        with process, grpc.insecure_channel(process.target) as channel:
            stub = pb_grpc.BillingServiceStub(channel)
            now = int(time.time())
            stub.ApplyStripeEvent(pb.ApplyStripeEventRequest(payload=event(kind, now)), timeout=60)
            times = []
            for _ in range(count):
                payload = event(kind, now)
                started = time.perf_counter()
                stub.ApplyStripeEvent(pb.ApplyStripeEventRequest(payload=payload), timeout=60)
                times.append(time.perf_counter() - started)
            return times


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    """Run every case and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=20)
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    with HangingServer() as hanging:
        redis_url = f"redis://127.0.0.1:{hanging.port}/0"
        cases: dict[str, dict[str, str]] = {
            "no_redis": {"REDIS_URL": ""},
            "hanging_redis_breaker": {"REDIS_URL": redis_url},
            "hanging_redis_no_breaker": {
                "REDIS_URL": redis_url,
                "BILLING_REDIS_BREAKER_SECONDS": "0",
            },
        }
        for kind in ("ignored", "applied"):
            baseline = 0.0
            for name, env in cases.items():
                # Without the breaker every event costs seconds: fewer of them.
                count = args.events if name != "hanging_redis_no_breaker" else min(5, args.events)
                times = measure(env, kind, count)
                p50 = statistics.median(times)
                baseline = baseline or p50
                rows.append(
                    {
                        "kind": kind,
                        "case": name,
                        "events": count,
                        "p50_ms": round(p50 * 1000, 2),
                        "p95_ms": round(_p(times, 0.95) * 1000, 2),
                        "p50_vs_no_redis": round(p50 / baseline, 2),
                    }
                )
    print(f"{'kind':<8} {'case':<26} {'n':>3} {'p50 ms':>9} {'p95 ms':>9} {'x no_redis':>10}")
    for row in rows:
        print(
            f"{row['kind']:<8} {row['case']:<26} {row['events']:>3} {row['p50_ms']:>9} "
            f"{row['p95_ms']:>9} {row['p50_vs_no_redis']:>10}"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps({"machine": platform.platform(), "rows": rows}, indent=2) + "\n",
        encoding="utf-8",
    )


if __name__ == "__main__":
    main()
