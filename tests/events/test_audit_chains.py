"""`billing-service audit verify` on per-user chains: tampering with the newest record, a head."""

from __future__ import annotations

import sqlite3
from urllib.parse import urlsplit

import psycopg2

from generated.billing.v1 import billing_pb2 as pb
from tests.events import factory
from tests.events.conftest import EventsClient
from tests.events.test_audit_verify import execute, verify


def query(database_url: str, sql: str, params: tuple[object, ...]) -> list[tuple[object, ...]]:
    """Read rows directly from the database."""
    if database_url.startswith("sqlite"):
        conn = sqlite3.connect(urlsplit(database_url).path)
        try:
            return list(conn.execute(sql.replace("%s", "?"), params).fetchall())
        finally:
            conn.close()
    pg = psycopg2.connect(database_url)
    try:
        with pg.cursor() as cur:
            cur.execute(sql, params)
            return list(cur.fetchall())
    finally:
        pg.close()


async def _history(client: EventsClient, users: list[str]) -> dict[str, list[pb.AuditEvent]]:
    """Interleaved changes for ``users``; each user's records, oldest first."""
    subs = {u: (factory.new_id("sub"), factory.new_id("cus")) for u in users}
    for i, status in enumerate(["incomplete", "active", "past_due"]):
        for user in users:
            sub_id, cus = subs[user]
            obj = factory.subscription(sub_id, cus, status, user_id=user)
            ev = factory.event("customer.subscription.updated", obj, created=factory.BASE_TIME + i)
            assert (await client.send(ev)).outcome == pb.EVENT_OUTCOME_APPLIED
    return {u: sorted(await client.audit(u), key=lambda r: r.id) for u in users}


async def test_audit_verify_names_tampering_with_a_users_newest_record_and_head(
    client: EventsClient, database_url: str, user_id: str
) -> None:
    other = f"{user_id}-b"
    history = await _history(client, [user_id, other])
    assert verify(database_url).returncode == 0

    # Editing the newest record of a chain breaks its own hash.
    newest = history[user_id][-1]
    execute(database_url, "UPDATE audit_record SET detail = %s WHERE id = %s", ("x", newest.id))
    edited = verify(database_url)
    assert edited.returncode == 1
    assert f"broken at record {newest.id}:" in edited.stdout
    execute(
        database_url,
        "UPDATE audit_record SET detail = %s WHERE id = %s",
        (newest.detail, newest.id),
    )
    assert verify(database_url).returncode == 0

    # Reordering two records of one chain (swapping their contents) breaks the links.
    first, second = history[other][0], history[other][1]
    execute(database_url, "UPDATE audit_record SET id = %s WHERE id = %s", (-1, first.id))
    execute(database_url, "UPDATE audit_record SET id = %s WHERE id = %s", (first.id, second.id))
    execute(database_url, "UPDATE audit_record SET id = %s WHERE id = %s", (second.id, -1))
    reordered = verify(database_url)
    assert reordered.returncode == 1
    assert f"broken at record {first.id}:" in reordered.stdout
    execute(database_url, "UPDATE audit_record SET id = %s WHERE id = %s", (-1, first.id))
    execute(database_url, "UPDATE audit_record SET id = %s WHERE id = %s", (first.id, second.id))
    execute(database_url, "UPDATE audit_record SET id = %s WHERE id = %s", (second.id, -1))
    assert verify(database_url).returncode == 0

    # Deleting a user's chain head leaves that user's records without one.
    (head,) = query(
        database_url,
        "SELECT user_id, last_hash, last_record_id FROM audit_chain WHERE user_id = %s",
        (other,),
    )
    execute(database_url, "DELETE FROM audit_chain WHERE user_id = %s", (other,))
    headless = verify(database_url)
    assert headless.returncode == 1
    assert f"broken at record {history[other][-1].id}:" in headless.stdout
    execute(
        database_url,
        "INSERT INTO audit_chain (user_id, last_hash, last_record_id) VALUES (%s, %s, %s)",
        head,
    )
    assert verify(database_url).returncode == 0

    # Deleting the newest record leaves the head naming a record that is gone.
    (row,) = query(database_url, "SELECT * FROM audit_record WHERE id = %s", (newest.id,))
    execute(database_url, "DELETE FROM audit_record WHERE id = %s", (newest.id,))
    deleted = verify(database_url)
    assert deleted.returncode == 1
    assert f"broken at record {newest.id}:" in deleted.stdout
    placeholders = ", ".join(["%s"] * len(row))
    execute(database_url, f"INSERT INTO audit_record VALUES ({placeholders})", row)  # noqa: S608 - placeholders only
    assert verify(database_url).returncode == 0  # the module's database is left intact
