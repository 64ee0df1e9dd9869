"""An operator's decision on a held day: accept (publish its held rows) or reject them.

A held day's rows wait in `held_points` and `held_metadata` (see partition_load). Accepting
publishes them in one transaction, exactly as a passing load would have, without reading the
drops again; rejecting discards them. Either decision is kept in `held_loads` with who made
it and when.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from datetime import date, datetime

import psycopg
from psycopg.rows import dict_row

from pipelines import settings
from pipelines.warehouse.partition_load import lock_day
from pipelines.warehouse.retention import share_writes_lock
from pipelines.warehouse.sqlfiles import load_sql


class ReviewError(RuntimeError):
    """A decision that cannot be made (no held load, or already decided)."""


@dataclass(frozen=True)
class HeldLoad:
    """A held load of a day and what became of it."""

    day: date
    state: str
    failed_check: str
    check_value: float | None
    threshold: float | None
    rows_read: int
    rows_stored: int
    rows_quarantined: int
    duplicates: int
    held_at: datetime
    decided_by: str | None
    decided_at: datetime | None


def operator_name() -> str:
    """Who decides: FLIGHTS_OPERATOR, else the login name."""
    return settings.operator() or getpass.getuser()


def held_load(conn: psycopg.Connection, day: date) -> HeldLoad | None:
    """The day's latest held load (any state), or None."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(load_sql("review/held_load"), {"day": day}).fetchone()
    if row is None:
        return None
    return HeldLoad(
        day=row["partition_day"],
        state=row["state"],
        failed_check=row["failed_check"],
        check_value=row["check_value"],
        threshold=row["threshold"],
        rows_read=row["rows_read"],
        rows_stored=row["rows_stored"],
        rows_quarantined=row["rows_quarantined"],
        duplicates=row["duplicates"],
        held_at=row["held_at"],
        decided_by=row["decided_by"],
        decided_at=row["decided_at"],
    )


def require_held(conn: psycopg.Connection, day: date) -> HeldLoad:
    """The day's held load, still waiting for a decision (else a ReviewError saying why)."""
    held = held_load(conn, day)
    if held is None:
        raise ReviewError(
            f"{day} has no held load to decide on (`flights quarantine --day {day}` shows its "
            "rejects)"
        )
    if held.state != "held":
        raise ReviewError(
            f"{day} was already {held.state} by {held.decided_by} at "
            f"{held.decided_at:%Y-%m-%d %H:%M} UTC; re-run it with `flights ingest --from {day}` "
            "to load it again"
        )
    return held


def accept(conn: psycopg.Connection, day: date, by: str) -> HeldLoad:
    """Publish the day's held rows in one transaction; returns the load as accepted."""
    with conn.transaction():
        lock_day(conn, day)
        share_writes_lock(conn)
        require_held(conn, day)
        conn.execute(load_sql("ingest/create_stage"))
        conn.execute(load_sql("review/stage_held_points"), {"day": day})
        conn.execute(load_sql("ingest/upsert_stage"))
        with conn.cursor(row_factory=dict_row) as cur:
            metadata = cur.execute(load_sql("review/held_metadata"), {"day": day}).fetchall()
            cur.executemany(load_sql("ingest/upsert_metadata"), metadata)
        conn.execute(load_sql("ingest/publish_quarantine"), {"day": day})
        conn.execute(load_sql("review/accept_ledger"), {"day": day, "by": by})
        conn.execute(load_sql("ingest/discard_held"), {"day": day})
        decided = held_load(conn, day)
    assert decided is not None
    return decided


def reject(conn: psycopg.Connection, day: date, by: str) -> HeldLoad:
    """Discard the day's held rows; the published state of the day stays as it is."""
    with conn.transaction():
        lock_day(conn, day)
        require_held(conn, day)
        conn.execute(load_sql("ingest/discard_held"), {"day": day})
        conn.execute(load_sql("review/reject"), {"day": day, "by": by})
        decided = held_load(conn, day)
    assert decided is not None
    return decided
