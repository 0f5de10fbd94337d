"""A private ``redis-server`` on a loopback port, for tests and benchmarks.

It keeps nothing on disk, so stopping it loses its data, as a crashed Redis
without persistence would::

    with RedisServer() as redis_server:
        use(redis_server.url)
        redis_server.stop()   # simulate an outage
        redis_server.start()  # back on the same port, empty

redis-server cannot bind port 0 and report the port it got (``--port 0``
means "no TCP"), and a restart must come back on the same URL, so its port is
picked here once with ``free_port``. It starts through the project's one
launcher (``ListeningProcess``), ready when it logs that it accepts
connections.
"""

from __future__ import annotations

from devtools.processes import ListeningProcess, free_port

_READY = "Ready to accept connections"

__all__ = ["RedisServer", "free_port"]


class RedisServer(ListeningProcess):
    """A redis-server this process owns; it can be stopped and started again."""

    name = "redis-server"

    def __init__(self, ready_timeout: float = 10.0) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        super().__init__(
            [
                *("--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no"),
            ],
            {},
            ready_timeout=ready_timeout,
            program=("redis-server",),
        )

    def parse_ready(self, line: str) -> str | None:
        """redis-server logs readiness on stdout; it listens where it was told to."""
        return f"127.0.0.1:{self.port}" if _READY in line else None
