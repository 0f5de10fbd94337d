"""Usage resets when Stripe (the emulator, its clock advanced) renews the subscription.

The whole system runs: emulator -> signed webhooks -> gateway -> service.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from generated.billing.v1 import billing_pb2 as pb
from tests.gateway.system import System, new_user


def _consume(system: System, user: str, quantity: int) -> pb.ConsumeUsageResponse:
    answer: pb.ConsumeUsageResponse = system.stub.ConsumeUsage(
        pb.ConsumeUsageRequest(
            user_id=user, meter="exports", quantity=quantity, idempotency_key=uuid.uuid4().hex
        ),
        timeout=10,
    )
    return answer


def test_usage_resets_at_the_renewal_the_emulator_clock_brings(tmp_path: Path) -> None:
    with System(tmp_path) as system:
        user = new_user()
        sub = system.subscribe(user, "pro")
        start, end = sub.current_period_start.seconds, sub.current_period_end.seconds
        first = _consume(system, user, 10)
        assert (first.allowed, first.used, first.period_start.seconds) == (True, 10, start)
        assert not _consume(system, user, 1).allowed
        system.emulator.advance_clock(end - system.emulator.health()["now"] + 3600)
        renewed = system.wait_for(
            user, "the renewal", lambda s: s.current_period_start.seconds == end
        )
        assert renewed.tier == "pro"
        after = _consume(system, user, 1)
        assert (after.allowed, after.used, after.limit) == (True, 1, 10)
        assert after.period_start.seconds == end
