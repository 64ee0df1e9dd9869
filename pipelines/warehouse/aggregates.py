"""Keeps the aggregates of flight history current over the windows the pipeline writes.

Readers see `flight_minutes`, `flight_hours`, `flight_days` and `traffic_hours` with the same
columns on both TimescaleDB editions (sql/migrations/003_aggregates.*.sql, 014_flight_hours.*):
continuous aggregates refreshed by `refresh_continuous_aggregate` where the license is
`timescale`, rollup tables recomputed here where it is `apache`.

Every refresh covers whole UTC days and stops at the raw horizon, the instant below which the
cleaner dropped raw points: recomputing a window from raw data that is gone would erase its
aggregates (a continuous aggregate's refresh does exactly that after `drop_chunks`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import psycopg
from psycopg import sql

from pipelines.warehouse.editions import edition
from pipelines.warehouse.sqlfiles import load_sql

DAY = timedelta(days=1)
# First TimescaleDB release whose refresh_continuous_aggregate takes `options`.
UNBATCHED_REFRESH_SINCE = (2, 21)

# Two-integer advisory lock keys; the class keeps them apart from other users of the server.
LOCK_CLASS = 0x666C6967
MAINTENANCE_LOCK = 1  # refreshes and the cleaner: one at a time
WRITES_LOCK = 2  # writers of flight_data share it; the cleaner takes it alone


@dataclass(frozen=True)
class Rollup:
    """An aggregate, its time column, and (Apache edition) the function computing a window."""

    name: str
    time_column: str
    between: str


# Finer first: the coarser ones are built from flight_minutes.
AGGREGATES = (
    Rollup("flight_minutes", "bucket", "flight_minutes_between"),
    Rollup("flight_hours", "hour", "flight_hours_between"),
    Rollup("flight_days", "day", "flight_days_between"),
    Rollup("traffic_hours", "bucket", "traffic_hours_between"),
)


def present_aggregates(conn: psycopg.Connection) -> tuple[Rollup, ...]:
    """The aggregates of AGGREGATES this database has, finer first (a database migrated to an
    older version, as upgrade tests build, lacks the later ones)."""
    rows = conn.execute(
        load_sql("aggregates/present_aggregates"), {"names": [a.name for a in AGGREGATES]}
    ).fetchall()
    present = {row[0] for row in rows}
    return tuple(a for a in AGGREGATES if a.name in present)


def utc_midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


@dataclass(frozen=True)
class Window:
    """A half-open time range [start, end), timezone-aware."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("window bounds must be timezone-aware")
        if self.end <= self.start:
            raise ValueError(f"empty window: {self.start} .. {self.end}")

    @classmethod
    def of_days(cls, first: date, end: date) -> Window:
        """The UTC days first .. end (exclusive)."""
        return cls(utc_midnight(first), utc_midnight(end))

    def whole_days(self) -> Window:
        """The smallest run of whole UTC days that covers this window."""
        first = self.start.astimezone(UTC).date()
        last = (self.end - timedelta(microseconds=1)).astimezone(UTC).date()
        return Window.of_days(first, last + DAY)

    def above(self, horizon: datetime | None) -> Window | None:
        """The part of this window at or after horizon (None when nothing is left)."""
        if horizon is None or horizon <= self.start:
            return self
        if horizon >= self.end:
            return None
        return Window(horizon, self.end)

    @property
    def days(self) -> tuple[date, date]:
        """First day and end day (exclusive) of a window of whole UTC days."""
        return self.start.astimezone(UTC).date(), self.end.astimezone(UTC).date()

    def __str__(self) -> str:
        return f"{self.start.isoformat()} .. {self.end.isoformat()}"


@dataclass(frozen=True)
class RefreshReport:
    """What a refresh was asked for and what it recomputed (None: all below the horizon)."""

    edition: str
    requested: Window
    refreshed: Window | None
    raw_horizon: datetime | None
    seconds: float

    @property
    def below_horizon(self) -> Window | None:
        """The requested part left alone because its raw data was dropped."""
        if self.raw_horizon is None or self.raw_horizon <= self.requested.start:
            return None
        return Window(self.requested.start, min(self.raw_horizon, self.requested.end))


@dataclass(frozen=True)
class WindowTotals:
    raw_points: int
    minute_points: int
    minute_rows: int


def require_autocommit(conn: psycopg.Connection) -> None:
    """Refreshes and drops manage their own transactions (a continuous aggregate's refresh
    cannot run inside one), so they need an autocommit connection."""
    if not conn.autocommit:
        raise ValueError("aggregate refreshes and retention need an autocommit connection")


@contextmanager
def advisory_lock(conn: psycopg.Connection, key: int) -> Iterator[None]:
    """A session-level advisory lock held for the block (re-entrant within the session)."""
    params = {"lock_class": LOCK_CLASS, "lock_key": key}
    conn.execute(load_sql("aggregates/advisory_lock"), params)
    try:
        yield
    finally:
        if not conn.closed:
            conn.execute(load_sql("aggregates/advisory_unlock"), params)


def raw_dropped_before(conn: psycopg.Connection) -> datetime | None:
    """The instant below which the cleaner dropped raw flight_data (None: nothing yet)."""
    row = conn.execute(load_sql("aggregates/raw_horizon")).fetchone()
    return row[0] if row else None


def partition_window(conn: psycopg.Connection, day: date) -> Window | None:
    """The window a loaded partition's aggregates need refreshing over: the time range its
    points span (a refresh rounds it out to whole days, so a day whose points all lie in it
    is recomputed once, and a neighbour only when the load wrote points there). A partition
    the ingest has no record of gets its own day; one that stored no points gets None."""
    row = conn.execute(load_sql("aggregates/partition_window"), {"day": day}).fetchone()
    if row is None:
        return Window.of_days(day, day + DAY)
    first, last = row
    if first is None:
        return None
    # Half-open: the last point belongs in the window.
    return Window(first, last + timedelta(microseconds=1))


def refresh_aggregates(
    conn: psycopg.Connection,
    start: datetime,
    end: datetime,
    *,
    realtime: bool | None = None,
) -> RefreshReport:
    """Recompute every aggregate over the whole UTC days covering [start, end), above the raw
    horizon. `realtime` (licensed edition) turns real-time aggregation on or off first; the
    rollups of the Apache edition only ever hold what was refreshed."""
    require_autocommit(conn)
    requested = Window(start, end).whole_days()
    began = time.perf_counter()
    with advisory_lock(conn, MAINTENANCE_LOCK):
        name = edition(conn)
        horizon = raw_dropped_before(conn)
        window = requested.above(horizon)
        if name == "timescale":
            if realtime is not None:
                _set_realtime(conn, realtime)
            if window is not None:
                _refresh_continuous(conn, window)
        elif window is not None:
            _refresh_rollups(conn, window)
    return RefreshReport(name, requested, window, horizon, time.perf_counter() - began)


def stale_windows(conn: psycopg.Connection, before: datetime) -> list[Window]:
    """Apache edition: the runs of consecutive days below `before` and at or above the raw
    horizon whose rollups miss points written since their last refresh."""
    horizon = raw_dropped_before(conn)
    rows = conn.execute(
        load_sql("aggregates/stale_days"),
        {
            "first_day": horizon.astimezone(UTC).date() if horizon else None,
            "end_day": before.astimezone(UTC).date(),
        },
    ).fetchall()
    runs: list[list[date]] = []
    for (day,) in rows:
        if runs and runs[-1][1] == day:
            runs[-1][1] = day + DAY
        else:
            runs.append([day, day + DAY])
    return [Window.of_days(first, end) for first, end in runs]


def window_totals(conn: psycopg.Connection, window: Window) -> WindowTotals:
    """Raw points in a window against the points the per-minute aggregate counts there."""
    row = conn.execute(
        load_sql("aggregates/window_totals"), {"start": window.start, "end": window.end}
    ).fetchone()
    assert row is not None
    return WindowTotals(*row)


def timescaledb_version(conn: psycopg.Connection) -> tuple[int, ...]:
    """The installed TimescaleDB release as numbers, `(2, 28, 3)`."""
    row = conn.execute(load_sql("aggregates/timescaledb_version")).fetchone()
    if row is None:
        raise RuntimeError("TimescaleDB is not installed in this database: run `flights migrate`")
    return tuple(int(part) for part in re.findall(r"\d+", str(row[0]))[:3])


def refresh_statement(version: tuple[int, ...]) -> str:
    """Where the server takes refresh options (2.21+), batching is turned off: 2.28 batches a
    manual refresh and can drop the last bucket of a batch (upstream #10221); releases before
    2.21 have no options and never batch a manual refresh."""
    if version >= UNBATCHED_REFRESH_SINCE:
        return "aggregates/refresh_continuous_aggregate_unbatched"
    return "aggregates/refresh_continuous_aggregate"


def _refresh_continuous(conn: psycopg.Connection, window: Window) -> None:
    statement = load_sql(refresh_statement(timescaledb_version(conn)))
    for aggregate in present_aggregates(conn):
        conn.execute(
            statement, {"aggregate": aggregate.name, "start": window.start, "end": window.end}
        )


def _refresh_rollups(conn: psycopg.Connection, window: Window) -> None:
    """Replace the rollup rows of the window in one transaction. The stale marks go first, so
    that points committed while this runs keep theirs for the next refresh."""
    first_day, end_day = window.days
    params = {"start": window.start, "end": window.end}
    with conn.transaction():
        conn.execute(
            load_sql("aggregates/clear_stale_days"), {"first_day": first_day, "end_day": end_day}
        )
        for rollup in present_aggregates(conn):
            names = {
                "rollup": sql.Identifier(rollup.name),
                "time_column": sql.Identifier(rollup.time_column),
                "between": sql.Identifier(rollup.between),
            }
            conn.execute(load_sql("aggregates/delete_rollup_window").format(**names), params)
            conn.execute(load_sql("aggregates/insert_rollup_window").format(**names), params)


def _set_realtime(conn: psycopg.Connection, realtime: bool) -> None:
    rows = conn.execute(
        load_sql("aggregates/materialized_only"),
        {"aggregates": [a.name for a in AGGREGATES]},
    ).fetchall()
    for view_name, materialized_only in rows:
        if materialized_only == realtime:
            conn.execute(
                load_sql("aggregates/set_materialized_only").format(
                    aggregate=sql.Identifier(view_name),
                    materialized_only=sql.Literal(not realtime),
                )
            )
