"""`billing-service audit verify` on a real history, then after tampering in the database."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from urllib.parse import urlsplit

import psycopg2

from generated.billing.v1 import billing_pb2 as pb
from tests.events import factory
from tests.events.conftest import EventsClient
from tests.support.processes import REPO_ROOT


def verify(database_url: str) -> subprocess.CompletedProcess[str]:
    """Run the real CLI."""
    return subprocess.run(
        [sys.executable, "-m", "billing_service.cli", "audit", "verify"],
        env={"DATABASE_URL": database_url, "PATH": ""},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def execute(database_url: str, sql: str, params: tuple[object, ...]) -> None:
    """Run one statement directly against the database, as a tamperer would."""
    if database_url.startswith("sqlite"):
        conn = sqlite3.connect(urlsplit(database_url).path)
        with conn:
            conn.execute(sql.replace("%s", "?"), params)
        conn.close()
        return
    pg = psycopg2.connect(database_url)
    with pg, pg.cursor() as cur:
        cur.execute(sql, params)
    pg.close()


async def test_audit_verify_passes_then_names_the_edited_and_the_relinked_record(
    client: EventsClient, database_url: str, user_id: str
) -> None:
    sub_id, cus = factory.new_id("sub"), factory.new_id("cus")
    for i, status in enumerate(["incomplete", "active", "past_due", "active"]):
        obj = factory.subscription(sub_id, cus, status, user_id=user_id)
        ev = factory.event("customer.subscription.updated", obj, created=factory.BASE_TIME + i)
        assert (await client.send(ev)).outcome == pb.EVENT_OUTCOME_APPLIED
    records = sorted(await client.audit(user_id), key=lambda r: r.id)
    intact = verify(database_url)
    assert intact.returncode == 0, intact.stdout + intact.stderr
    assert "audit chain intact" in intact.stdout
    assert f"{len(records)} records" in intact.stdout

    edited = records[1]
    execute(
        database_url, "UPDATE audit_record SET tier_after = %s WHERE id = %s", ("studio", edited.id)
    )
    broken = verify(database_url)
    assert broken.returncode == 1
    assert f"broken at record {edited.id}:" in broken.stdout
    execute(
        database_url,
        "UPDATE audit_record SET tier_after = %s WHERE id = %s",
        (edited.tier_after, edited.id),
    )
    assert verify(database_url).returncode == 0

    execute(database_url, "DELETE FROM audit_record WHERE id = %s", (records[2].id,))
    gap = verify(database_url)
    assert gap.returncode == 1
    assert f"broken at record {records[3].id}:" in gap.stdout
