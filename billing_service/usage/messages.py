"""The edge of usage metering: its answers (``answers.py``) as billing.v1 messages."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache

from google.protobuf.timestamp_pb2 import Timestamp

from billing_service.usage.answers import ConsumeAnswer, MeterUsage, RefundAnswer, UsageSummary
from generated.billing.v1 import billing_pb2 as pb


@lru_cache(maxsize=4096)
def _seconds_nanos(value: datetime) -> tuple[int, int]:
    # Period bounds repeat across calls: convert each once.
    ts = Timestamp()
    ts.FromDatetime(value.replace(tzinfo=UTC))
    return ts.seconds, ts.nanos


def _set(ts: Timestamp, value: datetime) -> None:
    ts.seconds, ts.nanos = _seconds_nanos(value)


def meter_usage(usage: MeterUsage) -> pb.MeterUsage:
    """The MeterUsage message of ``usage``."""
    message = pb.MeterUsage(
        meter=usage.meter,
        used=usage.used,
        limit=usage.limit,
        remaining=usage.remaining,
        unlimited=usage.unlimited,
        overage_billed=usage.overage_billed,
    )
    _set(message.period_start, usage.period_start)
    _set(message.period_end, usage.period_end)
    return message


def consume_response(answer: ConsumeAnswer) -> pb.ConsumeUsageResponse:
    """The ConsumeUsageResponse of ``answer``."""
    response = pb.ConsumeUsageResponse(
        allowed=answer.allowed,
        used=answer.used,
        limit=answer.limit,
        remaining=answer.remaining,
        overage=answer.overage,
        unlimited=answer.unlimited,
        replayed=answer.replayed,
        reason=answer.reason,
    )
    _set(response.period_start, answer.period_start)
    _set(response.period_end, answer.period_end)
    return response


def refund_response(answer: RefundAnswer) -> pb.RefundUsageResponse:
    """The RefundUsageResponse of ``answer``."""
    return pb.RefundUsageResponse(
        refunded=answer.refunded,
        already_refunded=answer.already_refunded,
        usage=meter_usage(answer.usage),
    )


def usage_response(summary: UsageSummary) -> pb.GetUsageResponse:
    """The GetUsageResponse of ``summary``."""
    return pb.GetUsageResponse(
        user_id=summary.user_id,
        tier=summary.tier,
        meters=[meter_usage(m) for m in summary.meters],
    )


def delivered_as_messages(
    deliver: Callable[[str, pb.MeterUsage], None],
) -> Callable[[str, MeterUsage], None]:
    """``deliver`` (watch streams, the announcer) fed with MeterUsage messages."""

    def on_change(user_id: str, usage: MeterUsage) -> None:
        deliver(user_id, meter_usage(usage))

    return on_change
