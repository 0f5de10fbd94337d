"""Run inside a venv holding only the billing-client wheel: call a running service with it.

Usage: python installed_check.py TARGET USER_ID. Reads BILLING_SERVICE_TOKEN
like any caller. Prints one JSON object with what it saw; exits non-zero on
any failure. Imports nothing from the server's repository.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys

from billing_client import Credentials, EntitlementClient, aio_channel
from billing_client.v1 import billing_pb2 as pb
from billing_client.v1 import billing_pb2_grpc as pb_grpc


async def main(target: str, user_id: str) -> dict[str, object]:
    """Ask the service through the stubs and through EntitlementClient."""
    credentials = Credentials.from_env()
    async with aio_channel(target, credentials) as channel:
        billing = pb_grpc.BillingServiceStub(channel)
        subscription = await billing.GetSubscription(
            pb.GetSubscriptionRequest(user_id=user_id), metadata=credentials.metadata("client-ci")
        )
    async with EntitlementClient(target, caller="client-ci", credentials=credentials) as client:
        live = await client.wait_live(20)
        first = await client.check(user_id, "priority_support")
        second = await client.check(user_id, "priority_support")
    return {
        "tier": subscription.subscription.tier,
        "live": live,
        "first": [first.allowed, first.tier, first.source],
        "second_source": second.source,
        "server_packages": [
            name
            for name in ("billing_service", "generated", "peewee", "stripe", "aiohttp")
            if importlib.util.find_spec(name) is not None
        ],
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2]))))
