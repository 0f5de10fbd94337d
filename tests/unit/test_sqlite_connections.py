"""Every SQLite connection the service's database threads open is set up the same way."""

from __future__ import annotations

import asyncio
from pathlib import Path

from billing_service.storage.database import Database, migrate


def test_each_database_thread_gets_wal_and_a_small_page_cache(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'billing.db'}", workers=3)
    migrate(database.db)

    def pragmas() -> tuple[str, int, int]:
        read = database.db.execute_sql
        return (
            read("PRAGMA journal_mode").fetchone()[0],
            read("PRAGMA cache_size").fetchone()[0],
            read("PRAGMA busy_timeout").fetchone()[0],
        )

    async def on_every_thread() -> list[tuple[str, int, int]]:
        return list(await asyncio.gather(*(database.run(pragmas) for _ in range(12))))

    try:
        answers = asyncio.run(on_every_thread())
    finally:
        database.close()
    # 256 KiB per connection (negative: KiB), not SQLite's 2 MiB default.
    assert set(answers) == {("wal", -256, 10000)}
