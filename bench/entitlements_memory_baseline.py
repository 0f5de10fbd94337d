"""Same-run A/B of the entitlement cache's memory: another checkout's service against this one.

::

    mkdir /tmp/main-export && git archive main | tar -x -C /tmp/main-export
    .venv/bin/python -m bench.entitlements_memory_baseline /tmp/main-export --users 300000

For each checkout (the given one first, then this one) it starts
``billing-service serve`` from that checkout's sources over an empty SQLite
database and over ``--users`` subscribed users, waits until the entitlement
cache is complete, and prints the RSS growth per subscribed user and the time
from start to complete. Both runs use this checkout's population loader.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from bench.entitlements import REPO, load_population, service_env
from bench.entitlements_scale import MetricsService, wait_complete
from bench.proc_stats import rss_bytes


def measure(checkout: Path, url: str) -> tuple[int, float]:
    """(RSS bytes, seconds from start to complete) of the service of ``checkout`` over ``url``."""
    env = {**service_env(url, ""), "PYTHONPATH": str(checkout)}
    started = time.perf_counter()
    with MetricsService(env, checkout) as service:
        assert service.proc is not None
        wait_complete(service)
        ready = time.perf_counter() - started
        time.sleep(1.0)  # let the warm-up's garbage go before reading RSS (as warm_service)
        return rss_bytes(service.proc.pid), ready


def main(argv: list[str] | None = None) -> int:
    """Run the comparison; see the module docstring."""
    parser = argparse.ArgumentParser(prog="python -m bench.entitlements_memory_baseline")
    parser.add_argument("baseline", type=Path, help="an exported checkout to compare against")
    parser.add_argument("--users", type=int, default=300_000)
    args = parser.parse_args(argv)
    results = {}
    for name, checkout in (("baseline", args.baseline.resolve()), ("this", REPO)):
        with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
            url = f"sqlite:///{tmp}/empty.db"
            load_population(url, 0)
            empty, _ = measure(checkout, url)
        with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
            url = f"sqlite:///{tmp}/billing.db"
            _, subscribed = load_population(url, args.users, 0.0)
            full, ready = measure(checkout, url)
        results[name] = {
            "checkout": str(checkout),
            "subscribed": subscribed,
            "rss_empty_mb": round(empty / 2**20, 1),
            "rss_mb": round(full / 2**20, 1),
            "bytes_per_subscribed_user": round((full - empty) / subscribed),
            "start_to_complete_s": round(ready, 1),
        }
        print(name, results[name], flush=True)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
