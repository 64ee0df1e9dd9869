"""Scratch databases for the benchmarks, on the configured server (the embedded one by
default), created migrated and dropped at the end."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql

from pipelines import settings
from pipelines.warehouse.connection import connect
from pipelines.warehouse.migrations import migrate


def _admin() -> str:
    return settings.with_database(settings.database_url(), "postgres")


def drop_database(name: str) -> None:
    with psycopg.connect(_admin(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def blank_database(name: str) -> str:
    """A new, empty database `name` (an old one of that name is dropped first)."""
    drop_database(name)
    with psycopg.connect(_admin(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return settings.with_database(settings.database_url(), name)


def fresh_database(name: str) -> str:
    """A new, migrated database `name` (an old one of that name is dropped first)."""
    url = blank_database(name)
    with connect(url) as conn:
        migrate(conn)
    return url


@contextmanager
def dropped_at_exit(*names: str) -> Iterator[None]:
    """Drop these databases when the block ends, however it ends."""
    try:
        yield
    finally:
        for name in names:
            drop_database(name)
