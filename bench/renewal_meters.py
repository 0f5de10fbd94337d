"""What the renewal bench measures per process: CPU, peak RSS, the two services' counters.

CPU and RSS come from Linux's /proc (the service, the gateway, and the
PostgreSQL backends connected to the bench database); SQL statements,
commits, applied events and group-commit sizes from the counted service's
``/metrics`` (bench/counted_service.py); the events per forward call from
the gateway's; Redis round trips (script calls and marker MGETs, every
client together) from its ``INFO commandstats``.
"""

from __future__ import annotations

import urllib.request
from typing import Any

from bench.proc_stats import cpu_seconds
from devtools.processes import ListeningProcess


class MeteredService(ListeningProcess):
    """The counted service; remembers where its /metrics listens."""

    name = "service"
    metrics_target = ""

    def on_line(self, line: str) -> None:
        """Catch the metrics exporter's address."""
        if line.startswith("BILLING_METRICS_LISTENING "):
            self.metrics_target = line.split()[1]


def scrape(metrics_target: str) -> dict[str, float]:
    """The service's counters this bench reads, from its /metrics."""
    wanted = {
        "bench_sql_statements_total": 0.0,
        "bench_sql_commits_total": 0.0,
        "bench_sql_round_trips_total": 0.0,
        "billing_event_group_commit_size_sum": 0.0,
        "billing_event_group_commit_size_count": 0.0,
        "applied": 0.0,
    }
    for name, value in _samples(metrics_target):
        if name in wanted:
            wanted[name] = value
        elif name.startswith("billing_stripe_events_total{") and 'outcome="applied"' in name:
            wanted["applied"] += value
    return wanted


def scrape_gateway(gateway_target: str) -> dict[str, float]:
    """The gateway's forward calls and the events they carried, from its /metrics."""
    wanted = {
        "billing_gateway_forward_batch_size_sum": 0.0,
        "billing_gateway_forward_batch_size_count": 0.0,
    }
    for name, value in _samples(gateway_target):
        if name in wanted:
            wanted[name] = value
    return wanted


def _samples(target: str) -> list[tuple[str, float]]:
    with urllib.request.urlopen(f"http://{target}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    samples = []
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples.append((name, float(value)))
    return samples


def pg_backend_cpu(database_url: str) -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL backend on ``database_url``'s database."""
    cpu: dict[int, float] = {}
    for pid in pg_backend_pids(database_url):
        try:
            cpu[pid] = cpu_seconds(pid)
        except (OSError, IndexError):
            continue  # the backend ended meanwhile
    return cpu


def pg_backend_pids(database_url: str) -> list[int]:
    """The PostgreSQL backends connected to ``database_url``'s database; [] for SQLite."""
    if not database_url.startswith("postgres"):
        return []
    import psycopg2

    name = database_url.rsplit("/", 1)[1]
    conn = psycopg2.connect(database_url)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            return [int(row[0]) for row in cur.fetchall()]
    finally:
        conn.close()


# The commands clients send to Redis on the webhook path: the service's lock, release and
# announce scripts (their inner commands are counted by Redis too, so they are left out)
# and the gateways' marker reads.
_CLIENT_COMMANDS = ("cmdstat_evalsha", "cmdstat_eval", "cmdstat_mget")


def redis_round_trips(redis_url: str) -> int:
    """Script calls and MGETs the Redis server at ``redis_url`` has served; 0 without one."""
    if not redis_url:
        return 0
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        stats = client.info("commandstats")
    finally:
        client.close()
    return sum(int(stats[name]["calls"]) for name in _CLIENT_COMMANDS if name in stats)


class Meters:
    """CPU of the service, the gateway and the database backends; counters of both services."""

    def __init__(
        self,
        service: MeteredService,
        gateway: ListeningProcess,
        database_url: str,
        redis_url: str = "",
    ) -> None:
        self.service, self.gateway, self.database_url = service, gateway, database_url
        self.redis_url = redis_url

    def read(self) -> dict[str, Any]:
        """A snapshot of everything measured."""
        assert self.service.proc is not None and self.gateway.proc is not None
        return {
            "service": cpu_seconds(self.service.proc.pid),
            "gateway": cpu_seconds(self.gateway.proc.pid),
            "postgres": pg_backend_cpu(self.database_url),
            "counters": scrape(self.service.metrics_target),
            "gateway_counters": scrape_gateway(self.gateway.target),
            "redis_round_trips": redis_round_trips(self.redis_url),
        }
