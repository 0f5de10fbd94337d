"""Running a process's main coroutine on the event loop its settings name.

``billing-service serve`` (``BILLING_EVENT_LOOP``) and ``billing-gateway``
(``GATEWAY_EVENT_LOOP``) both take ``uvloop`` (the default: less CPU per call
and per delivery, measured in docs/performance.md) or ``asyncio``::

    run(serve(settings), settings.event_loop)
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import uvloop

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T], event_loop: str) -> T:
    """Run ``main`` to completion on uvloop, or on the standard library's loop for "asyncio"."""
    if event_loop == "uvloop":
        return uvloop.run(main)
    return asyncio.run(main)
