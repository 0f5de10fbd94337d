"""Python's cyclic garbage collector, set for a long-running server.

Two settings, applied once start-up is done (``settle_after_start_up``):

* ``gc.freeze()`` moves every object alive then (modules, classes, protobuf
  descriptors, settings, the SDKs) into a permanent generation that no
  collection walks again. Without it each full collection walks all of them:
  11 to 38 ms with the event loop stopped, in the gateway on the renewal
  bench (docs/performance.md).
* The youngest generation is collected after ``YOUNG_THRESHOLD`` net
  allocations of tracked objects instead of Python's default 700. A request
  allocates and frees hundreds of them (a parsed payload, its rows and
  messages), so at 700 a collection started in the middle of nearly every
  few requests and walked their live objects; at 10,000 it starts when that
  many have outlived their requests. Cyclic garbage waits longer to be
  freed, a few MB at most.
"""

from __future__ import annotations

import gc

# Net tracked allocations between collections of the youngest generation.
YOUNG_THRESHOLD = 10_000


def settle_after_start_up() -> None:
    """Freeze what start-up built and collect the youngest generation less often."""
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, older, oldest)
