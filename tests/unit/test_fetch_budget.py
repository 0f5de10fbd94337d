"""The event path's Stripe fetch budget: a local bucket, one Redis bucket for all replicas."""

from __future__ import annotations

import uuid

import pytest

from billing_service.errors import Unavailable
from billing_service.events.fetch_budget import FetchBudget, LocalBucket
from billing_service.redis_client import connect
from tests.support.services import redis_url

SLOW = 0.001  # one token per ~17 minutes: nothing refills during a test


def test_a_local_bucket_holds_one_seconds_worth_and_then_refuses() -> None:
    bucket = LocalBucket(rate=SLOW, capacity=3)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]


def test_a_local_bucket_refills_at_its_rate() -> None:
    bucket = LocalBucket(rate=1e9, capacity=1)  # refills (to one token) between any two calls
    assert all(bucket.take() for _ in range(5))


async def test_replicas_draw_from_one_redis_bucket() -> None:
    key = f"billing:test-bucket:{uuid.uuid4().hex}"
    first_client, second_client = connect(redis_url(), 1.0), connect(redis_url(), 1.0)
    first, second = (FetchBudget(SLOW, client, key=key) for client in (first_client, second_client))
    try:
        await first.take("same_second_conflict")
        with pytest.raises(Unavailable) as caught:
            await second.take("same_second_conflict")  # the other replica spent it
        assert "BILLING_STRIPE_EVENT_FETCH_RATE" in str(caught.value)
    finally:
        await first_client.aclose()
        await second_client.aclose()


async def test_without_redis_each_process_keeps_its_own_bucket() -> None:
    client = connect("redis://127.0.0.1:1/0", 0.2)  # nothing listens there
    budget = FetchBudget(SLOW, client)
    try:
        await budget.take("untied_subscription")
        with pytest.raises(Unavailable):
            await budget.take("untied_subscription")
    finally:
        await client.aclose()
