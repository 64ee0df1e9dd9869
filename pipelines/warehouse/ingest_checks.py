"""Data-quality queries over what a partition stored."""

from __future__ import annotations

import psycopg

from pipelines.warehouse.sqlfiles import load_sql


def key_constraint(conn: psycopg.Connection) -> str | None:
    """The name of the constraint keeping (flight_id, timestamp) unique, None when missing."""
    row = conn.execute(load_sql("ingest/key_constraint")).fetchone()
    return str(row[0]) if row else None
