"""Scratch databases for the benchmarks, on the configured server (the embedded one by
default), created migrated and dropped at the end."""

from __future__ import annotations

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


def fresh_database(name: str) -> str:
    """A new, migrated database `name` (an old one of that name is dropped first)."""
    drop_database(name)
    with psycopg.connect(_admin(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = settings.with_database(settings.database_url(), name)
    with connect(url) as conn:
        migrate(conn)
    return url
