"""Events the service refuses as invalid: stored, acknowledged, listed, replayed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.gateway.conftest import NEW_SECRET, gateway_env
from tests.gateway.standin import StandIn
from tests.gateway.support import GatewayProcess, deliver, new_event
from tests.support.processes import REPO_ROOT


def billing_cli(
    database_url: str, *args: str, target: str = ""
) -> subprocess.CompletedProcess[str]:
    """Run ``billing-service ARGS`` against ``database_url``."""
    env = {**os.environ, "DATABASE_URL": database_url, "BILLING_SERVICE_TARGET": target}
    return subprocess.run(
        [sys.executable, "-m", "billing_service.cli", *args],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def dead_letters(database_url: str) -> list[dict[str, Any]]:
    """``billing-service events dead-letters --json``, parsed."""
    done = billing_cli(database_url, "events", "dead-letters", "--json")
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_invalid_event_is_stored_acknowledged_and_replayed(
    gateway: GatewayProcess, standin: StandIn, gateway_db: str
) -> None:
    event = new_event("invalid", type="invoice.paid")
    first = deliver(gateway, event, NEW_SECRET)
    assert first.status == 200
    assert first.json["status"] == "dead_lettered"
    assert first.json["event_id"] == event["id"]
    dead_letter_id = first.json["dead_letter_id"]

    # Stripe (or a person) sends the same event again: still one row.
    again = deliver(gateway, event, NEW_SECRET)
    assert again.json == first.json

    [row] = [r for r in dead_letters(gateway_db) if r["event_id"] == event["id"]]
    assert row["id"] == dead_letter_id
    assert row["event_type"] == "invoice.paid"
    assert row["deliveries"] == 2
    assert "programmed invalid" in row["error"]
    assert row["replayed_at"] is None

    table = billing_cli(gateway_db, "events", "dead-letters")
    assert event["id"] in table.stdout and "pending" in table.stdout

    # Still refused: the row stays pending and says why.
    refused = billing_cli(
        gateway_db, "events", "replay", str(dead_letter_id), target=standin.target
    )
    assert refused.returncode == 1
    assert "still refused" in refused.stdout

    # The fix is deployed: the replay applies it and marks the row.
    standin.program[event["id"]] = "applied"
    replayed = billing_cli(
        gateway_db, "events", "replay", str(dead_letter_id), target=standin.target
    )
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert "replayed: APPLIED" in replayed.stdout
    [row] = [r for r in dead_letters(gateway_db) if r["event_id"] == event["id"]]
    assert row["replay_outcome"] == "APPLIED"
    assert row["replayed_at"] is not None
    assert standin.count(event["id"]) == 4  # two deliveries, two replays
    pending = billing_cli(gateway_db, "events", "dead-letters", "--pending", "--json")
    assert event["id"] not in pending.stdout


def test_replay_of_unknown_id(gateway_db: str) -> None:
    done = billing_cli(gateway_db, "events", "replay", "999999", target="127.0.0.1:1")
    assert done.returncode == 1
    assert "no dead letter" in done.stdout


@pytest.fixture
def gateway_without_dead_letter_table(standin: StandIn, tmp_path: Path) -> Iterator[GatewayProcess]:
    """A gateway whose database was never migrated: dead letters cannot be stored."""
    env = gateway_env(standin.target, f"sqlite:///{tmp_path / 'empty.db'}")
    with GatewayProcess(env) as process:
        yield process


def test_dead_letter_that_cannot_be_stored_answers_503(
    gateway_without_dead_letter_table: GatewayProcess,
) -> None:
    event = new_event("invalid")
    answer = deliver(gateway_without_dead_letter_table, event, NEW_SECRET)
    assert answer.status == 503
    assert answer.json == {"error": "dead_letter_unavailable", "event_id": event["id"]}
