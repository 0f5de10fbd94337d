"""The renewal bench's peer: @supabase/stripe-sync-engine on the same stream and machine.

Issue 10 sets its events/s target relative to a widely used open-source
Stripe-to-PostgreSQL webhook consumer measured elsewhere. ``--peer`` on the
renewal bench (PostgreSQL only) runs that consumer here, in the same run as
the baseline, so both ratios come from one machine:

    .venv/bin/python -m bench.webhooks --stream renewal --backend postgres \\
        --variant subscription-only --peer

``bench/peer/server.cjs`` puts the engine's ``processWebhook`` behind a bare
Node HTTP endpoint; the engine writes into its own fresh database (its
``stripe`` schema, from its own migrations). The first use installs it with
``npm ci`` from ``bench/peer/package-lock.json``. Only the
subscription-only stream is meaningful: for checkout events the engine asks
Stripe for the session's line items, which nobody answers here.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from bench.proc_stats import cpu_seconds, peak_rss_mb
from bench.renewal import Stream
from bench.renewal_meters import pg_backend_cpu
from devtools.processes import ListeningProcess

PEER_DIR = Path(__file__).resolve().parent / "peer"
ENGINE = PEER_DIR / "node_modules" / "@supabase" / "stripe-sync-engine"


def ensure_installed() -> None:
    """Install the peer's pinned packages unless they are there; raise when npm is missing."""
    if ENGINE.exists():
        return
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        raise RuntimeError("--peer needs Node.js and npm on PATH")
    subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=PEER_DIR, check=True)


def start_peer(database_url: str, secret: str) -> ListeningProcess:
    """The peer listening on a free loopback port (``.target``)."""
    ensure_installed()
    node = shutil.which("node") or "node"
    return ListeningProcess(
        ["server.cjs", "127.0.0.1", "0"],
        {"DATABASE_URL": database_url, "STRIPE_WEBHOOK_SECRETS": secret},
        ready_line="PEER_LISTENING",
        program=(node,),
        cwd=PEER_DIR,
    ).start()


class PeerMeters:
    """CPU of the peer's process and of the PostgreSQL backends on its database."""

    def __init__(self, peer: ListeningProcess, database_url: str) -> None:
        assert peer.proc is not None
        self.pid = peer.proc.pid
        self.database_url = database_url

    def read(self) -> tuple[float, dict[int, float]]:
        """(peer CPU seconds, CPU seconds per PostgreSQL backend) so far."""
        return cpu_seconds(self.pid), pg_backend_cpu(self.database_url)

    def per_delivery_ms(
        self, before: tuple[float, dict[int, float]], deliveries: int
    ) -> dict[str, float]:
        """CPU ms per delivery since ``before``: the peer's, and PostgreSQL's."""
        peer_after, pg_after = self.read()
        pg = sum(cpu - before[1].get(pid, 0.0) for pid, cpu in pg_after.items())
        per = 1000 / deliveries
        return {"peer": round((peer_after - before[0]) * per, 3), "postgres": round(pg * per, 3)}

    def peak_rss_mb(self) -> float:
        """The peer's peak resident set."""
        return peak_rss_mb(self.pid)


def wrong_statuses(database_url: str, stream: Stream) -> list[str]:
    """Subscriptions whose status in the peer's table differs from the stream's truth."""
    import psycopg2

    conn = psycopg2.connect(database_url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT id, status FROM stripe.subscriptions")
            stored = dict(cur.fetchall())
    finally:
        conn.close()
    return sorted(sub for sub, (status, _) in stream.truth.items() if stored.get(sub) != status)
