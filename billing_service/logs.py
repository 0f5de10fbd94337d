"""Process-wide logging: one JSON object per line, with secrets scrubbed.

Fields beyond the message come from ``extra=`` (event_id, user_id, rpc,
caller, duration_ms, ...), plus ``trace_id`` and ``span_id`` (W3C hex) of the
OpenTelemetry span current when the record is made, when there is one.
Every configured secret (Stripe key, webhook secrets, tokens) is replaced by
``[redacted]`` wherever it would appear.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from datetime import UTC, datetime

from opentelemetry import trace

CONTEXT_FIELDS = ("event_id", "event_type", "user_id", "rpc", "caller", "code", "duration_ms")


class ScrubbingFormatter(logging.Formatter):
    """Formats with ``inner``, then replaces each known secret with ``[redacted]``.

    Scrubbing the finished line covers the message, its arguments, extra
    fields and tracebacks alike.
    """

    def __init__(self, inner: logging.Formatter, secrets: Iterable[str]) -> None:
        super().__init__()
        self._inner = inner
        # Short strings would redact innocent words; real secrets are long.
        self._secrets = tuple(s for s in secrets if len(s) >= 8)

    def format(self, record: logging.LogRecord) -> str:
        """The inner formatter's line, scrubbed."""
        line = self._inner.format(record)
        for secret in self._secrets:
            line = line.replace(secret, "[redacted]")
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per record."""

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record`` as JSON with its context fields."""
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        # The span current where the record was made (none unless tracing is on).
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            entry["trace_id"] = format(span.trace_id, "032x")
            entry["span_id"] = format(span.span_id, "016x")
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure(level: str, secrets: Iterable[str] = (), fmt: str = "json") -> None:
    """Log to stderr at ``level`` in ``fmt`` (json or text), scrubbing ``secrets``."""
    handler = logging.StreamHandler(sys.stderr)
    inner = (
        logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
        if fmt == "text"
        else JsonFormatter()
    )
    handler.setFormatter(ScrubbingFormatter(inner, secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
