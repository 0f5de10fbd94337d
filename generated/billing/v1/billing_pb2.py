"""Alias of ``billing_client.v1.billing_pb2``: the generated code belongs to the billing-client package.

The server and its tools import ``generated.billing.v1``; this keeps that
working without a second copy (``make proto`` writes into clients/python).
"""

from billing_client.v1.billing_pb2 import *  # noqa: F403
