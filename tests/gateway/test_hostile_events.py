"""Signed but malformed events: a dead letter (200) or a 400, never a 503 Stripe retries for days.

Real processes on SQLite and PostgreSQL: a gateway in front of a billing
service over a Stripe stand-in. Real events (built from Stripe's sample
objects) are mutated in the fields the service reads and in random places.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.events import factory
from tests.events.conftest import service_env
from tests.events.stripe_standin import StripeStandIn
from tests.gateway.support import Answer, GatewayProcess, post_event, sign
from tests.support.processes import ServiceProcess

SECRET = "whsec_hostile_events"
DONE = {"applied", "ignored", "duplicate", "stale", "dead_lettered"}


@pytest.fixture(scope="module")
def standin() -> Iterator[StripeStandIn]:
    """The Stripe stand-in the service asks about invoices and checkout sessions."""
    with StripeStandIn() as server:
        yield server


@pytest.fixture(scope="module")
def gateway(database_url: str, standin: StripeStandIn) -> Iterator[GatewayProcess]:
    """A gateway in front of a real billing service, both on ``database_url``."""
    with ServiceProcess(service_env(database_url, standin)) as service:
        env = {
            "BILLING_SERVICE_TARGET": service.target,
            "STRIPE_WEBHOOK_SECRETS": SECRET,
            "DATABASE_URL": database_url,
        }
        with GatewayProcess(env) as process:
            yield process


def deliver(gateway: GatewayProcess, event: dict[str, Any]) -> Answer:
    """Sign ``event`` and POST it."""
    body = json.dumps(event).encode()
    return post_event(gateway, body, sign(body, SECRET))


def subscription_event(legacy: bool = False) -> dict[str, Any]:
    """A real customer.subscription.updated event for a fresh subscription and user."""
    sub = factory.subscription(
        factory.new_id("sub"),
        factory.new_id("cus"),
        "active",
        user_id=f"user-{factory.new_id('u')}",
        legacy=legacy,
    )
    return factory.event("customer.subscription.updated", sub, legacy=legacy)


def invoice_event() -> dict[str, Any]:
    """A real invoice.paid event (its subscription unknown to the stand-in)."""
    obj = factory.invoice(factory.new_id("cus"), factory.new_id("sub"))
    return factory.event("invoice.paid", obj)


def checkout_event() -> dict[str, Any]:
    """A real checkout.session.completed event."""
    obj = factory.checkout_session(factory.new_id("cus"), factory.new_id("sub"))
    return factory.event("checkout.session.completed", obj)


def _period_end(ev: dict[str, Any], value: Any) -> None:
    ev["data"]["object"]["items"]["data"][0]["current_period_end"] = value


# One case per kind of content that can never be applied; each answered 503 INTERNAL before.
NEVER_APPLICABLE = {
    "created_text": lambda ev: ev["data"]["object"].update(created="abc"),
    "created_list": lambda ev: ev["data"]["object"].update(created=[1]),
    "period_end_1e20": lambda ev: _period_end(ev, 1e20),
    "period_end_negative": lambda ev: _period_end(ev, -1e12),
    "period_end_huge_int": lambda ev: _period_end(ev, 1 << 70),
    "envelope_created_2_70": lambda ev: ev.update(created=1 << 70),
    "subscription_id_10kb": lambda ev: ev["data"]["object"].update(id="sub_" + "a" * 10_000),
    "customer_id_10kb": lambda ev: ev["data"]["object"].update(customer="cus_" + "b" * 10_000),
    "nul_in_subscription_id": lambda ev: ev["data"]["object"].update(id="sub_1\x00x"),
    "nul_in_customer_id": lambda ev: ev["data"]["object"].update(customer="cus_\x00"),
    "nul_in_metadata": lambda ev: ev["data"]["object"]["metadata"].update(note="a\x00b"),
    "status_number": lambda ev: ev["data"]["object"].update(status=7),
    "items_data_text": lambda ev: ev["data"]["object"]["items"].update(data="x"),
}


@pytest.mark.parametrize("mutation", sorted(NEVER_APPLICABLE))
def test_never_applicable_content_is_dead_lettered(gateway: GatewayProcess, mutation: str) -> None:
    event = subscription_event()
    NEVER_APPLICABLE[mutation](event)
    answer = deliver(gateway, event)
    assert answer.status == 200, answer
    assert answer.json["status"] == "dead_lettered", answer


def test_nul_in_event_id_is_answered_without_5xx(gateway: GatewayProcess) -> None:
    event = subscription_event()
    event["id"] = "evt_\x00" + "c" * 10_000
    answer = deliver(gateway, event)
    assert answer.status == 200, answer
    assert answer.json["status"] == "dead_lettered", answer


def test_valid_events_still_apply(gateway: GatewayProcess) -> None:
    for legacy in (False, True):
        answer = deliver(gateway, subscription_event(legacy=legacy))
        assert answer.status == 200, answer
        assert answer.json["status"] == "applied", answer


HOSTILE_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(1 << 80), max_value=1 << 80),
    st.sampled_from([1e20, -1e12, 1.5, 2**63, 2**64, -1]),
    st.text(max_size=12),
    st.text(alphabet="ab\x00_", max_size=8).map(lambda t: "sub_" + t),
    st.sampled_from(["sub_" + "x" * 300, "cus_" + "y" * 10_000, "\x00", "sub_ok", "cus_ok"]),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.sampled_from(["id", "object", "data"]), st.integers(), max_size=2),
    st.integers(min_value=1, max_value=60).map(lambda depth: json.loads("[" * depth + "]" * depth)),
)


_OBJECT = ("data", "object")
_ITEM = (*_OBJECT, "items", "data", 0)
READ_PATHS = [
    ("id",),
    ("created",),
    ("type",),
    ("data",),
    _OBJECT,
    *(
        (*_OBJECT, name)
        for name in (
            "id",
            "object",
            "customer",
            "status",
            "created",
            "cancel_at",
            "canceled_at",
            "cancel_at_period_end",
            "metadata",
            "items",
            "current_period_end",
            "subscription",
            "parent",
            "mode",
            "client_reference_id",
        )
    ),
    (*_OBJECT, "items", "data"),
    _ITEM,
    *((*_ITEM, name) for name in ("current_period_start", "current_period_end", "price", "plan")),
    (*_ITEM, "price", "id"),
    (*_OBJECT, "metadata", "user_id"),
    (*_OBJECT, "parent", "subscription_details"),
    (*_OBJECT, "parent", "subscription_details", "subscription"),
]


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found: list[tuple[Any, ...]] = []
    items: Any = node.items() if isinstance(node, dict) else enumerate(node)
    for key, value in items:
        found.append((*prefix, key))
        if isinstance(value, dict | list):
            found.extend(_paths(value, (*prefix, key)))
    return found


def _mutate(event: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    mutated = copy.deepcopy(event)
    node: Any = mutated
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return mutated


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data(), kind=st.sampled_from(["current", "legacy", "invoice", "checkout"]))
def test_mutated_real_events_are_never_answered_5xx(
    gateway: GatewayProcess, data: st.DataObject, kind: str
) -> None:
    event = {
        "current": lambda: subscription_event(),
        "legacy": lambda: subscription_event(legacy=True),
        "invoice": invoice_event,
        "checkout": checkout_event,
    }[kind]()
    # One to three mutations, half of them on a field the service reads.
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        present = set(_paths(event))
        read = [p for p in READ_PATHS if p in present]
        anywhere = sorted(present, key=repr) or [("id",)]
        choice = st.sampled_from(anywhere)
        if read:
            choice = st.sampled_from(read) | choice
        path = data.draw(choice, label="path")
        event = _mutate(event, path, data.draw(HOSTILE_VALUES, label="value"))
    answer = deliver(gateway, event)
    assert answer.status in (200, 400), answer
    assert isinstance(answer.json, dict), answer
    if answer.status == 200:
        assert answer.json["status"] in DONE, answer
