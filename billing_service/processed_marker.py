"""The Redis key that says "this event's transaction committed", shared with the gateway.

The service writes it after each event's commit, with the release of the
customer lock the event held or shared (locks.py), and reads it to
skip work on redeliveries; a gateway given the same Redis reads it to answer
redeliveries without a forward (webhook_gateway/markers.py). This module
imports nothing, so the gateway gets the key without the service's Redis
machinery::

    marker_key("evt_1")  # "billing:event:evt_1"
"""

from __future__ import annotations

MARKER_PREFIX = "billing:event:"


def marker_key(event_id: str) -> str:
    """The processed marker's key of ``event_id``."""
    return MARKER_PREFIX + event_id
