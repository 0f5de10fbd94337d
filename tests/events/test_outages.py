"""Transient failures: a database outage, Redis stopping mid-test, a lock held elsewhere."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import grpc
import psycopg2
import pytest
import redis

from devtools.redis_server import RedisServer
from devtools.waiting import wait_until_async
from generated.billing.v1 import billing_pb2 as pb
from generated.billing.v1 import billing_pb2_grpc as pb_grpc
from tests.conftest import migrate
from tests.events import factory
from tests.events.conftest import EventsClient, service_env
from tests.events.stripe_standin import StripeStandIn
from tests.support.processes import ServiceProcess
from tests.support.services import fresh_postgres_database
from tests.support.tcp_proxy import TcpProxy

APPLIED = pb.EVENT_OUTCOME_APPLIED
DUPLICATE = pb.EVENT_OUTCOME_DUPLICATE


def _event(user_id: str) -> dict[str, object]:
    sub_id, cus = factory.new_id("sub"), factory.new_id("cus")
    obj = factory.subscription(sub_id, cus, "active", user_id=user_id)
    return factory.event("customer.subscription.created", obj)


async def _send_until_answered(
    client: EventsClient, ev: dict[str, object]
) -> pb.ApplyStripeEventResponse:
    """Retry UNAVAILABLE like the gateway does; pooled connections may need a try to heal."""

    async def send() -> pb.ApplyStripeEventResponse | None:
        try:
            return await client.send(ev)
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.UNAVAILABLE:
                raise
            return None

    answer = await wait_until_async("an answer other than UNAVAILABLE", send)
    assert answer is not None
    return answer


async def test_an_event_that_failed_while_the_database_was_down_applies_on_retry(
    proxied_postgres: tuple[str, TcpProxy], stripe_standin: StripeStandIn, user_id: str
) -> None:
    url, proxy = proxied_postgres
    env = service_env(url, stripe_standin, BILLING_DB_WORKERS="2")
    ev = _event(user_id)
    with ServiceProcess(env) as service:
        async with grpc.aio.insecure_channel(service.target) as channel:
            client = EventsClient(pb_grpc.BillingServiceStub(channel))
            warmup = _event(user_id + "-w")
            assert (await client.send(warmup)).outcome == APPLIED  # pooled connections exist
            proxy.cut()
            try:
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await client.send(ev)
                assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
            finally:
                proxy.restore()
            direct = psycopg2.connect(url.replace(f"127.0.0.1:{proxy.port}", "127.0.0.1:5432"))
            try:
                with direct.cursor() as cur:
                    cur.execute(
                        "SELECT count(*) FROM processed_event WHERE event_id = %s", (ev["id"],)
                    )
                    assert cur.fetchone() == (0,)  # not marked processed
            finally:
                direct.close()
            answer = await _send_until_answered(client, ev)
            assert answer.outcome == APPLIED
            assert (await client.send(ev)).outcome == DUPLICATE
            records = await client.audit(user_id)
            assert [r.stripe_event_id for r in records] == [ev["id"]]


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    """A private Redis, stopped at the end whatever happened."""
    with RedisServer() as server:
        yield server


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_redis_stopping_mid_test_degrades_to_the_database(
    backend: str,
    private_redis: RedisServer,
    stripe_standin: StripeStandIn,
    user_id: str,
    tmp_path: object,
) -> None:
    sqlite = contextlib.nullcontext(f"sqlite:///{tmp_path}/billing.db")
    with fresh_postgres_database() if backend == "postgresql" else sqlite as url:
        if backend == "postgresql":
            migrate(url)
        env = service_env(url, stripe_standin, REDIS_URL=private_redis.url)
        with ServiceProcess(env) as service:
            async with grpc.aio.insecure_channel(service.target) as channel:
                client = EventsClient(pb_grpc.BillingServiceStub(channel))
                before = _event(user_id)
                assert (await client.send(before)).outcome == APPLIED
                assert redis.Redis.from_url(private_redis.url).exists(
                    f"billing:event:{before['id']}"
                )
                private_redis.stop()
                during = _event(user_id)
                assert (await client.send(during)).outcome == APPLIED
                assert (await client.send(during)).outcome == DUPLICATE
                assert (await client.send(before)).outcome == DUPLICATE
                private_redis.start()  # empty: the markers are gone
                assert (await client.send(before)).outcome == DUPLICATE
                after = _event(user_id)
                assert (await client.send(after)).outcome == APPLIED
                # Three live subscriptions of one user: besides one record per event,
                # the second and third are each audited once as a duplicate.
                records = await client.audit(user_id)
                changes = [r for r in records if not r.detail.startswith("duplicate subscription")]
                assert sorted(r.stripe_event_id for r in changes) == sorted(
                    str(e["id"]) for e in (before, during, after)
                )
                assert len(records) - len(changes) == 2
            assert "using the database only" in service.log_text()


async def test_a_lock_held_elsewhere_answers_unavailable_and_is_never_stolen(
    private_redis: RedisServer, stripe_standin: StripeStandIn, user_id: str, tmp_path: object
) -> None:
    url = f"sqlite:///{tmp_path}/billing.db"
    env = service_env(url, stripe_standin, REDIS_URL=private_redis.url)
    env["BILLING_EVENT_LOCK_WAIT_SECONDS"] = "0.3"
    ev = _event(user_id)
    cus = ev["data"]["object"]["customer"]  # type: ignore[index]
    other = redis.Redis.from_url(private_redis.url)
    other.set(f"billing:lock:customer:{cus}", "another-replica", px=60_000)
    with ServiceProcess(env) as service:
        async with grpc.aio.insecure_channel(service.target) as channel:
            client = EventsClient(pb_grpc.BillingServiceStub(channel))
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await client.send(ev)
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "lock" in (caught.value.details() or "")
            assert other.get(f"billing:lock:customer:{cus}") == b"another-replica"
            other.delete(f"billing:lock:customer:{cus}")
            answer = await client.send(ev)
            assert answer.outcome == APPLIED
            assert not other.exists(f"billing:lock:customer:{cus}")  # released by its owner
