"""Client for billing.v1.BillingService: generated stubs, entitlement client, credentials, channels.

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

from billing_client.channel import DEFAULT_TIMEOUTS, aio_channel, channel_options, sync_channel
from billing_client.credentials import CALLER_METADATA_KEY, Credentials
from billing_client.entitlements import Decision, EntitlementClient, Entitlements, FailMode

__all__ = [
    "CALLER_METADATA_KEY",
    "DEFAULT_TIMEOUTS",
    "Credentials",
    "Decision",
    "EntitlementClient",
    "Entitlements",
    "FailMode",
    "aio_channel",
    "channel_options",
    "sync_channel",
]
