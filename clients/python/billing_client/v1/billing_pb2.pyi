import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SubscriptionStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SUBSCRIPTION_STATUS_UNSPECIFIED: _ClassVar[SubscriptionStatus]
    SUBSCRIPTION_STATUS_NONE: _ClassVar[SubscriptionStatus]
    SUBSCRIPTION_STATUS_INCOMPLETE: _ClassVar[SubscriptionStatus]
    SUBSCRIPTION_STATUS_INCOMPLETE_EXPIRED: _ClassVar[SubscriptionStatus]
    SUBSCRIPTION_STATUS_TRIALING: _ClassVar[SubscriptionStatus]
    SUBSCRIPTION_STATUS_ACTIVE: _ClassVar[SubscriptionStatus]
    SUBSCRIPTION_STATUS_PAST_DUE: _ClassVar[SubscriptionStatus]
    SUBSCRIPTION_STATUS_CANCELED: _ClassVar[SubscriptionStatus]
    SUBSCRIPTION_STATUS_UNPAID: _ClassVar[SubscriptionStatus]
    SUBSCRIPTION_STATUS_PAUSED: _ClassVar[SubscriptionStatus]

class EventOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EVENT_OUTCOME_UNSPECIFIED: _ClassVar[EventOutcome]
    EVENT_OUTCOME_APPLIED: _ClassVar[EventOutcome]
    EVENT_OUTCOME_DUPLICATE: _ClassVar[EventOutcome]
    EVENT_OUTCOME_IGNORED: _ClassVar[EventOutcome]
    EVENT_OUTCOME_STALE: _ClassVar[EventOutcome]

class EventResultView(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EVENT_RESULT_VIEW_UNSPECIFIED: _ClassVar[EventResultView]
    EVENT_RESULT_VIEW_FULL: _ClassVar[EventResultView]
    EVENT_RESULT_VIEW_BASIC: _ClassVar[EventResultView]

class ProrationBehavior(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PRORATION_BEHAVIOR_UNSPECIFIED: _ClassVar[ProrationBehavior]
    PRORATION_BEHAVIOR_CREATE_PRORATIONS: _ClassVar[ProrationBehavior]
    PRORATION_BEHAVIOR_NONE: _ClassVar[ProrationBehavior]
    PRORATION_BEHAVIOR_ALWAYS_INVOICE: _ClassVar[ProrationBehavior]

class BillingInterval(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BILLING_INTERVAL_UNSPECIFIED: _ClassVar[BillingInterval]
    BILLING_INTERVAL_MONTH: _ClassVar[BillingInterval]
    BILLING_INTERVAL_YEAR: _ClassVar[BillingInterval]
SUBSCRIPTION_STATUS_UNSPECIFIED: SubscriptionStatus
SUBSCRIPTION_STATUS_NONE: SubscriptionStatus
SUBSCRIPTION_STATUS_INCOMPLETE: SubscriptionStatus
SUBSCRIPTION_STATUS_INCOMPLETE_EXPIRED: SubscriptionStatus
SUBSCRIPTION_STATUS_TRIALING: SubscriptionStatus
SUBSCRIPTION_STATUS_ACTIVE: SubscriptionStatus
SUBSCRIPTION_STATUS_PAST_DUE: SubscriptionStatus
SUBSCRIPTION_STATUS_CANCELED: SubscriptionStatus
SUBSCRIPTION_STATUS_UNPAID: SubscriptionStatus
SUBSCRIPTION_STATUS_PAUSED: SubscriptionStatus
EVENT_OUTCOME_UNSPECIFIED: EventOutcome
EVENT_OUTCOME_APPLIED: EventOutcome
EVENT_OUTCOME_DUPLICATE: EventOutcome
EVENT_OUTCOME_IGNORED: EventOutcome
EVENT_OUTCOME_STALE: EventOutcome
EVENT_RESULT_VIEW_UNSPECIFIED: EventResultView
EVENT_RESULT_VIEW_FULL: EventResultView
EVENT_RESULT_VIEW_BASIC: EventResultView
PRORATION_BEHAVIOR_UNSPECIFIED: ProrationBehavior
PRORATION_BEHAVIOR_CREATE_PRORATIONS: ProrationBehavior
PRORATION_BEHAVIOR_NONE: ProrationBehavior
PRORATION_BEHAVIOR_ALWAYS_INVOICE: ProrationBehavior
BILLING_INTERVAL_UNSPECIFIED: BillingInterval
BILLING_INTERVAL_MONTH: BillingInterval
BILLING_INTERVAL_YEAR: BillingInterval

class Subscription(_message.Message):
    __slots__ = ("user_id", "stripe_customer_id", "stripe_subscription_id", "tier", "status", "current_period_start", "current_period_end", "cancel_at_period_end", "plan", "stripe_price_id", "access_until", "other_live_subscription_ids", "interval", "quantity", "unit_amount", "currency", "trial_end", "discount")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    STRIPE_CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    STRIPE_SUBSCRIPTION_ID_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CURRENT_PERIOD_START_FIELD_NUMBER: _ClassVar[int]
    CURRENT_PERIOD_END_FIELD_NUMBER: _ClassVar[int]
    CANCEL_AT_PERIOD_END_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    STRIPE_PRICE_ID_FIELD_NUMBER: _ClassVar[int]
    ACCESS_UNTIL_FIELD_NUMBER: _ClassVar[int]
    OTHER_LIVE_SUBSCRIPTION_IDS_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    UNIT_AMOUNT_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    TRIAL_END_FIELD_NUMBER: _ClassVar[int]
    DISCOUNT_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    stripe_customer_id: str
    stripe_subscription_id: str
    tier: str
    status: SubscriptionStatus
    current_period_start: _timestamp_pb2.Timestamp
    current_period_end: _timestamp_pb2.Timestamp
    cancel_at_period_end: bool
    plan: str
    stripe_price_id: str
    access_until: _timestamp_pb2.Timestamp
    other_live_subscription_ids: _containers.RepeatedScalarFieldContainer[str]
    interval: BillingInterval
    quantity: int
    unit_amount: int
    currency: str
    trial_end: _timestamp_pb2.Timestamp
    discount: SubscriptionDiscount
    def __init__(self, user_id: _Optional[str] = ..., stripe_customer_id: _Optional[str] = ..., stripe_subscription_id: _Optional[str] = ..., tier: _Optional[str] = ..., status: _Optional[_Union[SubscriptionStatus, str]] = ..., current_period_start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., current_period_end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., cancel_at_period_end: _Optional[bool] = ..., plan: _Optional[str] = ..., stripe_price_id: _Optional[str] = ..., access_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., other_live_subscription_ids: _Optional[_Iterable[str]] = ..., interval: _Optional[_Union[BillingInterval, str]] = ..., quantity: _Optional[int] = ..., unit_amount: _Optional[int] = ..., currency: _Optional[str] = ..., trial_end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., discount: _Optional[_Union[SubscriptionDiscount, _Mapping]] = ...) -> None: ...

class SubscriptionDiscount(_message.Message):
    __slots__ = ("name", "percent_off", "amount_off", "currency", "end", "promotion_code", "coupon_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PERCENT_OFF_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_OFF_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    PROMOTION_CODE_FIELD_NUMBER: _ClassVar[int]
    COUPON_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    percent_off: float
    amount_off: int
    currency: str
    end: _timestamp_pb2.Timestamp
    promotion_code: str
    coupon_id: str
    def __init__(self, name: _Optional[str] = ..., percent_off: _Optional[float] = ..., amount_off: _Optional[int] = ..., currency: _Optional[str] = ..., end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., promotion_code: _Optional[str] = ..., coupon_id: _Optional[str] = ...) -> None: ...

class CreateCheckoutRequest(_message.Message):
    __slots__ = ("user_id", "email", "plan", "success_url", "cancel_url", "request_id", "interval", "quantity", "promotion_code")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_URL_FIELD_NUMBER: _ClassVar[int]
    CANCEL_URL_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    PROMOTION_CODE_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    email: str
    plan: str
    success_url: str
    cancel_url: str
    request_id: str
    interval: BillingInterval
    quantity: int
    promotion_code: str
    def __init__(self, user_id: _Optional[str] = ..., email: _Optional[str] = ..., plan: _Optional[str] = ..., success_url: _Optional[str] = ..., cancel_url: _Optional[str] = ..., request_id: _Optional[str] = ..., interval: _Optional[_Union[BillingInterval, str]] = ..., quantity: _Optional[int] = ..., promotion_code: _Optional[str] = ...) -> None: ...

class CreateCheckoutResponse(_message.Message):
    __slots__ = ("checkout_url", "session_id", "trial_granted", "trial_days")
    CHECKOUT_URL_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    TRIAL_GRANTED_FIELD_NUMBER: _ClassVar[int]
    TRIAL_DAYS_FIELD_NUMBER: _ClassVar[int]
    checkout_url: str
    session_id: str
    trial_granted: bool
    trial_days: int
    def __init__(self, checkout_url: _Optional[str] = ..., session_id: _Optional[str] = ..., trial_granted: _Optional[bool] = ..., trial_days: _Optional[int] = ...) -> None: ...

class CreatePortalRequest(_message.Message):
    __slots__ = ("user_id", "return_url")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    RETURN_URL_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    return_url: str
    def __init__(self, user_id: _Optional[str] = ..., return_url: _Optional[str] = ...) -> None: ...

class CreatePortalResponse(_message.Message):
    __slots__ = ("portal_url",)
    PORTAL_URL_FIELD_NUMBER: _ClassVar[int]
    portal_url: str
    def __init__(self, portal_url: _Optional[str] = ...) -> None: ...

class GetSubscriptionRequest(_message.Message):
    __slots__ = ("user_id",)
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    def __init__(self, user_id: _Optional[str] = ...) -> None: ...

class GetSubscriptionResponse(_message.Message):
    __slots__ = ("subscription", "other_live_subscriptions")
    SUBSCRIPTION_FIELD_NUMBER: _ClassVar[int]
    OTHER_LIVE_SUBSCRIPTIONS_FIELD_NUMBER: _ClassVar[int]
    subscription: Subscription
    other_live_subscriptions: _containers.RepeatedCompositeFieldContainer[Subscription]
    def __init__(self, subscription: _Optional[_Union[Subscription, _Mapping]] = ..., other_live_subscriptions: _Optional[_Iterable[_Union[Subscription, _Mapping]]] = ...) -> None: ...

class CancelSubscriptionRequest(_message.Message):
    __slots__ = ("user_id", "at_period_end", "subscription_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    AT_PERIOD_END_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIPTION_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    at_period_end: bool
    subscription_id: str
    def __init__(self, user_id: _Optional[str] = ..., at_period_end: _Optional[bool] = ..., subscription_id: _Optional[str] = ...) -> None: ...

class CancelSubscriptionResponse(_message.Message):
    __slots__ = ("subscription",)
    SUBSCRIPTION_FIELD_NUMBER: _ClassVar[int]
    subscription: Subscription
    def __init__(self, subscription: _Optional[_Union[Subscription, _Mapping]] = ...) -> None: ...

class ResumeSubscriptionRequest(_message.Message):
    __slots__ = ("user_id", "subscription_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIPTION_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    subscription_id: str
    def __init__(self, user_id: _Optional[str] = ..., subscription_id: _Optional[str] = ...) -> None: ...

class ResumeSubscriptionResponse(_message.Message):
    __slots__ = ("subscription",)
    SUBSCRIPTION_FIELD_NUMBER: _ClassVar[int]
    subscription: Subscription
    def __init__(self, subscription: _Optional[_Union[Subscription, _Mapping]] = ...) -> None: ...

class ApplyStripeEventRequest(_message.Message):
    __slots__ = ("payload",)
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    payload: bytes
    def __init__(self, payload: _Optional[bytes] = ...) -> None: ...

class ApplyStripeEventResponse(_message.Message):
    __slots__ = ("outcome", "event_id", "subscription", "reason")
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIPTION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    outcome: EventOutcome
    event_id: str
    subscription: Subscription
    reason: str
    def __init__(self, outcome: _Optional[_Union[EventOutcome, str]] = ..., event_id: _Optional[str] = ..., subscription: _Optional[_Union[Subscription, _Mapping]] = ..., reason: _Optional[str] = ...) -> None: ...

class ApplyStripeEventsRequest(_message.Message):
    __slots__ = ("events", "view")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    VIEW_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[ApplyStripeEventRequest]
    view: EventResultView
    def __init__(self, events: _Optional[_Iterable[_Union[ApplyStripeEventRequest, _Mapping]]] = ..., view: _Optional[_Union[EventResultView, str]] = ...) -> None: ...

class ApplyStripeEventsResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[ApplyStripeEventResult]
    def __init__(self, results: _Optional[_Iterable[_Union[ApplyStripeEventResult, _Mapping]]] = ...) -> None: ...

class ApplyStripeEventResult(_message.Message):
    __slots__ = ("response", "error_code", "error_message")
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    response: ApplyStripeEventResponse
    error_code: int
    error_message: str
    def __init__(self, response: _Optional[_Union[ApplyStripeEventResponse, _Mapping]] = ..., error_code: _Optional[int] = ..., error_message: _Optional[str] = ...) -> None: ...

class CheckEntitlementRequest(_message.Message):
    __slots__ = ("user_id", "feature", "meter", "quantity")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    FEATURE_FIELD_NUMBER: _ClassVar[int]
    METER_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    feature: str
    meter: str
    quantity: int
    def __init__(self, user_id: _Optional[str] = ..., feature: _Optional[str] = ..., meter: _Optional[str] = ..., quantity: _Optional[int] = ...) -> None: ...

class CheckEntitlementResponse(_message.Message):
    __slots__ = ("allowed", "tier", "reason", "usage")
    ALLOWED_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    allowed: bool
    tier: str
    reason: str
    usage: MeterUsage
    def __init__(self, allowed: _Optional[bool] = ..., tier: _Optional[str] = ..., reason: _Optional[str] = ..., usage: _Optional[_Union[MeterUsage, _Mapping]] = ...) -> None: ...

class GetEntitlementsRequest(_message.Message):
    __slots__ = ("user_id",)
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    def __init__(self, user_id: _Optional[str] = ...) -> None: ...

class GetEntitlementsResponse(_message.Message):
    __slots__ = ("tier", "status", "features", "monthly_limit", "access_until", "user_id", "stripe_subscription_id", "other_live_subscription_ids", "seats", "trial_end")
    TIER_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    MONTHLY_LIMIT_FIELD_NUMBER: _ClassVar[int]
    ACCESS_UNTIL_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    STRIPE_SUBSCRIPTION_ID_FIELD_NUMBER: _ClassVar[int]
    OTHER_LIVE_SUBSCRIPTION_IDS_FIELD_NUMBER: _ClassVar[int]
    SEATS_FIELD_NUMBER: _ClassVar[int]
    TRIAL_END_FIELD_NUMBER: _ClassVar[int]
    tier: str
    status: SubscriptionStatus
    features: _containers.RepeatedScalarFieldContainer[str]
    monthly_limit: int
    access_until: _timestamp_pb2.Timestamp
    user_id: str
    stripe_subscription_id: str
    other_live_subscription_ids: _containers.RepeatedScalarFieldContainer[str]
    seats: int
    trial_end: _timestamp_pb2.Timestamp
    def __init__(self, tier: _Optional[str] = ..., status: _Optional[_Union[SubscriptionStatus, str]] = ..., features: _Optional[_Iterable[str]] = ..., monthly_limit: _Optional[int] = ..., access_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., user_id: _Optional[str] = ..., stripe_subscription_id: _Optional[str] = ..., other_live_subscription_ids: _Optional[_Iterable[str]] = ..., seats: _Optional[int] = ..., trial_end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class WatchEntitlementsRequest(_message.Message):
    __slots__ = ("user_ids",)
    USER_IDS_FIELD_NUMBER: _ClassVar[int]
    user_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, user_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class WatchEntitlementsResponse(_message.Message):
    __slots__ = ("entitlements", "snapshot", "changed_at", "usage")
    ENTITLEMENTS_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    CHANGED_AT_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    entitlements: GetEntitlementsResponse
    snapshot: bool
    changed_at: _timestamp_pb2.Timestamp
    usage: MeterUsage
    def __init__(self, entitlements: _Optional[_Union[GetEntitlementsResponse, _Mapping]] = ..., snapshot: _Optional[bool] = ..., changed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., usage: _Optional[_Union[MeterUsage, _Mapping]] = ...) -> None: ...

class ListAuditEventsRequest(_message.Message):
    __slots__ = ("user_id", "page_size", "page_token")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    page_size: int
    page_token: str
    def __init__(self, user_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListAuditEventsResponse(_message.Message):
    __slots__ = ("events", "next_page_token")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[AuditEvent]
    next_page_token: str
    def __init__(self, events: _Optional[_Iterable[_Union[AuditEvent, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class AuditEvent(_message.Message):
    __slots__ = ("id", "user_id", "stripe_subscription_id", "stripe_event_id", "stripe_event_type", "caller", "rpc", "status_before", "status_after", "tier_before", "tier_after", "detail", "created_at", "hash")
    ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    STRIPE_SUBSCRIPTION_ID_FIELD_NUMBER: _ClassVar[int]
    STRIPE_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    STRIPE_EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    CALLER_FIELD_NUMBER: _ClassVar[int]
    RPC_FIELD_NUMBER: _ClassVar[int]
    STATUS_BEFORE_FIELD_NUMBER: _ClassVar[int]
    STATUS_AFTER_FIELD_NUMBER: _ClassVar[int]
    TIER_BEFORE_FIELD_NUMBER: _ClassVar[int]
    TIER_AFTER_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    HASH_FIELD_NUMBER: _ClassVar[int]
    id: int
    user_id: str
    stripe_subscription_id: str
    stripe_event_id: str
    stripe_event_type: str
    caller: str
    rpc: str
    status_before: SubscriptionStatus
    status_after: SubscriptionStatus
    tier_before: str
    tier_after: str
    detail: str
    created_at: _timestamp_pb2.Timestamp
    hash: str
    def __init__(self, id: _Optional[int] = ..., user_id: _Optional[str] = ..., stripe_subscription_id: _Optional[str] = ..., stripe_event_id: _Optional[str] = ..., stripe_event_type: _Optional[str] = ..., caller: _Optional[str] = ..., rpc: _Optional[str] = ..., status_before: _Optional[_Union[SubscriptionStatus, str]] = ..., status_after: _Optional[_Union[SubscriptionStatus, str]] = ..., tier_before: _Optional[str] = ..., tier_after: _Optional[str] = ..., detail: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., hash: _Optional[str] = ...) -> None: ...

class ListInvoicesRequest(_message.Message):
    __slots__ = ("user_id", "page_size", "page_token")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    page_size: int
    page_token: str
    def __init__(self, user_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListInvoicesResponse(_message.Message):
    __slots__ = ("invoices", "next_page_token")
    INVOICES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    invoices: _containers.RepeatedCompositeFieldContainer[Invoice]
    next_page_token: str
    def __init__(self, invoices: _Optional[_Iterable[_Union[Invoice, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class Invoice(_message.Message):
    __slots__ = ("stripe_invoice_id", "user_id", "stripe_customer_id", "stripe_subscription_id", "status", "amount_due", "amount_paid", "currency", "hosted_invoice_url", "invoice_pdf", "period_start", "period_end", "attempt_count", "next_payment_attempt", "created")
    STRIPE_INVOICE_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    STRIPE_CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    STRIPE_SUBSCRIPTION_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_DUE_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_PAID_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    HOSTED_INVOICE_URL_FIELD_NUMBER: _ClassVar[int]
    INVOICE_PDF_FIELD_NUMBER: _ClassVar[int]
    PERIOD_START_FIELD_NUMBER: _ClassVar[int]
    PERIOD_END_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_COUNT_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAYMENT_ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    stripe_invoice_id: str
    user_id: str
    stripe_customer_id: str
    stripe_subscription_id: str
    status: str
    amount_due: int
    amount_paid: int
    currency: str
    hosted_invoice_url: str
    invoice_pdf: str
    period_start: _timestamp_pb2.Timestamp
    period_end: _timestamp_pb2.Timestamp
    attempt_count: int
    next_payment_attempt: _timestamp_pb2.Timestamp
    created: _timestamp_pb2.Timestamp
    def __init__(self, stripe_invoice_id: _Optional[str] = ..., user_id: _Optional[str] = ..., stripe_customer_id: _Optional[str] = ..., stripe_subscription_id: _Optional[str] = ..., status: _Optional[str] = ..., amount_due: _Optional[int] = ..., amount_paid: _Optional[int] = ..., currency: _Optional[str] = ..., hosted_invoice_url: _Optional[str] = ..., invoice_pdf: _Optional[str] = ..., period_start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., period_end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., attempt_count: _Optional[int] = ..., next_payment_attempt: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SyncCheckoutSessionRequest(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    def __init__(self, session_id: _Optional[str] = ...) -> None: ...

class SyncCheckoutSessionResponse(_message.Message):
    __slots__ = ("subscription",)
    SUBSCRIPTION_FIELD_NUMBER: _ClassVar[int]
    subscription: Subscription
    def __init__(self, subscription: _Optional[_Union[Subscription, _Mapping]] = ...) -> None: ...

class ChangePlanRequest(_message.Message):
    __slots__ = ("user_id", "plan", "proration", "request_id", "proration_date", "subscription_id", "interval")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    PRORATION_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PRORATION_DATE_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIPTION_ID_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    plan: str
    proration: ProrationBehavior
    request_id: str
    proration_date: _timestamp_pb2.Timestamp
    subscription_id: str
    interval: BillingInterval
    def __init__(self, user_id: _Optional[str] = ..., plan: _Optional[str] = ..., proration: _Optional[_Union[ProrationBehavior, str]] = ..., request_id: _Optional[str] = ..., proration_date: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., subscription_id: _Optional[str] = ..., interval: _Optional[_Union[BillingInterval, str]] = ...) -> None: ...

class ChangePlanResponse(_message.Message):
    __slots__ = ("subscription",)
    SUBSCRIPTION_FIELD_NUMBER: _ClassVar[int]
    subscription: Subscription
    def __init__(self, subscription: _Optional[_Union[Subscription, _Mapping]] = ...) -> None: ...

class PreviewPlanChangeRequest(_message.Message):
    __slots__ = ("user_id", "plan", "proration", "subscription_id", "interval")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    PRORATION_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIPTION_ID_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    plan: str
    proration: ProrationBehavior
    subscription_id: str
    interval: BillingInterval
    def __init__(self, user_id: _Optional[str] = ..., plan: _Optional[str] = ..., proration: _Optional[_Union[ProrationBehavior, str]] = ..., subscription_id: _Optional[str] = ..., interval: _Optional[_Union[BillingInterval, str]] = ...) -> None: ...

class UpdateSeatsRequest(_message.Message):
    __slots__ = ("user_id", "quantity", "proration", "request_id", "proration_date", "subscription_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    PRORATION_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PRORATION_DATE_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIPTION_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    quantity: int
    proration: ProrationBehavior
    request_id: str
    proration_date: _timestamp_pb2.Timestamp
    subscription_id: str
    def __init__(self, user_id: _Optional[str] = ..., quantity: _Optional[int] = ..., proration: _Optional[_Union[ProrationBehavior, str]] = ..., request_id: _Optional[str] = ..., proration_date: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., subscription_id: _Optional[str] = ...) -> None: ...

class UpdateSeatsResponse(_message.Message):
    __slots__ = ("subscription",)
    SUBSCRIPTION_FIELD_NUMBER: _ClassVar[int]
    subscription: Subscription
    def __init__(self, subscription: _Optional[_Union[Subscription, _Mapping]] = ...) -> None: ...

class PreviewSeatChangeRequest(_message.Message):
    __slots__ = ("user_id", "quantity", "proration", "subscription_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    PRORATION_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIPTION_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    quantity: int
    proration: ProrationBehavior
    subscription_id: str
    def __init__(self, user_id: _Optional[str] = ..., quantity: _Optional[int] = ..., proration: _Optional[_Union[ProrationBehavior, str]] = ..., subscription_id: _Optional[str] = ...) -> None: ...

class PreviewSeatChangeResponse(_message.Message):
    __slots__ = ("amount_due", "currency", "proration_date")
    AMOUNT_DUE_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    PRORATION_DATE_FIELD_NUMBER: _ClassVar[int]
    amount_due: int
    currency: str
    proration_date: _timestamp_pb2.Timestamp
    def __init__(self, amount_due: _Optional[int] = ..., currency: _Optional[str] = ..., proration_date: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PreviewPlanChangeResponse(_message.Message):
    __slots__ = ("amount_due", "currency", "proration_date")
    AMOUNT_DUE_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    PRORATION_DATE_FIELD_NUMBER: _ClassVar[int]
    amount_due: int
    currency: str
    proration_date: _timestamp_pb2.Timestamp
    def __init__(self, amount_due: _Optional[int] = ..., currency: _Optional[str] = ..., proration_date: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ReconcileUserRequest(_message.Message):
    __slots__ = ("user_id",)
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    def __init__(self, user_id: _Optional[str] = ...) -> None: ...

class ReconcileUserResponse(_message.Message):
    __slots__ = ("subscription", "subscriptions_seen", "subscriptions_changed")
    SUBSCRIPTION_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIPTIONS_SEEN_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIPTIONS_CHANGED_FIELD_NUMBER: _ClassVar[int]
    subscription: Subscription
    subscriptions_seen: int
    subscriptions_changed: int
    def __init__(self, subscription: _Optional[_Union[Subscription, _Mapping]] = ..., subscriptions_seen: _Optional[int] = ..., subscriptions_changed: _Optional[int] = ...) -> None: ...

class MeterUsage(_message.Message):
    __slots__ = ("meter", "used", "limit", "remaining", "unlimited", "overage_billed", "period_start", "period_end")
    METER_FIELD_NUMBER: _ClassVar[int]
    USED_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    REMAINING_FIELD_NUMBER: _ClassVar[int]
    UNLIMITED_FIELD_NUMBER: _ClassVar[int]
    OVERAGE_BILLED_FIELD_NUMBER: _ClassVar[int]
    PERIOD_START_FIELD_NUMBER: _ClassVar[int]
    PERIOD_END_FIELD_NUMBER: _ClassVar[int]
    meter: str
    used: int
    limit: int
    remaining: int
    unlimited: bool
    overage_billed: bool
    period_start: _timestamp_pb2.Timestamp
    period_end: _timestamp_pb2.Timestamp
    def __init__(self, meter: _Optional[str] = ..., used: _Optional[int] = ..., limit: _Optional[int] = ..., remaining: _Optional[int] = ..., unlimited: _Optional[bool] = ..., overage_billed: _Optional[bool] = ..., period_start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., period_end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ConsumeUsageRequest(_message.Message):
    __slots__ = ("user_id", "meter", "quantity", "idempotency_key", "occurred_at")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    METER_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    meter: str
    quantity: int
    idempotency_key: str
    occurred_at: _timestamp_pb2.Timestamp
    def __init__(self, user_id: _Optional[str] = ..., meter: _Optional[str] = ..., quantity: _Optional[int] = ..., idempotency_key: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ConsumeUsageResponse(_message.Message):
    __slots__ = ("allowed", "used", "limit", "remaining", "period_end", "overage", "unlimited", "replayed", "reason", "period_start")
    ALLOWED_FIELD_NUMBER: _ClassVar[int]
    USED_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    REMAINING_FIELD_NUMBER: _ClassVar[int]
    PERIOD_END_FIELD_NUMBER: _ClassVar[int]
    OVERAGE_FIELD_NUMBER: _ClassVar[int]
    UNLIMITED_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    PERIOD_START_FIELD_NUMBER: _ClassVar[int]
    allowed: bool
    used: int
    limit: int
    remaining: int
    period_end: _timestamp_pb2.Timestamp
    overage: int
    unlimited: bool
    replayed: bool
    reason: str
    period_start: _timestamp_pb2.Timestamp
    def __init__(self, allowed: _Optional[bool] = ..., used: _Optional[int] = ..., limit: _Optional[int] = ..., remaining: _Optional[int] = ..., period_end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., overage: _Optional[int] = ..., unlimited: _Optional[bool] = ..., replayed: _Optional[bool] = ..., reason: _Optional[str] = ..., period_start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RefundUsageRequest(_message.Message):
    __slots__ = ("user_id", "meter", "idempotency_key")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    METER_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    meter: str
    idempotency_key: str
    def __init__(self, user_id: _Optional[str] = ..., meter: _Optional[str] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class RefundUsageResponse(_message.Message):
    __slots__ = ("refunded", "already_refunded", "usage")
    REFUNDED_FIELD_NUMBER: _ClassVar[int]
    ALREADY_REFUNDED_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    refunded: int
    already_refunded: bool
    usage: MeterUsage
    def __init__(self, refunded: _Optional[int] = ..., already_refunded: _Optional[bool] = ..., usage: _Optional[_Union[MeterUsage, _Mapping]] = ...) -> None: ...

class GetUsageRequest(_message.Message):
    __slots__ = ("user_id", "meter")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    METER_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    meter: str
    def __init__(self, user_id: _Optional[str] = ..., meter: _Optional[str] = ...) -> None: ...

class GetUsageResponse(_message.Message):
    __slots__ = ("user_id", "tier", "meters")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    METERS_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    tier: str
    meters: _containers.RepeatedCompositeFieldContainer[MeterUsage]
    def __init__(self, user_id: _Optional[str] = ..., tier: _Optional[str] = ..., meters: _Optional[_Iterable[_Union[MeterUsage, _Mapping]]] = ...) -> None: ...
