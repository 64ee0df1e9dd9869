"""Data-quality queries over what a partition stored."""

from __future__ import annotations

from datetime import date

import psycopg

from pipelines.warehouse.sqlfiles import load_sql


def key_constraint(conn: psycopg.Connection) -> str | None:
    """The name of the constraint keeping (flight_id, timestamp) unique, None when missing."""
    row = conn.execute(load_sql("ingest/key_constraint")).fetchone()
    return str(row[0]) if row else None


def aircraft_instants_twice(conn: psycopg.Connection, day: date) -> int:
    """Aircraft positions stored under two flights in the window the day's load touched: the
    primary key cannot see them (the flight ids differ)."""
    row = conn.execute(load_sql("ingest/aircraft_instants_twice"), {"day": day}).fetchone()
    return int(row[0]) if row else 0


def known_fingerprints(conn: psycopg.Connection) -> dict[date, set[str]]:
    """Each day's fingerprints of the drops it was loaded from (published or held)."""
    known: dict[date, set[str]] = {}
    for day, fingerprint in conn.execute(load_sql("ingest/known_fingerprints")):
        known.setdefault(day, set()).add(fingerprint)
    return known
