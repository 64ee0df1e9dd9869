"""One partition's write: everything a run of one drop day stores, in one transaction.

A run killed at any point leaves the previous state (nothing is committed before the end),
and two runs of the same day queue on an advisory lock instead of interleaving. The first
load of a day COPYs batches straight into the hypertable; a batch that meets stored rows, and
every batch of a re-run, goes through a staging table and an upsert that skips unchanged rows.

Write-audit-publish: the day's rows are written inside a savepoint and the blocking checks
decide at the end. A passing day commits as written (the fast path costs one spooled copy of
the bytes it sent). A failing day rolls back to the savepoint, so the published state of the
day stays exactly as it was, and replays the spooled batches into `held_points` instead,
with its quarantine and a `held_loads` row saying which check failed.
"""

from __future__ import annotations

import io
import struct
import tempfile
from collections import deque
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from types import TracebackType

import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from psycopg import errors, sql

from pipelines.flights.records import METADATA_COLUMNS, POSITION_COLUMNS, Rejected
from pipelines.warehouse.retention import share_writes_lock
from pipelines.warehouse.sqlfiles import load_sql

_CSV = pacsv.WriteOptions(include_header=False, quoting_style="needed")
_COPY_COLUMNS = sql.SQL(", ").join(sql.Identifier(c) for c in POSITION_COLUMNS)
_QUARANTINE_COLUMNS = (
    "partition_day",
    "source_file",
    "line",
    "byte_offset",
    "reason",
    "raw_record",
    "held",
)
_BLOCK_LENGTH = struct.Struct(">Q")  # spooled batches: length-prefixed CSV blocks
_PENDING = 2  # batches queued for the writer thread
_CANONICAL_TIME = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"
# Stable key for the day's advisory lock: partitions never share one.
_LOCK_NAMESPACE = 0x464C54


def _timestamp_text(frame: pd.DataFrame) -> pa.Array:
    """Timestamps as PostgreSQL reads them. Arrow's CSV writer formats timestamps slowly;
    the drop's own text is reused where it already is `YYYY-MM-DDTHH:MM:SSZ` (it parsed to
    exactly this value), and only the other rows are formatted."""
    raw = pa.array(frame["raw_timestamp"].array, type=pa.string())
    canonical = pc.fill_null(pc.match_substring_regex(raw, _CANONICAL_TIME), False)
    if pc.all(canonical).as_py():
        return raw
    values = frame["timestamp"].to_numpy(dtype="datetime64[us]")
    formatted = pc.binary_join_element_wise(
        pa.array(np.datetime_as_string(values, unit="us")), "Z", ""
    )
    return pc.if_else(canonical, raw, formatted)


def csv_block(frame: pd.DataFrame, columns: Iterable[str]) -> bytes:
    """Rows as CSV for COPY, formatted in Arrow's C++ writer (NULL is an unquoted empty)."""
    table = pa.table(
        {
            name: _timestamp_text(frame) if name == "timestamp" else pa.array(frame[name])
            for name in columns
        }
    )
    out = io.BytesIO()
    pacsv.write_csv(table, out, _CSV)
    return out.getvalue()


def storable_text(text: str) -> str:
    """Text PostgreSQL can store, whatever a drop held: NUL written as `\\x00`, and what is
    not UTF-8 (undecodable bytes of a file name) as backslash escapes."""
    if text.isascii() and "\x00" not in text:
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


@dataclass(frozen=True)
class FailedCheck:
    """The blocking check a load failed, and why: the load is held, not published."""

    name: str
    value: float
    threshold: float | None = None

    def describe(self) -> str:
        if self.threshold is None:
            return f"{self.name} failed ({self.value:g})"
        return f"{self.name} {self.value:.4f} > {self.threshold:g}"


@dataclass
class LoadCounts:
    rows_stored: int = 0
    rows_quarantined: int = 0
    duplicates: int = 0
    min_timestamp: datetime | None = None
    max_timestamp: datetime | None = None


class PartitionLoad:
    """Owns the connection's transaction for one partition day; use as a context manager.

    Batches are written by one background thread while the caller decodes the next one, so
    the database and Python work side by side (psycopg releases the GIL while it waits on
    the server). At most `_PENDING` batches wait, which bounds memory. Every other statement
    first waits for the pending writes, so reads see them and errors surface in order.
    """

    def __init__(self, conn: psycopg.Connection, day: date) -> None:
        self.conn = conn
        self.day = day
        self.counts = LoadCounts()
        self._tx: AbstractContextManager[psycopg.Transaction] | None = None
        self._rerun = False
        self._stage_ready = False
        self._metadata: dict[str, dict[str, str]] = {}
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="partition-write")
        self._pending: deque[Future[None]] = deque()
        # Every block sent to flight_data, in order: what a held load replays into held_points.
        self._spool = tempfile.TemporaryFile(prefix="flights-day-")  # noqa: SIM115 - closed in __exit__

    def __enter__(self) -> PartitionLoad:
        self._tx = self.conn.transaction()
        self._tx.__enter__()
        lock_day(self.conn, self.day)
        share_writes_lock(self.conn)  # the cleaner never drops a range being written
        # This run replaces any earlier held load of the day, whether it publishes or holds.
        self.conn.execute(load_sql("ingest/discard_held"), {"day": self.day})
        row = self.conn.execute(
            "SELECT 1 FROM partition_loads WHERE partition_day = %s", (self.day,)
        ).fetchone()
        self._rerun = row is not None
        if self._rerun:
            self.conn.execute(load_sql("ingest/create_produced_keys"))
        self.conn.execute("SAVEPOINT day_rows")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._tx is not None
        failure = None
        if exc is None:
            try:
                self.drain()
            except BaseException as write_error:
                failure = write_error
        self._writer.shutdown(wait=True, cancel_futures=True)
        self._spool.close()
        if failure is None:
            self._tx.__exit__(exc_type, exc, tb)
            return
        self._tx.__exit__(type(failure), failure, failure.__traceback__)
        raise failure

    def drain(self) -> None:
        """Wait for every pending write; re-raise the first that failed."""
        while self._pending:
            self._pending.popleft().result()

    # -- positions ---------------------------------------------------------------------
    def write_positions(self, frame: pd.DataFrame, *, may_conflict: bool) -> None:
        """Store a batch whose keys are unique within it."""
        if frame.empty:
            return
        block = csv_block(frame, POSITION_COLUMNS)
        while len(self._pending) >= _PENDING:
            self._pending.popleft().result()
        self._pending.append(self._writer.submit(self._write, block, may_conflict))
        self._count_stored(frame)

    def _write(self, block: bytes, may_conflict: bool) -> None:
        self._spool.write(_BLOCK_LENGTH.pack(len(block)))
        self._spool.write(block)
        if not (self._rerun or may_conflict):
            try:
                with self.conn.transaction():
                    self._copy("flight_data", block)
            except errors.UniqueViolation:
                pass  # stored by another day's drop: upsert below instead
            else:
                return
        self._upsert(block)

    def stored_points(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The stored rows with the same keys as `frame` (for duplicates across batches)."""
        self.drain()
        cur = self.conn.execute(
            load_sql("ingest/stored_points"),
            {
                "flight_ids": frame["flight_id"].tolist(),
                "timestamps": [ts.to_pydatetime() for ts in frame["timestamp"]],
            },
        )
        names = [d.name for d in cur.description or []]
        return pd.DataFrame(cur.fetchall(), columns=names)

    def _copy(self, table: str, block: bytes) -> None:
        statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(
            sql.Identifier(table), _COPY_COLUMNS
        )
        with self.conn.cursor().copy(statement) as copy:
            copy.write(block)

    def _upsert(self, block: bytes) -> None:
        self._stage(block)
        self.conn.execute(load_sql("ingest/upsert_stage"))
        if self._rerun:
            self.conn.execute(load_sql("ingest/note_produced_keys"))

    def _stage(self, block: bytes) -> None:
        if not self._stage_ready:
            self.conn.execute(load_sql("ingest/create_stage"))
            self._stage_ready = True
        else:
            self.conn.execute("TRUNCATE ingest_stage")
        self._copy("ingest_stage", block)

    def _count_stored(self, frame: pd.DataFrame) -> None:
        c = self.counts
        c.rows_stored += len(frame)
        low, high = frame["timestamp"].min().to_pydatetime(), frame["timestamp"].max()
        c.min_timestamp = low if c.min_timestamp is None else min(c.min_timestamp, low)
        high = high.to_pydatetime()
        c.max_timestamp = high if c.max_timestamp is None else max(c.max_timestamp, high)

    # -- metadata ----------------------------------------------------------------------
    def note_metadata(self, frame: pd.DataFrame) -> None:
        """Remember each flight's latest known metadata; written once at the end."""
        columns = ["flight_id", *METADATA_COLUMNS]
        # A flight's rows mostly repeat its metadata: each distinct row's last occurrence
        # keeps every column's last value, at a fraction of grouping every row.
        distinct = frame[columns].drop_duplicates(keep="last")
        latest = distinct.groupby("flight_id", sort=False)[list(METADATA_COLUMNS)].last()
        for flight_id, values in zip(latest.index, latest.to_dict("records"), strict=True):
            known = self._metadata.setdefault(flight_id, {})
            known.update({str(k): v for k, v in values.items() if isinstance(v, str) and v})

    # -- quarantine --------------------------------------------------------------------
    def quarantine(self, rejects: list[Rejected]) -> None:
        if not rejects:
            return
        self.drain()
        statement = sql.SQL("COPY quarantine ({}) FROM STDIN").format(
            sql.SQL(", ").join(sql.Identifier(c) for c in _QUARANTINE_COLUMNS)
        )
        with self.conn.cursor().copy(statement) as copy:
            for r in rejects:
                copy.write_row(
                    (
                        self.day,
                        storable_text(r.source_file),
                        r.line,
                        r.byte_offset,
                        storable_text(r.reason),
                        None if r.raw_record is None else storable_text(r.raw_record),
                        True,
                    )
                )
        self.counts.rows_quarantined += len(rejects)

    def count_duplicates(self, n: int) -> None:
        self.counts.duplicates += n

    # -- the end -----------------------------------------------------------------------
    def finish(
        self,
        *,
        files: int,
        rows_read: int,
        fingerprint: str,
        carried_state: str | None,
        failed: FailedCheck | None,
    ) -> LoadCounts:
        """Publish the day (no failed check) or hold it; the commit happens on leaving the
        block. A published re-run first deletes the day's OpenSky points it did not produce
        (re-keyed flights)."""
        self.drain()
        ledger = {
            "partition_day": self.day,
            "files": files,
            "rows_read": rows_read,
            "rows_stored": self.counts.rows_stored,
            "rows_quarantined": self.counts.rows_quarantined,
            "duplicates": self.counts.duplicates,
            "min_timestamp": self.counts.min_timestamp,
            "max_timestamp": self.counts.max_timestamp,
            "fingerprint": fingerprint,
            "carried_state": carried_state,
        }
        if failed is None:
            emptied: list[str] = []
            if self._rerun:
                start = datetime.combine(self.day, time(), tzinfo=UTC)
                emptied = [
                    row[0]
                    for row in self.conn.execute(
                        load_sql("ingest/forget_unproduced"),
                        {"day_start": start, "day_end": start + timedelta(days=1)},
                    )
                ]
            self.conn.execute("RELEASE SAVEPOINT day_rows")
            self._write_metadata("ingest/upsert_metadata")
            if emptied:
                self.conn.execute(load_sql("ingest/forget_empty_flights"), {"flight_ids": emptied})
            self.conn.execute(load_sql("ingest/publish_quarantine"), {"day": self.day})
            self.conn.execute(load_sql("ingest/record_load"), ledger)
        else:
            self._hold()
            self._write_metadata("ingest/hold_metadata")
            self.conn.execute(
                load_sql("ingest/record_hold"),
                {
                    **ledger,
                    "failed_check": failed.name,
                    "check_value": failed.value,
                    "threshold": failed.threshold,
                },
            )
        return self.counts

    def _write_metadata(self, statement: str) -> None:
        with self.conn.cursor() as cur:
            # Sorted, so concurrent days lock shared flights in one order (no deadlock).
            cur.executemany(
                load_sql(statement),
                [
                    {"day": self.day, "flight_id": fid} | {c: meta.get(c) for c in METADATA_COLUMNS}
                    for fid, meta in sorted(self._metadata.items())
                ],
            )

    def _hold(self) -> None:
        """Undo the day's writes and keep them aside: its quarantine rows are carried over the
        rollback, its points replayed from the spool into held_points (last write wins, as in
        flight_data)."""
        rejected = io.BytesIO()
        copy_out = load_sql("ingest/copy_out_held_quarantine")
        with self.conn.cursor().copy(copy_out, {"day": self.day}) as copy:
            for data in copy:
                rejected.write(data)
        self.conn.execute("ROLLBACK TO SAVEPOINT day_rows")
        self._stage_ready = False  # the staging table was created after the savepoint
        statement = sql.SQL("COPY quarantine ({}) FROM STDIN").format(
            sql.SQL(", ").join(sql.Identifier(c) for c in _QUARANTINE_COLUMNS)
        )
        with self.conn.cursor().copy(statement) as copy:
            copy.write(rejected.getvalue())
        self._spool.seek(0)
        while header := self._spool.read(_BLOCK_LENGTH.size):
            (length,) = _BLOCK_LENGTH.unpack(header)
            self._stage(self._spool.read(length))
            self.conn.execute(load_sql("ingest/hold_stage"), {"day": self.day})


def lock_day(conn: psycopg.Connection, day: date) -> None:
    """Serialise every writer of one day (loads, accepts, rejects) inside its transaction."""
    conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (_LOCK_NAMESPACE, day.toordinal()))
