"""A migration under a running replica's prepared statements loses no event (real server)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import psycopg2
import pytest

from generated.billing.v1 import billing_pb2 as pb
from tests.events import factory
from tests.events.conftest import EventsClient, service_env
from tests.events.stripe_standin import StripeStandIn
from tests.support.processes import ServiceProcess


@pytest.fixture(scope="module")
def events_service(shared_postgres: str, stripe_standin: StripeStandIn) -> Iterator[ServiceProcess]:
    """The replica ``client`` calls, all its database work on one connection (a known state)."""
    env = service_env(shared_postgres, stripe_standin, BILLING_DB_WORKERS="1")
    with ServiceProcess(env) as process:
        yield process


async def test_an_event_after_a_column_type_change_is_applied(
    client: EventsClient, shared_postgres: str, user_id: str
) -> None:
    sub_id, cus = factory.new_id("sub"), factory.new_id("cus")
    first = factory.subscription(sub_id, cus, "active", user_id=user_id)
    answer = await client.send(
        factory.event("customer.subscription.created", first, created=factory.BASE_TIME)
    )
    assert answer.outcome == pb.EVENT_OUTCOME_APPLIED  # the statements are prepared now

    # A newer release widens a column the prepared statements return: their
    # result type changes, so the replica's next use of them fails once.
    with contextlib.closing(psycopg2.connect(shared_postgres)) as pg, pg.cursor() as cur:
        cur.execute('ALTER TABLE "subscription" ALTER COLUMN "plan" TYPE varchar(80)')
        pg.commit()

    later = factory.subscription(sub_id, cus, "past_due", user_id=user_id)
    answer = await client.send(
        factory.event("customer.subscription.updated", later, created=factory.BASE_TIME + 60)
    )
    assert answer.outcome == pb.EVENT_OUTCOME_APPLIED
    assert (await client.subscription(user_id)).status == pb.SUBSCRIPTION_STATUS_PAST_DUE
