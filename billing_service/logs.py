"""Process-wide logging setup."""

from __future__ import annotations

import logging
import sys


def configure(level: str) -> None:
    """Log to stderr at ``level`` (an unknown level falls back to INFO)."""
    logging.basicConfig(
        stream=sys.stderr,
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
