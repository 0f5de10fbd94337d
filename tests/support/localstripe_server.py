"""Runs the PyPI ``localstripe`` fake on 127.0.0.1 with its own state file.

localstripe itself binds every interface and keeps its state in a fixed
/tmp file shared by all its instances; tests need neither. This launcher
points its store at ``STATE_FILE`` and listens on 127.0.0.1:PORT (0: a
free port), printing ``LOCALSTRIPE_LISTENING http://127.0.0.1:PORT``.

    python -m tests.support.localstripe_server PORT STATE_FILE
"""

from __future__ import annotations

import asyncio
import pickle
import signal
import sys
from pathlib import Path
from typing import Any

from aiohttp import web


def _use_state_file(path: Path) -> None:
    from localstripe import resources

    def dump(store: Any) -> None:
        with path.open("wb") as f:
            pickle.dump(dict(store), f, protocol=pickle.HIGHEST_PROTOCOL)

    def load(store: Any) -> None:
        if path.exists():
            with path.open("rb") as f:
                store.update(pickle.load(f))  # noqa: S301 - our own test state file

    resources.Store.dump_to_disk = dump
    resources.Store.try_load_from_disk = load
    resources.store.try_load_from_disk()


async def _serve(port: int) -> None:
    from localstripe.server import app

    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    bound = runner.addresses[0][1]
    print(f"LOCALSTRIPE_LISTENING http://127.0.0.1:{bound}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


def main() -> None:
    """Entry point: PORT STATE_FILE."""
    port, state_file = int(sys.argv[1]), Path(sys.argv[2])
    _use_state_file(state_file)
    asyncio.run(_serve(port))


if __name__ == "__main__":
    main()
