"""Applies `sql/migrations/*.sql` in order, once each, recording what it applied.

A migration may come in edition variants, `NNN_name.apache.sql` and `NNN_name.timescale.sql`:
the Apache edition of TimescaleDB refuses continuous aggregates, so it gets plain rollup
tables with the same names. Two processes migrating at once serialise on an advisory lock.

A continuous aggregate can only be filled outside a transaction: a migration that creates one
again over existing data says so with the line `-- after commit: refresh aggregates`, and the
aggregates are refreshed over the stored raw points once it has committed.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import psycopg

from pipelines.settings import SQL_DIR
from pipelines.warehouse.aggregates import refresh_aggregates
from pipelines.warehouse.editions import edition
from pipelines.warehouse.sqlfiles import load_sql

MIGRATIONS_DIR = SQL_DIR / "migrations"
_NAME = re.compile(
    r"^(?P<version>\d{3})_(?P<name>[a-z0-9_]+?)(?:\.(?P<edition>apache|timescale))?\.sql$"
)
# Any constant works; it only has to be the same in every process that migrates.
_LOCK_KEY = 0x666C69676874
_REFRESH_MARKER = "-- after commit: refresh aggregates"


class MigrationError(RuntimeError):
    """The database cannot take the schema; the message says why."""


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    path: Path

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()

    @property
    def refreshes_aggregates(self) -> bool:
        return _REFRESH_MARKER in self.path.read_text().splitlines()


def pending_for(edition_name: str, applied: set[str]) -> list[Migration]:
    chosen: dict[str, Migration] = {}
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise MigrationError(f"migration file name not understood: {path.name}")
        if match["edition"] not in (None, edition_name):
            continue
        earlier = chosen.get(match["version"])
        if earlier is not None:
            raise MigrationError(
                f"two migrations share number {match['version']} for this edition: "
                f"{earlier.path.name} and {path.name}; renumber one"
            )
        chosen[match["version"]] = Migration(match["version"], match["name"], path)
    return [m for v, m in sorted(chosen.items()) if v not in applied]


def migrate(conn: psycopg.Connection, target: str | None = None) -> list[Migration]:
    """Bring the schema up to date (or up to version `target`) in one transaction, then
    refresh the aggregates a migration created again; returns the migrations applied."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        available = conn.execute(
            "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"
        ).fetchone()
        if not available:
            raise MigrationError(
                "this database server has no TimescaleDB extension; use the embedded "
                "server (`flights db up`) or point FLIGHTS_DATABASE_URL at a TimescaleDB"
            )
        try:
            with conn.transaction():
                conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        except psycopg.Error as exc:
            raise MigrationError(f"TimescaleDB cannot be enabled on this database: {exc}") from exc
        conn.execute(load_sql("schema_migrations"))
        applied = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
        todo = [
            m for m in pending_for(edition(conn), applied) if target is None or m.version <= target
        ]
        for migration in todo:
            conn.execute(migration.path.read_text())
            conn.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                (migration.version, migration.name, migration.checksum),
            )
    if any(m.refreshes_aggregates for m in todo):
        _refresh_stored_points(conn)
    return todo


def _refresh_stored_points(conn: psycopg.Connection) -> None:
    """Refresh the aggregates over every stored raw point (the refresh stays above the raw
    horizon), in autocommit as a continuous aggregate's refresh needs."""
    first, last = conn.execute(load_sql("aggregates/raw_extent")).fetchone() or (None, None)
    conn.commit()
    if first is None:
        return
    autocommit = conn.autocommit
    conn.autocommit = True
    try:
        refresh_aggregates(conn, first, last + timedelta(microseconds=1))
    finally:
        conn.autocommit = autocommit
