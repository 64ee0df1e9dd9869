"""Data-quality queries over what a partition stored."""

from __future__ import annotations

from datetime import date

import psycopg

from pipelines.warehouse.sqlfiles import load_sql


def duplicate_keys(conn: psycopg.Connection, day: date) -> int:
    """Keys stored more than once in the window the day's load touched (0 when unloaded)."""
    row = conn.execute(load_sql("ingest/duplicate_keys"), {"day": day}).fetchone()
    return int(row[0]) if row else 0


def known_fingerprints(conn: psycopg.Connection) -> dict[date, set[str]]:
    """Each day's fingerprints of the drops it was loaded from (published or held)."""
    known: dict[date, set[str]] = {}
    for day, fingerprint in conn.execute(load_sql("ingest/known_fingerprints")):
        known.setdefault(day, set()).add(fingerprint)
    return known
