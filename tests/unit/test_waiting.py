"""The one wait helper: returns the accepted value, raises with what it waited for on timeout."""

from __future__ import annotations

import itertools

import pytest

from devtools.waiting import WaitTimeout, wait_until, wait_until_async


def test_returns_the_first_accepted_value() -> None:
    counter = itertools.count()
    assert wait_until("three", lambda: next(counter), lambda n: n >= 3, interval=0) == 3


def test_raises_naming_what_it_waited_for_and_the_last_value() -> None:
    with pytest.raises(WaitTimeout, match=r"waiting for the answer; last value: 'no'"):
        wait_until("the answer", lambda: "no", lambda v: v == "yes", within=0.05)


def test_a_falsy_probe_value_is_not_done_by_default() -> None:
    with pytest.raises(WaitTimeout):
        wait_until("something", lambda: [], within=0.05)


def test_ignored_exceptions_count_as_not_yet_and_are_reported() -> None:
    attempts = itertools.count()

    def probe() -> str:
        if next(attempts) < 2:
            raise ConnectionError("refused")
        return "up"

    assert wait_until("up", probe, ignore=(ConnectionError,), interval=0) == "up"
    with pytest.raises(WaitTimeout, match="refused"):
        wait_until("up", _refuse, ignore=(ConnectionError,), within=0.05)


def test_other_exceptions_propagate() -> None:
    with pytest.raises(ConnectionError):
        wait_until("up", _refuse, within=5)


def _refuse() -> str:
    raise ConnectionError("refused")


async def test_async_variant_returns_and_raises() -> None:
    counter = itertools.count()

    async def probe() -> int:
        return next(counter)

    assert await wait_until_async("two", probe, lambda n: n == 2, interval=0) == 2
    with pytest.raises(WaitTimeout, match="never; last value: -1"):
        await wait_until_async("never", _minus_one, lambda n: n > 0, within=0.05)


async def _minus_one() -> int:
    return -1
