"""``billing-service usage prune``: old records go, recent ones and their keys stay."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from billing_service.storage.database import Database
from billing_service.storage.models import utcnow
from billing_service.usage.models import UsageRecord
from tests.conftest import migrate
from tests.support.processes import REPO_ROOT


def _record(key: str, age: timedelta) -> None:
    at = utcnow() - age
    UsageRecord.create(
        idempotency_key=key,
        user_id="u",
        meter="api_calls",
        quantity=1,
        allowed=True,
        counted=1,
        used_after=1,
        limit=20,
        period_start=at,
        period_end=at,
        occurred_at=at,
        created_at=at,
    )


def _prune(url: str, days: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "billing_service.cli", "usage", "prune", "--days", str(days)],
        env={"DATABASE_URL": url, "PATH": ""},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


def test_prune_keeps_keys_for_at_least_35_days(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'billing.db'}"
    migrate(url)
    db = Database(url, workers=1)
    try:
        db.call(_record, "old", timedelta(days=50))
        db.call(_record, "recent", timedelta(days=36))
        refused = _prune(url, 30)
        assert refused.returncode == 2 and "at least 35" in refused.stdout
        done = _prune(url, 40)
        assert done.returncode == 0, done.stderr
        assert "deleted 1 consumption records" in done.stdout
        keys = db.call(lambda: [r.idempotency_key for r in UsageRecord.select()])
        assert keys == ["recent"]
    finally:
        db.close()
