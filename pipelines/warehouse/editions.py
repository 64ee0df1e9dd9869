"""Which TimescaleDB edition a database runs: the migrations, refreshes, compression and
retention each take the path that edition allows."""

from __future__ import annotations

import psycopg


def edition(conn: psycopg.Connection) -> str:
    """`timescale` (continuous aggregates available) or `apache`."""
    row = conn.execute("SELECT current_setting('timescaledb.license', true)").fetchone()
    return "timescale" if row and row[0] == "timescale" else "apache"
