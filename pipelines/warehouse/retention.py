"""Retention: raw points go after their horizon, their aggregates stay longer.

The cleaner for day D drops the raw `flight_data` chunks entirely before D minus the raw
retention with `drop_chunks`, a catalog operation that costs the same for a day of ten
thousand points as for one of ten million. It first makes the chunks older than the
compression age that stay small (pipelines/warehouse/columnstore.py): compressed on the
licensed edition, their indexes rebuilt compact on the Apache edition. Before
the drop, it brings the aggregates of the data
about to go up to date; after, it records the new raw horizon, below which no refresh reaches
again. Aggregate chunks past their own, longer retention and quarantined rows past theirs go
in the same transaction as the raw chunks, with the held loads (write-audit-publish) of days
past the raw retention: published, their points would be dropped anyway.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from functools import partial

import psycopg

from pipelines.warehouse.aggregates import (
    LOCK_CLASS,
    MAINTENANCE_LOCK,
    WRITES_LOCK,
    RefreshReport,
    Window,
    advisory_lock,
    present_aggregates,
    raw_dropped_before,
    refresh_aggregates,
    require_autocommit,
    stale_windows,
    utc_midnight,
)
from pipelines.warehouse.columnstore import (
    RawChunk,
    compact_chunk,
    compress_chunk,
    uncompacted_chunks,
    uncompressed_chunks,
)
from pipelines.warehouse.editions import edition
from pipelines.warehouse.sqlfiles import load_sql


class RetentionError(ValueError):
    """A retention policy the cleaner refuses; the message says why."""


@dataclass(frozen=True)
class RetentionPolicy:
    """How many days of each kind of data the cleaner keeps, and the least it may keep."""

    raw_days: int = 90
    aggregate_days: int = 730
    quarantine_days: int = 30
    raw_floor_days: int = 7
    compress_after_days: int = 7

    def __post_init__(self) -> None:
        if self.raw_floor_days < 1:
            raise RetentionError("the raw retention floor must be at least 1 day")
        if self.raw_days < self.raw_floor_days:
            raise RetentionError(
                f"raw retention of {self.raw_days} days is below the floor of "
                f"{self.raw_floor_days} days"
            )
        if self.aggregate_days < self.raw_days:
            raise RetentionError(
                f"aggregate retention ({self.aggregate_days} days) must be at least the raw "
                f"retention ({self.raw_days} days): aggregates outlive the points they summarise"
            )
        if self.quarantine_days < 1:
            raise RetentionError("quarantine retention must be at least 1 day")
        if self.compress_after_days < 1:
            raise RetentionError("raw days can be compressed after 1 day at the earliest")

    def raw_horizon(self, day: date) -> datetime:
        return utc_midnight(days_before(day, self.raw_days))

    def compress_horizon(self, day: date) -> datetime:
        return utc_midnight(days_before(day, self.compress_after_days))

    def aggregate_horizon(self, day: date) -> datetime:
        return utc_midnight(days_before(day, self.aggregate_days))

    def quarantine_before(self, day: date) -> date:
        return days_before(day, self.quarantine_days)


def days_before(day: date, days: int) -> date:
    """`days` days before `day`, or the first day a date holds when that is earlier: a
    retention reaching back further keeps everything (operators write "forever" as a very
    large number)."""
    return day - timedelta(days=days) if days <= (day - date.min).days else date.min


@dataclass(frozen=True)
class Chunk:
    """A chunk of a hypertable or continuous aggregate, as the catalog describes it."""

    relation: str
    name: str
    range_start: datetime
    range_end: datetime
    bytes: int
    rows_estimate: int | None  # the planner's estimate; None before the chunk was analysed


@dataclass(frozen=True)
class CleanReport:
    """What one cleaner run removed (or, in a dry run, would remove)."""

    day: date
    dry_run: bool
    edition: str
    raw_horizon: datetime
    aggregate_horizon: datetime
    quarantine_before: date
    raw_chunks: tuple[Chunk, ...]
    aggregate_chunks: tuple[Chunk, ...]
    quarantine_rows: int
    refreshed: tuple[RefreshReport, ...]
    seconds: float
    compressed_chunks: tuple[Chunk, ...] = ()  # licensed edition: raw chunks now compressed
    compacted_chunks: tuple[Chunk, ...] = ()  # Apache edition: raw chunks' indexes rebuilt
    held_loads: int = 0  # held loads of days past the raw retention, discarded

    @property
    def raw_bytes(self) -> int:
        return sum(c.bytes for c in self.raw_chunks)

    @property
    def raw_rows_estimate(self) -> int | None:
        estimates = [c.rows_estimate for c in self.raw_chunks]
        return None if None in estimates else sum(e for e in estimates if e is not None)

    @property
    def raw_range(self) -> Window | None:
        if not self.raw_chunks:
            return None
        return Window(
            min(c.range_start for c in self.raw_chunks), max(c.range_end for c in self.raw_chunks)
        )


def share_writes_lock(conn: psycopg.Connection) -> None:
    """For writers of flight_data, inside their write transaction: the cleaner then never
    refreshes and drops a range while points are being written into it."""
    conn.execute(
        load_sql("retention/share_writes_lock"),
        {"lock_class": LOCK_CLASS, "lock_key": WRITES_LOCK},
    )


def clean(
    conn: psycopg.Connection, day: date, policy: RetentionPolicy, *, dry_run: bool = False
) -> CleanReport:
    """Enforce retention as of `day`; a dry run only reports what would go.

    Running it again for the same day removes nothing more. Needs an autocommit connection.
    """
    require_autocommit(conn)
    began = time.perf_counter()
    raw_horizon = policy.raw_horizon(day)
    aggregate_horizon = policy.aggregate_horizon(day)
    quarantine_before = policy.quarantine_before(day)
    compress_horizon = policy.compress_horizon(day)
    name = edition(conn)
    report_for = partial(
        CleanReport,
        day,
        dry_run,
        name,
        raw_horizon,
        aggregate_horizon,
        quarantine_before,
        seconds=0.0,
    )
    if dry_run:
        row = conn.execute(
            load_sql("retention/count_quarantine"), {"before": quarantine_before}
        ).fetchone()
        held = conn.execute(
            load_sql("retention/count_held"), {"before": raw_horizon.date()}
        ).fetchone()
        report = report_for(
            raw_chunks=_chunks(conn, "flight_data", raw_horizon),
            aggregate_chunks=_aggregate_chunks(conn, aggregate_horizon, drop=False),
            quarantine_rows=row[0] if row else 0,
            refreshed=(),
            compressed_chunks=_settle(
                conn, uncompressed_chunks, None, raw_horizon, compress_horizon
            ),
            compacted_chunks=_settle(conn, uncompacted_chunks, None, raw_horizon, compress_horizon),
            held_loads=held[0] if held else 0,
        )
    else:
        with advisory_lock(conn, WRITES_LOCK), advisory_lock(conn, MAINTENANCE_LOCK):
            refreshed = _refresh_before_drop(conn, name, raw_horizon, aggregate_horizon)
            compressed = _settle(
                conn, uncompressed_chunks, compress_chunk, raw_horizon, compress_horizon
            )
            compacted = _settle(
                conn, uncompacted_chunks, compact_chunk, raw_horizon, compress_horizon
            )
            with conn.transaction():
                report = report_for(
                    raw_chunks=_drop(conn, "flight_data", raw_horizon),
                    aggregate_chunks=_aggregate_chunks(conn, aggregate_horizon, drop=True),
                    quarantine_rows=conn.execute(
                        load_sql("retention/prune_quarantine"), {"before": quarantine_before}
                    ).rowcount,
                    refreshed=refreshed,
                    compressed_chunks=compressed,
                    compacted_chunks=compacted,
                    held_loads=conn.execute(
                        load_sql("retention/prune_held"), {"before": raw_horizon.date()}
                    ).rowcount,
                )
                if name == "apache":
                    conn.execute(
                        load_sql("retention/forget_stale_days"), {"before": raw_horizon.date()}
                    )
                    if compress_horizon > raw_horizon:  # the policy compacts days
                        conn.execute(load_sql("retention/forget_dropped_compactions"))
                _record(conn, report)
    return replace(report, seconds=time.perf_counter() - began)


def _refresh_before_drop(
    conn: psycopg.Connection, name: str, raw_horizon: datetime, aggregate_horizon: datetime
) -> tuple[RefreshReport, ...]:
    """Bring the aggregates of the raw data about to be dropped up to date.

    Licensed edition: refresh the whole range; TimescaleDB recomputes only what its
    invalidation log says changed, so an up-to-date range costs next to nothing. Apache
    edition: refresh the days marked stale. Nothing below the previous raw horizon is
    refreshed (late points there are dropped uncounted), nor aggregates that go in this same
    run (older than their own horizon).
    """
    chunks = _chunks(conn, "flight_data", raw_horizon)
    if not chunks:
        return ()
    lower = max(chunks[0].range_start, aggregate_horizon)
    previous = raw_dropped_before(conn)
    if previous is not None:
        lower = max(lower, previous)
    if lower >= raw_horizon:
        return ()
    if name == "timescale":
        windows = [Window(lower, raw_horizon)]
    else:
        windows = [w for w in (s.above(lower) for s in stale_windows(conn, raw_horizon)) if w]
    return tuple(refresh_aggregates(conn, w.start, w.end) for w in windows)


def _settle(
    conn: psycopg.Connection,
    listed: Callable[[psycopg.Connection, Window], list[RawChunk]],
    settle: Callable[[psycopg.Connection, str], None] | None,
    raw_horizon: datetime,
    compress_horizon: datetime,
) -> tuple[Chunk, ...]:
    """The raw chunks past the compression age that the drop keeps and `listed` names
    (the ones to compress, or to compact), each settled when `settle` is given."""
    if compress_horizon <= raw_horizon:
        return ()
    chunks = tuple(
        Chunk("flight_data", name, start, end, size, None)
        for name, start, end, size in listed(conn, Window(raw_horizon, compress_horizon))
    )
    if settle:
        for chunk in chunks:
            settle(conn, chunk.name)
    return chunks


def _chunks(conn: psycopg.Connection, relation: str, horizon: datetime) -> tuple[Chunk, ...]:
    rows = conn.execute(
        load_sql("retention/chunks_older_than"), {"relation": relation, "horizon": horizon}
    ).fetchall()
    return tuple(
        Chunk(relation, chunk, start, end, size, estimate if estimate >= 0 else None)
        for chunk, start, end, size, estimate in rows
    )


def _aggregate_chunks(
    conn: psycopg.Connection, horizon: datetime, *, drop: bool
) -> tuple[Chunk, ...]:
    collect = _drop if drop else _chunks
    return tuple(
        chunk for a in present_aggregates(conn) for chunk in collect(conn, a.name, horizon)
    )


def _drop(conn: psycopg.Connection, relation: str, horizon: datetime) -> tuple[Chunk, ...]:
    """Drop the chunks before horizon; returns them as they were just before."""
    listed = _chunks(conn, relation, horizon)
    if not listed:
        return ()
    dropped = {
        row[0]
        for row in conn.execute(
            load_sql("retention/drop_chunks"), {"relation": relation, "horizon": horizon}
        )
    }
    return tuple(c for c in listed if c.name in dropped)


def _record(conn: psycopg.Connection, report: CleanReport) -> None:
    raw_range = report.raw_range
    conn.execute(
        load_sql("retention/record_run"),
        {
            "partition_day": report.day,
            "raw_horizon": report.raw_horizon,
            "aggregate_horizon": report.aggregate_horizon,
            "quarantine_before": report.quarantine_before,
            "raw_chunks": len(report.raw_chunks),
            "raw_bytes": report.raw_bytes,
            "raw_range_start": raw_range.start if raw_range else None,
            "raw_range_end": raw_range.end if raw_range else None,
            "aggregate_chunks": len(report.aggregate_chunks),
            "quarantine_rows": report.quarantine_rows,
        },
    )


def raw_points_before(conn: psycopg.Connection, horizon: datetime) -> bool:
    """Whether any raw point older than horizon is still stored."""
    row = conn.execute(load_sql("retention/raw_points_before"), {"horizon": horizon}).fetchone()
    return bool(row and row[0])
