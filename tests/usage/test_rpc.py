"""ConsumeUsage, RefundUsage, GetUsage and CheckEntitlement's meter, over a real server.

Limits come from plans.example.toml: free api_calls 20; pro api_calls 1000, exports 10;
studio api_calls unlimited, exports 50.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import grpc
import pytest

from generated.billing.v1 import billing_pb2 as pb
from tests.events import factory
from tests.usage.support import Usage, new_key, status_of


async def test_consume_counts_until_the_limit_then_refuses_the_whole_quantity(
    usage: Usage, user_id: str
) -> None:
    first = await usage.consume(user_id, 15)
    assert (first.allowed, first.used, first.limit, first.remaining) == (True, 15, 20, 5)
    refused = await usage.consume(user_id, 6)
    assert (refused.allowed, refused.used, refused.remaining) == (False, 15, 5)
    assert "refused" in refused.reason
    last = await usage.consume(user_id, 5)
    assert (last.allowed, last.used, last.remaining) == (True, 20, 0)
    assert not (await usage.consume(user_id, 1)).allowed
    assert await usage.used(user_id) == 20


async def test_same_key_returns_the_first_answer_and_counts_once(
    usage: Usage, user_id: str
) -> None:
    key = new_key()
    first = await usage.consume(user_id, 3, key=key)
    again = await usage.consume(user_id, 3, key=key)
    assert again.replayed and not first.replayed
    assert (again.allowed, again.used, again.remaining) == (first.allowed, 3, 17)
    assert await usage.used(user_id) == 3


async def test_concurrent_retries_of_one_key_count_once(usage: Usage, user_id: str) -> None:
    key = new_key()
    answers = await asyncio.gather(*(usage.consume(user_id, 2, key=key) for _ in range(10)))
    assert sum(not a.replayed for a in answers) == 1
    assert {a.used for a in answers} == {2}
    assert await usage.used(user_id) == 2


async def test_concurrent_consumers_never_pass_the_limit(usage: Usage, user_id: str) -> None:
    answers = await asyncio.gather(*(usage.consume(user_id, 3) for _ in range(12)))
    assert sum(a.allowed for a in answers) == 6  # 6 * 3 = 18; a seventh would make 21
    assert await usage.used(user_id) == 18


@pytest.mark.parametrize(
    ("user", "quantity", "meter", "other"),
    [("other-user", 3, "api_calls", "user_id"), ("", 4, "api_calls", "quantity")],
)
async def test_same_key_for_another_consumption_is_failed_precondition(
    usage: Usage, user_id: str, user: str, quantity: int, meter: str, other: str
) -> None:
    key = new_key()
    await usage.consume(user_id, 3, key=key)
    code = await status_of(usage.consume(user or user_id, quantity, meter=meter, key=key))
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert await usage.used(user_id) == 3


async def test_same_key_on_another_meter_is_failed_precondition(usage: Usage, user_id: str) -> None:
    key = new_key()
    await usage.consume(user_id, 1, key=key)
    code = await status_of(usage.consume(user_id, 1, meter="units", key=key))
    assert code == grpc.StatusCode.FAILED_PRECONDITION


async def test_refund_gives_units_back_once(usage: Usage, user_id: str) -> None:
    key = new_key()
    await usage.consume(user_id, 20, key=key)
    assert not (await usage.consume(user_id, 1)).allowed
    refund = await usage.refund(user_id, key)
    assert (refund.refunded, refund.already_refunded, refund.usage.used) == (20, False, 0)
    again = await usage.refund(user_id, key)
    assert (again.refunded, again.already_refunded, again.usage.used) == (0, True, 0)
    assert (await usage.consume(user_id, 1)).allowed
    assert await usage.used(user_id) == 1
    # The consumption's key still answers as first answered, and is not counted again.
    assert (await usage.consume(user_id, 20, key=key)).replayed
    assert await usage.used(user_id) == 1


async def test_refund_of_unknown_key_or_another_users_key_is_not_found(
    usage: Usage, user_id: str
) -> None:
    key = new_key()
    await usage.consume(user_id, 1, key=key)
    assert await status_of(usage.refund(user_id, new_key())) == grpc.StatusCode.NOT_FOUND
    assert await status_of(usage.refund("someone-else", key)) == grpc.StatusCode.NOT_FOUND
    code = await status_of(usage.refund(user_id, key, meter="exports"))
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert await usage.used(user_id) == 1


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (pb.ConsumeUsageRequest(meter="api_calls", quantity=1, idempotency_key="k"), "user_id"),
        (
            pb.ConsumeUsageRequest(user_id="u", meter="nope", quantity=1, idempotency_key="k"),
            "meter",
        ),
        (pb.ConsumeUsageRequest(user_id="u", meter="api_calls", idempotency_key="k"), "quantity"),
        (
            pb.ConsumeUsageRequest(
                user_id="u", meter="api_calls", quantity=-5, idempotency_key="k"
            ),
            "quantity",
        ),
        (
            pb.ConsumeUsageRequest(
                user_id="u", meter="api_calls", quantity=10**12, idempotency_key="k"
            ),
            "quantity",
        ),
        (pb.ConsumeUsageRequest(user_id="u", meter="api_calls", quantity=1), "idempotency_key"),
    ],
)
async def test_bad_consume_is_invalid_argument_naming_the_field(
    usage: Usage, request_: pb.ConsumeUsageRequest, field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await usage.stub.ConsumeUsage(request_, timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (caught.value.details() or "").startswith(field)


@pytest.mark.parametrize("offset", [timedelta(days=36), timedelta(minutes=-10)])
async def test_occurred_at_outside_stripes_window_is_invalid(
    usage: Usage, user_id: str, offset: timedelta
) -> None:
    when = datetime.now(UTC) - offset
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await usage.consume(user_id, 1, occurred_at=when)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (caught.value.details() or "").startswith("occurred_at")
    assert await usage.used(user_id) == 0


async def test_default_meter_is_the_monthly_limit(usage: Usage, user_id: str) -> None:
    answer = await usage.consume(user_id, 4, meter="")
    assert (answer.allowed, answer.limit, answer.used) == (True, 10, 4)
    assert (await usage.get(user_id, "units")).meters[0].used == 4


async def test_meter_absent_from_the_plan_is_not_included(usage: Usage, user_id: str) -> None:
    answer = await usage.consume(user_id, 1, meter="exports")
    assert (answer.allowed, answer.limit, answer.used) == (False, 0, 0)


async def test_unlimited_meter_and_plan_change_mid_period_keeps_used_units(
    usage: Usage, user_id: str
) -> None:
    sub_id = factory.new_id("sub")
    start = int(datetime.now(UTC).timestamp()) - 3600
    await usage.subscribe(user_id, sub_id, period_start=start)
    assert (await usage.consume(user_id, 8, meter="exports")).used == 8
    refused = await usage.consume(user_id, 3, meter="exports")
    assert (refused.allowed, refused.limit) == (False, 10)
    # Upgrade in the same period: the studio limit applies to the 8 already counted.
    await usage.subscribe(user_id, sub_id, price="price_studio_monthly", period_start=start)
    upgraded = await usage.consume(user_id, 3, meter="exports")
    assert (upgraded.allowed, upgraded.used, upgraded.limit) == (True, 11, 50)
    unlimited = await usage.consume(user_id, 10**6, meter="api_calls")
    assert unlimited.allowed and unlimited.unlimited
    # Downgrade: 11 used is already over pro's 10; nothing more fits.
    await usage.subscribe(user_id, sub_id, price="price_pro_monthly", period_start=start)
    down = await usage.consume(user_id, 1, meter="exports")
    assert (down.allowed, down.used, down.limit, down.remaining) == (False, 11, 10, 0)


async def test_get_usage_lists_every_meter_with_the_period(usage: Usage, user_id: str) -> None:
    await usage.consume(user_id, 2)
    answer = await usage.get(user_id)
    assert answer.tier == "free"
    by_meter = {m.meter: m for m in answer.meters}
    assert set(by_meter) == {"api_calls", "exports", "tokens", "units"}
    assert (by_meter["api_calls"].used, by_meter["api_calls"].remaining) == (2, 18)
    now = datetime.now(UTC)
    assert by_meter["api_calls"].period_start.ToDatetime(UTC) == now.replace(
        day=1, hour=0, minute=0, second=0, microsecond=0
    )


async def test_check_entitlement_with_a_meter_consumes_nothing(usage: Usage, user_id: str) -> None:
    await usage.consume(user_id, 18)

    async def check(quantity: int, feature: str = "") -> pb.CheckEntitlementResponse:
        answer: pb.CheckEntitlementResponse = await usage.stub.CheckEntitlement(
            pb.CheckEntitlementRequest(
                user_id=user_id, feature=feature, meter="api_calls", quantity=quantity
            )
        )
        return answer

    fits, too_many = await check(2), await check(3)
    assert fits.allowed and not too_many.allowed
    assert (fits.usage.used, fits.usage.remaining, fits.tier) == (18, 2, "free")
    with_feature = await check(1, "priority_support")
    assert not with_feature.allowed  # free lacks the feature though the quantity fits
    assert await usage.used(user_id) == 18
