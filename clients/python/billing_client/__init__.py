"""The client side of billing.v1.BillingService: what a caller needs, none of the server.

The service's own tools and the webhook gateway call the service through
this package too, so there is one answer to each question a caller has:

- ``billing_client.v1``: the generated messages and stubs.
- ``credentials``: who the caller is (bearer token or mTLS client certificate,
  ``Credentials.from_env()`` reads the gateway's ``BILLING_SERVICE_*`` variables)
  and the metadata every call carries.
- ``channel``: channels with per-RPC default deadlines, gRPC's own retries
  (``RetryPolicy``; the default retries the calls safe to repeat on
  UNAVAILABLE) and keepalive.
- ``names``: names read from the proto (the service's full name, RPC names,
  event-outcome names).
- ``entitlements``: ``EntitlementClient``, entitlement checks with a local
  cache kept fresh by WatchEntitlements.

::

    from billing_client import Credentials, aio_channel
    from billing_client.v1 import billing_pb2 as pb, billing_pb2_grpc as pb_grpc

    credentials = Credentials.from_env()
    async with aio_channel("billing.internal:50051", credentials) as channel:
        billing = pb_grpc.BillingServiceStub(channel)
        answer = await billing.GetSubscription(
            pb.GetSubscriptionRequest(user_id="u_123"), metadata=credentials.metadata("search")
        )
"""

from billing_client.channel import (
    DEFAULT_RETRY_POLICY,
    DEFAULT_TIMEOUTS,
    RetryPolicy,
    aio_channel,
    channel_options,
    sync_channel,
)
from billing_client.credentials import (
    CALLER_METADATA_KEY,
    Credentials,
    CredentialsError,
    target_from_env,
)
from billing_client.entitlements import Decision, EntitlementClient, Entitlements, FailMode
from billing_client.names import OUTCOME_NAMES, OUTCOME_VALUES, RPC_NAMES, SERVICE_NAME

__all__ = [
    "CALLER_METADATA_KEY",
    "DEFAULT_RETRY_POLICY",
    "DEFAULT_TIMEOUTS",
    "OUTCOME_NAMES",
    "OUTCOME_VALUES",
    "RPC_NAMES",
    "SERVICE_NAME",
    "Credentials",
    "CredentialsError",
    "Decision",
    "EntitlementClient",
    "Entitlements",
    "FailMode",
    "RetryPolicy",
    "aio_channel",
    "channel_options",
    "sync_channel",
    "target_from_env",
]
