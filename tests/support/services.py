"""Locating PostgreSQL and Redis for tests, and giving each test its own database.

TEST_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/test) is an
admin connection used to create one throwaway database per test module;
TEST_REDIS_URL (default redis://127.0.0.1:6379/15) is flushed per use.
When they are unreachable the tests that need them skip locally, and fail
when CI is set.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import psycopg2
import pytest
import redis

POSTGRES_ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def unavailable(what: str, exc: Exception) -> None:
    """Skip locally, fail in CI, when a required backing service is unreachable."""
    message = f"{what} unreachable ({type(exc).__name__}: {exc}); see README 'Running the tests'"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def _admin_connection() -> psycopg2.extensions.connection:
    conn = psycopg2.connect(POSTGRES_ADMIN_URL, connect_timeout=3)
    conn.autocommit = True
    return conn


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """Create an empty database, yield its URL, drop it afterwards."""
    try:
        admin = _admin_connection()
    except psycopg2.OperationalError as exc:
        unavailable("PostgreSQL", exc)
        raise
    name = f"billing_test_{uuid.uuid4().hex[:12]}"
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(POSTGRES_ADMIN_URL)
    try:
        yield parts._replace(path=f"/{name}").geturl()
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def redis_url() -> str:
    """The test Redis URL after checking it answers, with its database flushed."""
    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
        client.flushdb()
        client.close()
    except redis.RedisError as exc:
        unavailable("Redis", exc)
    return REDIS_URL
