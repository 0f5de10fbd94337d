"""The cyclic collector's settings for a long-running server (billing_service/collector.py)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from billing_service.collector import YOUNG_THRESHOLD, settle_after_start_up


@pytest.fixture
def saved_threshold() -> Iterator[tuple[int, int, int]]:
    threshold = gc.get_threshold()
    yield threshold
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_start_up_objects_are_frozen_and_young_collections_are_rarer(
    saved_threshold: tuple[int, int, int],
) -> None:
    gc.unfreeze()
    settle_after_start_up()

    assert gc.get_freeze_count() > 0
    young, older, oldest = gc.get_threshold()
    assert young == YOUNG_THRESHOLD > saved_threshold[0]
    assert (older, oldest) == saved_threshold[1:]
