"""Waiting for something that happens asynchronously: the one poll loop of tests and benches.

``wait_until`` (threads) and ``wait_until_async`` (asyncio) call ``probe``
until ``accept`` holds for its value and return that value. After ``within``
seconds they raise ``WaitTimeout``, naming what they waited for and the last value seen,
so a caller can never mistake "gave up" for "done"::

    sub = wait_until("tier pro", lambda: stub.GetSubscription(req).subscription,
                     lambda s: s.tier == "pro")
    tiers = await wait_until_async("both replicas back", both_tiers, lambda t: t == ["pro"] * 2)

``probe`` exceptions listed in ``ignore`` count as "not yet" (a server still
starting refuses connections); the last one is reported on timeout.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

INTERVAL = 0.05


class WaitTimeout(AssertionError):
    """What was awaited did not happen in time (an assertion failure in a test)."""

    def __init__(self, what: str, timeout: float, last: object) -> None:
        super().__init__(f"timed out after {timeout:g}s waiting for {what}; last value: {last!r}")
        self.what = what
        self.last = last


def _truthy(value: object) -> bool:
    return bool(value)


def wait_until(
    what: str,
    probe: Callable[[], T],
    accept: Callable[[T], bool] = _truthy,
    *,
    within: float = 30.0,
    interval: float = INTERVAL,
    ignore: tuple[type[Exception], ...] = (),
) -> T:
    """Call ``probe`` until ``accept(value)``; return that value or raise ``WaitTimeout``."""
    deadline = time.monotonic() + within
    last: object = None
    while True:
        try:
            value = probe()
        except ignore as exc:
            last = exc
        else:
            if accept(value):
                return value
            last = value
        if time.monotonic() > deadline:
            raise WaitTimeout(what, within, last)
        time.sleep(interval)


async def wait_until_async(
    what: str,
    probe: Callable[[], Awaitable[T]],
    accept: Callable[[T], bool] = _truthy,
    *,
    within: float = 30.0,
    interval: float = INTERVAL,
    ignore: tuple[type[Exception], ...] = (),
) -> T:
    """``wait_until`` for an awaitable ``probe``, sleeping on the running event loop."""
    deadline = time.monotonic() + within
    last: object = None
    while True:
        try:
            value = await probe()
        except ignore as exc:
            last = exc
        else:
            if accept(value):
                return value
            last = value
        if time.monotonic() > deadline:
            raise WaitTimeout(what, within, last)
        await asyncio.sleep(interval)
