"""Fixtures of the unit tests that run statements on real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from billing_service.storage.database import open_database
from billing_service.storage.deferred import DeferringPostgresqlDatabase
from billing_service.storage.models import database as database_proxy


@pytest.fixture
def pg(shared_postgres: str) -> Iterator[DeferringPostgresqlDatabase]:
    """The migrated database, bound as the service binds it, its customers emptied first."""
    database = open_database(shared_postgres)
    assert isinstance(database, DeferringPostgresqlDatabase)
    previous = database_proxy.obj
    database_proxy.initialize(database)
    with database.connection_context():
        database.execute_sql('DELETE FROM "customer"')
    database.connect()
    yield database
    database.close_all()
    database_proxy.initialize(previous)  # later tests find the binding they had


@pytest.fixture
def sent(pg: DeferringPostgresqlDatabase) -> Iterator[list[str]]:
    """The SQL of every round trip peewee sends from here on (its query hooks)."""
    texts: list[str] = []
    pg.query_hooks.append(lambda event: texts.append(event.sql))
    yield texts
    pg.query_hooks.clear()
