"""Calls of one event-loop turn sent as one (turn_batch.TurnBatch)."""

from __future__ import annotations

import asyncio

import pytest

from billing_service.turn_batch import TurnBatch


class Recorder:
    """A send that records each call's items and answers each item doubled."""

    def __init__(self) -> None:
        self.calls: list[list[int]] = []
        self.release = asyncio.Event()
        self.release.set()

    async def __call__(self, items: list[int]) -> list[int]:
        self.calls.append(items)
        await self.release.wait()
        return [item * 2 for item in items]


async def test_calls_of_one_turn_share_one_send_and_each_gets_its_own_result() -> None:
    send = Recorder()
    batch: TurnBatch[int, int] = TurnBatch(send)
    assert await asyncio.gather(*(batch(n) for n in (1, 2, 3))) == [2, 4, 6]
    assert send.calls == [[1, 2, 3]]
    assert batch.sends == 1


async def test_calls_of_later_turns_go_in_sends_of_their_own() -> None:
    send = Recorder()
    batch: TurnBatch[int, int] = TurnBatch(send)
    assert await batch(1) == 2
    assert list(await asyncio.gather(batch(2), batch(3))) == [4, 6]
    assert send.calls == [[1], [2, 3]]


async def test_a_failed_send_raises_in_every_caller_of_its_turn() -> None:
    async def failing(items: list[int]) -> list[int]:
        raise ConnectionError("redis went away")

    batch: TurnBatch[int, int] = TurnBatch(failing)
    results = await asyncio.gather(batch(1), batch(2), return_exceptions=True)
    assert [type(r) for r in results] == [ConnectionError, ConnectionError]


async def test_a_send_answering_too_few_results_fails_its_callers() -> None:
    async def short(items: list[int]) -> list[int]:
        return items[:1]

    batch: TurnBatch[int, int] = TurnBatch(short)
    with pytest.raises(ValueError, match="1 results for 2 calls"):
        await asyncio.gather(batch(1), batch(2))


async def test_a_cancelled_caller_leaves_the_others_alone_and_its_result_is_handed_over() -> None:
    send = Recorder()
    send.release.clear()
    handed: list[tuple[int, int]] = []
    batch: TurnBatch[int, int] = TurnBatch(
        send, abandoned=lambda item, got: handed.append((item, got))
    )
    leaving = asyncio.create_task(batch(1))
    staying = asyncio.create_task(batch(2))
    while not send.calls:
        await asyncio.sleep(0)
    leaving.cancel()
    send.release.set()
    assert await staying == 4
    with pytest.raises(asyncio.CancelledError):
        await leaving
    assert handed == [(1, 2)]
