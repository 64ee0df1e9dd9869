"""Ingest one drop day: decode every file, validate, settle duplicates, store atomically.

This is the plain function the Dagster asset and `flights ingest` both call. The day's
blocking checks (reconciliation, reject rate) decide at the end of its transaction whether
its rows are published or held for an operator's review.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from pathlib import Path

import pandas as pd

from pipelines.drops import read_drop
from pipelines.drops.batches import DEFAULT_BATCH_ROWS, DropBatch
from pipelines.drops.files import (
    DropFile,
    day_folder,
    partition_fingerprint,
    scan_day,
    why_no_drops,
)
from pipelines.flights.aircraft_state import carried_fingerprint, day_identifier
from pipelines.flights.identity import FlightIdentifier, needs_flight_ids
from pipelines.flights.records import Rejected
from pipelines.flights.reports import PositionReports
from pipelines.quality.duplicates import CONTENT_COLUMNS, PartitionKeys, superseded_reason
from pipelines.quality.validate import validate_batch
from pipelines.warehouse.aggregates import Window, partition_window, refresh_aggregates
from pipelines.warehouse.columnstore import recompress_window
from pipelines.warehouse.connection import connect
from pipelines.warehouse.partition_load import FailedCheck, LoadCounts, PartitionLoad, lock_day
from pipelines.warehouse.sqlfiles import load_sql

Progress = Callable[[int, int, int], None]  # (bytes of files done, total bytes, rows read)

DEFAULT_MAX_REJECT_RATE = 0.05

# A watcher of every load in this context (the CLI's progress bar: Dagster runs the CLI's
# jobs in-process, in the caller's thread, so the reader's progress reaches it from here).
progress_watcher: ContextVar[Progress | None] = ContextVar("progress_watcher", default=None)


class NoDrops(RuntimeError):
    """A day with no drop files: nothing is changed, and the run must not look like a load."""

    def __init__(self, day: date, folder: Path) -> None:
        self.day = day
        self.folder = folder
        super().__init__(
            f"no drops for {day}: {folder} {why_no_drops(folder)}; nothing was changed (check "
            "the landing root: FLIGHTS_LANDING_ROOT or `flights ingest --landing`)"
        )


@dataclass
class PartitionReport:
    """What a run did with every row it read: read = stored + quarantined + duplicates."""

    day: date
    files: int
    bytes: int
    rows_read: int
    rows_stored: int
    rows_quarantined: int
    duplicates: int
    flights: int
    seconds: float
    min_timestamp: datetime | None
    max_timestamp: datetime | None
    fingerprint: str
    files_skipped: int = 0  # hidden, still being written, or read through another path
    reject_reasons: Counter[str] = field(default_factory=Counter)
    points_per_hour: Counter[datetime] = field(default_factory=Counter)
    # Later days identified again because this one changed what they start from.
    reidentified: list[date] = field(default_factory=list)
    held: FailedCheck | None = None  # the blocking check that held the day, if one failed

    @property
    def rows_per_second(self) -> float:
        return self.rows_read / self.seconds if self.seconds else 0.0

    @property
    def reconciles(self) -> bool:
        return self.rows_read == self.rows_stored + self.rows_quarantined + self.duplicates

    @property
    def reject_rate(self) -> float:
        return self.rows_quarantined / self.rows_read if self.rows_read else 0.0


def audit(rows_read: int, counts: LoadCounts, max_reject_rate: float) -> FailedCheck | None:
    """The blocking checks of a load, decided before anything is published."""
    accounted = counts.rows_stored + counts.rows_quarantined + counts.duplicates
    if rows_read != accounted:
        return FailedCheck("rows_reconcile", float(rows_read - accounted))
    rate = counts.rows_quarantined / rows_read if rows_read else 0.0
    if rate > max_reject_rate:
        return FailedCheck("reject_rate", rate, max_reject_rate)
    return None


def reason_kind(reason: str) -> str:
    """The reason without its values, so rejects count by kind: `latitude: in_range(-90,
    90)` (a schema check), `conflicting duplicate`, `not valid JSON` (decoding: "what: detail")."""
    kinds = []
    for part in reason.split("; "):
        if " (got " in part:
            kinds.append(part.split(" (got ")[0])
        elif "conflicting duplicate" in part:
            kinds.append("conflicting duplicate")
        else:
            kinds.append(part.split(":")[0])
    return "; ".join(dict.fromkeys(kinds))


def _settle_seen(
    load: PartitionLoad, seen: pd.DataFrame, source: str
) -> tuple[pd.DataFrame, int, list[Rejected]]:
    """Rows whose key an earlier batch of this day stored: exact repeats are counted, other
    content replaces the stored record, which goes to quarantine."""
    stored = load.stored_points(seen)
    if stored.empty:
        return seen, 0, []
    merged = seen.merge(
        stored, on=["flight_id", "timestamp"], how="left", suffixes=("", "_stored"), indicator=True
    )
    had = merged["_merge"] == "both"
    same = had.copy()
    for column in CONTENT_COLUMNS:
        a, b = merged[column], merged[f"{column}_stored"]
        same &= (a.isna() & b.isna()) | (a.astype(object) == b.astype(object)).fillna(False)
    rejects = []
    for row in merged[had & ~same].to_dict("records"):
        earlier = {c: row[f"{c}_stored"] for c in CONTENT_COLUMNS}
        earlier.update(flight_id=row["flight_id"], timestamp=row["timestamp"])
        rejects.append(
            Rejected(
                source,
                "earlier record of this day: " + superseded_reason(row, source, int(row["record"])),
                pd.Series(earlier).to_json(date_format="iso"),
            )
        )
    keep = seen[~same.to_numpy()]
    return keep, int(same.sum()), rejects


def _bytes_into(drop: DropFile, batch: DropBatch) -> int:
    """How far into its file a batch reached, from its last record's byte offset (offsets in
    a gzipped file count uncompressed bytes: those files count when done)."""
    if drop.name.endswith(".gz") or batch.frame.empty:
        return 0
    offset = batch.frame["byte_offset"].max()
    return 0 if pd.isna(offset) else min(int(offset), drop.size)


def ingest_partition(
    database_url: str,
    day: date,
    landing_root: Path,
    *,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    progress: Progress | None = None,
    max_reject_rate: float = DEFAULT_MAX_REJECT_RATE,
) -> PartitionReport:
    """Load every drop of `day` in one transaction and return its counts; then identify
    the following days again while what they start from changed (`reidentify_following`)."""
    report = load_partition(
        database_url,
        day,
        landing_root,
        batch_rows=batch_rows,
        progress=progress,
        max_reject_rate=max_reject_rate,
    )
    report.reidentified = reidentify_following(
        database_url, day, landing_root, batch_rows, max_reject_rate
    )
    return report


def _stale_identity(database_url: str, day: date, landing_root: Path) -> bool:
    """Whether `day` was loaded from the files still in the landing zone, with OpenSky rows
    identified from another state than the store now holds before its midnight. Waits for a
    run of that day in progress (its lock), so a run that read the state before the day
    before committed is seen and settled here."""
    with connect(database_url) as conn, conn.transaction():
        lock_day(conn, day)
        row = conn.execute(load_sql("ingest/carried_state"), {"day": day}).fetchone()
        if row is None or row[0] is None:
            return False  # never loaded, or nothing in it depends on the day before
        recorded, files = row
        if files != partition_fingerprint(scan_day(landing_root, day).drops):
            return False  # its files changed or are gone: its own next run settles it
        return bool(recorded != carried_fingerprint(conn, day))


def reidentify_following(
    database_url: str,
    day: date,
    landing_root: Path,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    max_reject_rate: float = DEFAULT_MAX_REJECT_RATE,
) -> list[date]:
    """Load again each following day whose flights were identified from a state the store
    no longer holds (it was loaded before `day`, or while `day` was being loaded), and
    refresh its aggregates. A flight crossing midnight thus keeps one id, in whatever order
    and concurrency the days arrive; a re-run replaces the points it re-keys."""
    done: list[date] = []
    following = day + timedelta(days=1)
    while _stale_identity(database_url, following, landing_root):
        load_partition(
            database_url,
            following,
            landing_root,
            batch_rows=batch_rows,
            max_reject_rate=max_reject_rate,
        )
        with connect(database_url, autocommit=True) as conn:
            window = partition_window(conn, following)
            if window is not None:
                refresh_aggregates(conn, window.start, window.end)
        done.append(following)
        following += timedelta(days=1)
    return done


def load_partition(
    database_url: str,
    day: date,
    landing_root: Path,
    *,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    progress: Progress | None = None,
    max_reject_rate: float = DEFAULT_MAX_REJECT_RATE,
) -> PartitionReport:
    """Load every drop of `day` in one transaction and return its counts: published when
    its blocking checks pass, else held. Raises NoDrops, changing nothing, for a day without
    files."""
    started = time.perf_counter()
    scan = scan_day(landing_root, day)
    files = scan.drops
    if not files:
        raise NoDrops(day, day_folder(landing_root, day))
    total_bytes = sum(f.size for f in files)
    watchers = [w for w in (progress, progress_watcher.get()) if w is not None]

    def report_progress(done: int, rows: int) -> None:
        for watcher in watchers:
            watcher(done, total_bytes, rows)

    fingerprint = partition_fingerprint(files)
    reasons: Counter[str] = Counter()
    per_hour: Counter[datetime] = Counter()
    rows_read = done_bytes = 0
    flights: set[str] = set()
    identifier: FlightIdentifier | None = None  # OpenSky drops name aircraft, not flights
    carried: str | None = None  # what the identifier started from
    reports = PositionReports(day)
    with PartitionKeys() as keys, connect(database_url) as conn:
        conn.execute("SET temp_buffers = '256MB'")  # staging stays in memory
        with PartitionLoad(conn, day) as load:
            for drop in files:
                for batch in read_drop(drop, landing_root, batch_rows):
                    rows_read += batch.rows_read
                    if needs_flight_ids(batch.frame):
                        sorted_out = reports.split(batch.frame, drop.name)
                        load.count_duplicates(sorted_out.repeats)
                        batch = replace(
                            batch,
                            frame=sorted_out.frame,
                            rejected=[*batch.rejected, *sorted_out.rejected],
                        )
                        if identifier is None:
                            identifier, carried = day_identifier(conn, day)
                        identifier.assign(batch.frame)
                    checked = validate_batch(batch)
                    split = keys.split(checked.good, drop.name)
                    rejects = checked.rejected + split.conflicting
                    load.count_duplicates(split.exact_duplicates)
                    load.write_positions(split.new, may_conflict=False)
                    if not split.seen.empty:
                        seen, exact, superseded = _settle_seen(load, split.seen, drop.name)
                        load.count_duplicates(exact)
                        load.write_positions(seen, may_conflict=True)
                        rejects += superseded
                        # The superseded record was counted as stored; it is quarantined now.
                        load.counts.rows_stored -= len(superseded)
                    # Points new to the store; a replaced point was counted when first stored.
                    hours = split.new["timestamp"].dt.floor("h").value_counts()
                    per_hour.update(
                        dict(zip(hours.index.to_pydatetime(), hours.tolist(), strict=True))
                    )
                    load.quarantine(rejects)
                    load.note_metadata(checked.good)
                    flights.update(checked.good["flight_id"].unique())
                    reasons.update(reason_kind(r.reason) for r in rejects)
                    report_progress(done_bytes + _bytes_into(drop, batch), rows_read)
                done_bytes += drop.size
                report_progress(done_bytes, rows_read)
            failed = audit(rows_read, load.counts, max_reject_rate)
            counts = load.finish(
                files=len(files),
                rows_read=rows_read,
                fingerprint=fingerprint,
                carried_state=carried,
                failed=failed,
            )
        if failed is None and counts.min_timestamp is not None and counts.max_timestamp is not None:
            # A compressed day this load wrote into is left compressed again (a held day wrote
            # only its held tables).
            with conn.transaction():
                recompress_window(
                    conn,
                    Window(counts.min_timestamp, counts.max_timestamp + timedelta(microseconds=1)),
                )
    return PartitionReport(
        day=day,
        files=len(files),
        bytes=done_bytes,
        rows_read=rows_read,
        rows_stored=counts.rows_stored,
        rows_quarantined=counts.rows_quarantined,
        duplicates=counts.duplicates,
        flights=len(flights),
        seconds=time.perf_counter() - started,
        min_timestamp=counts.min_timestamp,
        max_timestamp=counts.max_timestamp,
        fingerprint=fingerprint,
        files_skipped=len(scan.skipped),
        reject_reasons=reasons,
        points_per_hour=per_hour,
        held=failed,
    )
