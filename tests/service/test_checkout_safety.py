"""CreateCheckout money safety (issue 9 classes 1, 2, 7): one payable session per user,
request_ids decided locally, redirect URLs that cannot send users elsewhere.

Over gRPC against the emulator, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import pytest
import stripe

from generated.billing.v1 import billing_pb2 as pb
from generated.billing.v1 import billing_pb2_grpc as pb_grpc
from tests.conftest import EMULATOR_KEY
from tests.support.flows import CALLER, checkout, expect_code, stripe_client
from tests.support.processes import ServiceProcess

VALID: dict[str, str] = {
    "email": "a@example.com",
    "plan": "pro",
    "success_url": "https://app.example.com/ok?session={CHECKOUT_SESSION_ID}",
    "cancel_url": "https://app.example.com/back",
}


@pytest.fixture
async def client(emulator: Any) -> AsyncIterator[stripe.StripeClient]:
    """SDK client on the emulator, to look at the sessions the service created there."""
    async with stripe_client(emulator.base_url) as sdk:
        yield sdk


async def create(
    stub: pb_grpc.BillingServiceStub, user_id: str, request_id: str = "", **overrides: Any
) -> pb.CreateCheckoutResponse:
    request = pb.CreateCheckoutRequest(
        user_id=user_id, request_id=request_id, **{**VALID, **overrides}
    )
    return await stub.CreateCheckout(request, metadata=CALLER, timeout=10)


async def session_status(client: stripe.StripeClient, session_id: str) -> str:
    return str((await client.v1.checkout.sessions.retrieve_async(session_id)).status)


async def test_a_new_checkout_expires_the_users_older_open_sessions(
    stub: pb_grpc.BillingServiceStub, client: stripe.StripeClient, user_id: str
) -> None:
    first = await checkout(stub, user_id, "pro")
    second = await checkout(stub, user_id, "studio")
    assert await session_status(client, first.session_id) == "expired"
    assert await session_status(client, second.session_id) == "open"
    customer = (await client.v1.checkout.sessions.retrieve_async(second.session_id)).customer
    assert customer is not None
    listed = await client.v1.checkout.sessions.list_async(
        {"customer": str(customer), "status": "open"}
    )
    assert [s.id for s in listed.data] == [second.session_id]


async def test_concurrent_checkouts_of_one_user_leave_one_payable_session(
    stub: pb_grpc.BillingServiceStub, client: stripe.StripeClient, user_id: str
) -> None:
    await checkout(stub, user_id, "pro")  # the customer exists: the race is about sessions
    sessions = await asyncio.gather(*(checkout(stub, user_id, "studio") for _ in range(4)))
    statuses = [await session_status(client, s.session_id) for s in sessions]
    assert statuses.count("open") == 1, statuses


async def test_an_expired_session_cannot_be_paid(
    stub: pb_grpc.BillingServiceStub, emulator: Any, user_id: str
) -> None:
    first = await checkout(stub, user_id, "pro")
    await checkout(stub, user_id, "studio")
    with pytest.raises(Exception, match="not open"):
        emulator.complete_checkout(first.session_id)


async def test_other_users_sessions_stay_open(
    stub: pb_grpc.BillingServiceStub, client: stripe.StripeClient, user_id: str
) -> None:
    mine = await checkout(stub, user_id, "pro")
    await checkout(stub, f"{user_id}-other", "pro")
    assert await session_status(client, mine.session_id) == "open"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("plan", "studio"),
        ("success_url", "https://app.example.com/other"),
        ("cancel_url", "https://app.example.com/elsewhere"),
        ("email", "b@example.com"),
    ],
)
async def test_same_request_id_with_another_parameter_is_refused_naming_it(
    stub: pb_grpc.BillingServiceStub,
    client: stripe.StripeClient,
    user_id: str,
    field: str,
    value: str,
) -> None:
    first = await create(stub, user_id, f"req1-{user_id}")
    details = await expect_code(
        create(stub, user_id, f"req1-{user_id}", **{field: value}),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert field in details and "request_id" in details
    # Nothing new was opened: the first session is still the user's only payable one.
    assert await session_status(client, first.session_id) == "open"


async def test_same_request_id_for_another_user_is_refused_naming_user_id(
    stub: pb_grpc.BillingServiceStub, user_id: str
) -> None:
    await create(stub, user_id, f"req-{user_id}")
    details = await expect_code(
        create(stub, f"{user_id}-b", f"req-{user_id}"), grpc.StatusCode.FAILED_PRECONDITION
    )
    assert "user_id" in details


async def test_same_request_id_and_parameters_return_the_same_open_session(
    stub: pb_grpc.BillingServiceStub, client: stripe.StripeClient, user_id: str
) -> None:
    first = await create(stub, user_id, f"same-{user_id}")
    again = await create(stub, user_id, f"same-{user_id}")
    assert (again.session_id, again.checkout_url) == (first.session_id, first.checkout_url)
    assert await session_status(client, first.session_id) == "open"


async def test_without_request_id_every_call_is_a_new_session(
    stub: pb_grpc.BillingServiceStub, client: stripe.StripeClient, user_id: str
) -> None:
    first = await create(stub, user_id)
    # Another success_url without request_id: a new call, not "request_id already used".
    second = await create(stub, user_id, success_url="https://app.example.com/again")
    third = await create(stub, user_id)
    assert len({first.session_id, second.session_id, third.session_id}) == 3
    assert await session_status(client, third.session_id) == "open"
    assert await session_status(client, first.session_id) == "expired"


@pytest.mark.parametrize(
    "url",
    [
        "https://user:pw@app.example.com/ok",
        "https://app.example.com@evil.example/ok",
        "https://evil.example\\@app.example.com/",
        "https://app.example.com/ok\r\nLocation: https://evil.example",
        "https://app.example.com/\x00",
        "https://app.example.com/a b",
        "javascript:alert(1)",
        "//evil.example/ok",
        "https:///no-host",
        "https://app.example.com:99999/",
        "https://" + "a" * 2100 + ".com/",
    ],
)
@pytest.mark.parametrize("field", ["success_url", "cancel_url"])
async def test_checkout_redirect_urls_must_be_plain_absolute_http_urls(
    stub: pb_grpc.BillingServiceStub, user_id: str, field: str, url: str
) -> None:
    details = await expect_code(
        create(stub, user_id, **{field: url}), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert details.startswith(f"{field}:")


@pytest.mark.parametrize(
    "url", ["https://u@app.example.com/", "https://app.example.com/\t", "ftp://app.example.com/"]
)
async def test_portal_return_url_follows_the_same_rules(
    stub: pb_grpc.BillingServiceStub, user_id: str, url: str
) -> None:
    details = await expect_code(
        stub.CreatePortal(pb.CreatePortalRequest(user_id=user_id, return_url=url)),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert details.startswith("return_url:")


@pytest.fixture(scope="module")
def restricted(tmp_path_factory: pytest.TempPathFactory, emulator: Any) -> Iterator[ServiceProcess]:
    """A service that only lets Stripe redirect to app.example.com and *.example.org."""
    path = tmp_path_factory.mktemp("restricted") / "billing.db"
    env = {
        "DATABASE_URL": f"sqlite:///{path}",
        "STRIPE_API_BASE": emulator.base_url,
        "STRIPE_SECRET_KEY": EMULATOR_KEY,
        "BILLING_REDIRECT_HOSTS": "app.example.com,*.example.org",
    }
    with ServiceProcess(env) as process:
        yield process


@pytest.mark.parametrize(
    ("field", "url", "allowed"),
    [
        ("success_url", "https://app.example.com/ok", True),
        ("success_url", "https://APP.example.com/ok", True),
        ("cancel_url", "https://shop.example.org/back", True),
        ("success_url", "https://evil.example/ok", False),
        ("cancel_url", "https://example.org/back", False),
        ("cancel_url", "https://app.example.com.evil.example/", False),
        ("return_url", "https://evil.example/account", False),
    ],
)
async def test_redirect_hosts_allow_list(
    restricted: ServiceProcess, user_id: str, field: str, url: str, allowed: bool
) -> None:
    async with grpc.aio.insecure_channel(restricted.target) as channel:
        stub = pb_grpc.BillingServiceStub(channel)
        if field == "return_url":
            call = stub.CreatePortal(pb.CreatePortalRequest(user_id=user_id, return_url=url))
        else:
            call = create(stub, user_id, **{field: url})
        if allowed:
            assert (await call).session_id.startswith("cs_")
            return
        details = await expect_code(call, grpc.StatusCode.INVALID_ARGUMENT)
        assert details.startswith(f"{field}:") and "BILLING_REDIRECT_HOSTS" in details
