"""The deadline of the RPC being handled, for the work it starts (database, Stripe).

grpc.aio cancels a handler when its caller's deadline passes, which stops it
at its next ``await``. What that does not cover, and this module does:

- a caller that sets no deadline: the call gets the server's default budget
  (BILLING_DEFAULT_DEADLINE_SECONDS), so no Stripe call or database work is
  started minutes after a caller that forgot its deadline;
- work queued behind others (the database thread pool): it is not started
  once the deadline has passed, however long it waited;
- a Stripe request is never started after the deadline, and one in flight
  is given only the time that remains.

The interceptor sets the deadline of the call's task (``begin``); the Stripe
client and the database check it (``check``) before starting anything.
"""

from __future__ import annotations

import asyncio
import time
import weakref

import grpc

from billing_service.errors import BillingError

# By task, not in a ContextVar: tasks a handler spawns (shared cache loads,
# notifications) would inherit a ContextVar and be cut short by one caller's
# deadline; they serve everyone and have no deadline of their own.
_deadlines: weakref.WeakKeyDictionary[asyncio.Task[object], float] = weakref.WeakKeyDictionary()


class DeadlineExceeded(BillingError):
    """The call's deadline passed before the work could start."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED


def begin(time_remaining: float | None, default_seconds: float | None) -> None:
    """Set the current task's deadline: the caller's, else ``default_seconds`` from now."""
    seconds = time_remaining if time_remaining is not None else default_seconds
    task = asyncio.current_task()
    if seconds is not None and task is not None:
        _deadlines[task] = time.monotonic() + seconds


def adopt(at: float | None) -> None:
    """Give the current task the deadline ``at`` (``time.monotonic()``; None: none).

    For a task a handler spawns to do part of its own call's work (one event
    of ApplyStripeEvents): spawned tasks have no deadline of their own.
    """
    task = asyncio.current_task()
    if at is not None and task is not None:
        _deadlines[task] = at


def deadline() -> float | None:
    """The current call's deadline on the ``time.monotonic()`` clock; None without one."""
    task = asyncio.current_task()
    return None if task is None else _deadlines.get(task)


def remaining() -> float | None:
    """Seconds left before the current call's deadline (may be negative); None without one."""
    at = deadline()
    return None if at is None else at - time.monotonic()


def check(what: str, at: float | None = None) -> None:
    """Raise DeadlineExceeded if the deadline (``at``, else the current one) has passed."""
    if at is None:
        at = deadline()
    if at is not None and time.monotonic() >= at:
        raise DeadlineExceeded(f"deadline exceeded before {what} started")
