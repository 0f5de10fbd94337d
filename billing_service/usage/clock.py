"""Where usage metering reads "now".

Production reads the system clock. ``BILLING_TEST_CLOCK_FILE`` (test-only)
names a file holding unix seconds that replaces it, re-read on every call, so a
test can move a running service across a period boundary.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from billing_service.storage.models import utcnow

Clock = Callable[[], datetime]


def file_clock(path: Path) -> Clock:
    """A clock reading unix seconds from ``path``; the system clock while it is missing."""

    def now() -> datetime:
        try:
            seconds = float(path.read_text(encoding="utf-8").strip())
        except (OSError, ValueError):
            return utcnow()
        return datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None)

    return now


def make_clock(test_clock_file: str) -> Clock:
    """The system clock, or the test clock file when one is configured."""
    return file_clock(Path(test_clock_file)) if test_clock_file else utcnow
