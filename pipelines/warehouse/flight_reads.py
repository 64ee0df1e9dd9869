"""Reads for the API: tracks as numpy columns, flight listings and summaries.

Every read runs in a READ ONLY transaction on a pooled connection, under a statement timeout
and, when configured, a read-only database role (migration 004). A read can be cancelled from
another thread: the API does so when its caller goes away, so an abandoned call stops its query.
"""

from __future__ import annotations

import enum
import logging
import struct
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import psycopg
from psycopg import sql
from psycopg.rows import class_row
from psycopg_pool import ConnectionPool

from pipelines.warehouse.aggregates import AGGREGATES, Rollup
from pipelines.warehouse.connection import check_conninfo
from pipelines.warehouse.sqlfiles import load_sql

log = logging.getLogger(__name__)

OPEN_START = datetime(1, 1, 1, tzinfo=UTC)
OPEN_END = datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)
# PostgreSQL's binary timestamps count microseconds from 2000-01-01 UTC.
_PG_EPOCH_US = 946_684_800_000_000
_UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MINUTE = timedelta(minutes=1)
_HOUR = timedelta(hours=1)
_DAY = timedelta(days=1)
_AGGREGATE_BOUNDS = (
    "minutes_start",
    "minutes_end",
    "hours_start",
    "hours_end",
    "days_start",
    "days_end",
    "late_hours_start",
    "late_hours_end",
    "late_minutes_start",
    "late_minutes_end",
)
# Binary array header: dimensions, has-nulls flag, element type, then size and lower bound.
_ARRAY_HEADER = struct.Struct(">iiIii")


@dataclass(frozen=True)
class Window:
    """The time window [start, end); the defaults leave either end open."""

    start: datetime = OPEN_START
    end: datetime = OPEN_END


@dataclass(frozen=True)
class FlightMeta:
    """What `flight_metadata` says of a flight (all None when it has no row there)."""

    flight_id: str
    airline: str | None = None
    flight_number: str | None = None
    departure_airport: str | None = None
    arrival_airport: str | None = None
    icao24: str | None = None
    callsign: str | None = None


@dataclass(frozen=True)
class Track:
    """Points in time order, one numpy column per field; NaN where a report lacked a value."""

    times_us: np.ndarray  # int64, microseconds since 1970-01-01 UTC
    latitude: np.ndarray
    longitude: np.ndarray
    altitude: np.ndarray
    airspeed: np.ndarray
    track: np.ndarray
    vertical_rate: np.ndarray
    on_ground: np.ndarray  # 1.0, 0.0 or NaN

    def __len__(self) -> int:
        return len(self.times_us)

    @classmethod
    def empty(cls) -> Track:
        return cls(np.empty(0, dtype=np.int64), *(np.empty(0) for _ in _FLOAT_COLUMNS))

    @property
    def last_time(self) -> datetime:
        return _UNIX_EPOCH + timedelta(microseconds=int(self.times_us[-1]))


_FLOAT_COLUMNS = (
    "latitude",
    "longitude",
    "altitude",
    "airspeed",
    "track",
    "vertical_rate",
    "on_ground",
)


def _array(data: bytes | None, n: int, dtype: str) -> np.ndarray:
    """A one-dimensional array without NULLs, from PostgreSQL's binary array format."""
    if n == 0:
        return np.empty(0, dtype=np.dtype(dtype).newbyteorder("="))
    assert data is not None
    dims, has_nulls, _, size, _ = _ARRAY_HEADER.unpack_from(data)
    if dims != 1 or has_nulls or size != n:
        raise ValueError(f"unexpected array layout: {dims} dims, nulls {has_nulls}, {size}/{n}")
    item = np.dtype([("length", ">i4"), ("value", dtype)])
    values = np.frombuffer(data, dtype=item, offset=_ARRAY_HEADER.size, count=n)["value"]
    return values.astype(np.dtype(dtype).newbyteorder("="))


@dataclass(frozen=True)
class SampledTrack:
    """A window's points, all or evenly sampled, with how many the source holds there and the
    stored reports they stand for."""

    track: Track
    available: int
    reports: int


def _track(row: tuple[Any, ...]) -> Track:
    n, times, *floats = row[: 2 + len(_FLOAT_COLUMNS)]
    columns = {
        name: _array(data, n, ">f8") for name, data in zip(_FLOAT_COLUMNS, floats, strict=True)
    }
    track = Track(times_us=_array(times, n, ">i8") + _PG_EPOCH_US, **columns)
    if n > 1 and not np.all(np.diff(track.times_us) > 0):
        # array_agg keeps its input's order in practice; this keeps it certain.
        order = np.argsort(track.times_us, kind="stable")
        track = Track(**{k: v[order] for k, v in vars(track).items()})
    return track


class ReadCancelled(Exception):
    """The read was cancelled before or while it ran."""


class Cancellation:
    """Lets another thread stop the query a read is running."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._conn: psycopg.Connection | None = None
        self.cancelled = False

    def cancel(self) -> None:
        with self._lock:
            self.cancelled = True
            if self._conn is None:
                return
            try:
                self._conn.cancel_safe(timeout=5)
            except psycopg.Error as exc:  # the statement timeout still bounds the query
                log.warning("could not cancel a query: %s", exc)

    @contextmanager
    def attach(self, conn: psycopg.Connection) -> Iterator[None]:
        with self._lock:
            if self.cancelled:
                raise ReadCancelled
            self._conn = conn
        try:
            yield
        except psycopg.errors.QueryCanceled as exc:
            if self.cancelled:
                raise ReadCancelled from exc
            raise
        finally:
            with self._lock:
                self._conn = None


class FlightStore:
    """A pool of read-only connections to the flight store."""

    def __init__(self, pool: ConnectionPool, *, role: str | None = None) -> None:
        self.pool = pool
        self.role = role

    @classmethod
    def open(
        cls,
        url: str,
        *,
        min_size: int,
        max_size: int,
        role: str | None = None,
        prepare: bool = True,
        application_name: str = "flights-api",
        wait_timeout: float = 30.0,
    ) -> FlightStore:
        """Opens the pool and waits for its first connections (fails fast when it cannot).

        `prepare` keeps the hot statements (a flight, its track) prepared on each connection:
        planning a query over a hypertable costs as much as running it for a short track.
        Turn it off behind a proxy that pools transactions without tracking prepared
        statements (see pipelines.warehouse.connection); the other statements never are.
        """
        kwargs: dict[str, Any] = {
            "prepare_threshold": 0 if prepare else None,
            "application_name": application_name,
        }
        # One plain connection first: when the store is unreachable, its error says why
        # (the pool would only report a timeout).
        check_conninfo(url)
        psycopg.connect(url, **kwargs).close()

        def configure(conn: psycopg.Connection) -> None:
            conn.read_only = True

        pool = ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            kwargs=kwargs,
            configure=configure,
            open=False,
            name=application_name,
        )
        pool.open(wait=True, timeout=wait_timeout)
        return cls(pool, role=role)

    def close(self) -> None:
        self.pool.close()

    @contextmanager
    def reading(
        self, *, timeout: float, cancellation: Cancellation | None = None
    ) -> Iterator[FlightReads]:
        """One read-only transaction; queries in it end after `timeout` seconds."""
        with self.pool.connection(timeout=timeout) as conn:
            scope: AbstractContextManager[None] = (
                cancellation.attach(conn) if cancellation else nullcontext()
            )
            with scope, conn.transaction():
                reads = FlightReads(conn)
                reads.begin(timeout=timeout, role=self.role)
                yield reads


class Source(enum.Enum):
    """Where a track's points come from: stored reports, or the per-minute aggregate that
    outlives them once retention has dropped the raw data."""

    RAW = "api/points_raw"
    MINUTES = "api/points_minutes"


@dataclass(frozen=True)
class BoundingBox:
    """Degrees; min_longitude > max_longitude means the box crosses the antimeridian."""

    min_latitude: float
    min_longitude: float
    max_latitude: float
    max_longitude: float


@dataclass(frozen=True)
class FlightQuery:
    """The filters of a flight search; None leaves a filter unset."""

    window: Window
    airline: str | None = None
    departure_airport: str | None = None
    arrival_airport: str | None = None
    box: BoundingBox | None = None


def _floor(moment: datetime, unit: timedelta) -> datetime:
    return moment - (moment - _UNIX_EPOCH) % unit


def _ceil(moment: datetime, unit: timedelta) -> datetime:
    """The next whole unit; past the last instant a datetime holds, that instant (a window
    ending before it then holds no whole unit)."""
    floor = _floor(moment, unit)
    if floor == moment:
        return floor
    return floor + unit if OPEN_END - floor >= unit else OPEN_END


def window_parts(start: datetime, end: datetime) -> dict[str, datetime]:
    """[start, end) cut for `api/list_flights`: whole UTC days (`days_*`, from flight_days),
    the whole hours before and after them (`hours_*`, `late_hours_*`, from flight_hours), the
    whole minutes before and after those (`minutes_*`, `late_minutes_*`, from
    flight_minutes), and the sub-minute edges [start, raw_end) and [late_raw_start, end)
    (raw points). Every instant of the window is in exactly one part; an unused part is
    empty (its start equals its end)."""
    first_minute, last_minute = _ceil(start, _MINUTE), _floor(end, _MINUTE)
    if first_minute >= last_minute:  # no whole minute: raw points only
        return {
            "start": start,
            "end": end,
            "raw_end": end,
            "late_raw_start": end,
            **dict.fromkeys(_AGGREGATE_BOUNDS, end),
        }
    first_hour, last_hour = _ceil(first_minute, _HOUR), _floor(last_minute, _HOUR)
    if first_hour >= last_hour:  # no whole hour: minutes only between the edges
        first_hour = last_hour = last_minute
    first_day, last_day = _ceil(first_hour, _DAY), _floor(last_hour, _DAY)
    if first_day >= last_day:  # no whole day: hours only between the minutes
        first_day = last_day = last_hour
    return {
        "start": start,
        "end": end,
        "raw_end": first_minute,
        "late_raw_start": last_minute,
        "minutes_start": first_minute,
        "minutes_end": first_hour,
        "hours_start": first_hour,
        "hours_end": first_day,
        "days_start": first_day,
        "days_end": last_day,
        "late_hours_start": last_day,
        "late_hours_end": last_hour,
        "late_minutes_start": last_hour,
        "late_minutes_end": last_minute,
    }


# The aggregates holding one row per flight and bucket, by bucket length: a window of exactly
# one bucket is answered from its rows alone.
_ONE_ROW_A_FLIGHT = {
    _DAY: next(a for a in AGGREGATES if a.name == "flight_days"),
    _HOUR: next(a for a in AGGREGATES if a.name == "flight_hours"),
}


def whole_bucket(start: datetime, end: datetime) -> Rollup | None:
    """The aggregate to answer from when [start, end) is exactly one UTC day or hour."""
    found = _ONE_ROW_A_FLIGHT.get(end - start)
    if found is None or start != _floor(start, end - start):
        return None
    return found


def listing_parameters(
    query: FlightQuery, *, after: tuple[datetime, str] | None, limit: int
) -> dict[str, object]:
    """The parameters of both ListFlights statements (`api/list_flights`, and
    `api/list_flights_one_bucket`, which reads `bucket_start` and `span`) for a page after
    `after`."""
    box = query.box
    after_time, after_id = after or (OPEN_START, "")
    return {
        **window_parts(query.window.start, query.window.end),
        "bucket_start": query.window.start,
        "span": query.window.end - query.window.start,
        "airline": query.airline,
        "departure_airport": query.departure_airport,
        "arrival_airport": query.arrival_airport,
        "min_latitude": box.min_latitude if box else None,
        "min_longitude": box.min_longitude if box else None,
        "max_latitude": box.max_latitude if box else None,
        "max_longitude": box.max_longitude if box else None,
        "after_time": after_time,
        "after_id": after_id,
        "limit": limit,
    }


@dataclass(frozen=True)
class FlightListing:
    flight_id: str
    airline: str | None
    flight_number: str | None
    departure_airport: str | None
    arrival_airport: str | None
    icao24: str | None
    callsign: str | None
    first_seen: datetime
    last_seen: datetime
    points: int


@dataclass(frozen=True)
class FlightDay:
    day: date
    first_seen: datetime
    last_seen: datetime
    points: int
    max_altitude: int | None
    max_airspeed: int | None
    min_latitude: float
    min_longitude: float
    max_latitude: float
    max_longitude: float


class FlightReads:
    """The API's queries, on one connection inside a read-only transaction.

    The hot path (begin, flight, track) follows the connection's preparation rule; the rest
    is never prepared: their optional filters want plans made for the actual values.
    """

    def __init__(self, conn: psycopg.Connection) -> None:
        self._conn = conn

    def begin(self, *, timeout: float, role: str | None) -> None:
        """The transaction's statement timeout and role (None: the login role)."""
        self._conn.execute(
            load_sql("api/begin_read"),
            {"timeout": f"{max(int(timeout * 1000), 1)}ms", "role": role or "none"},
        )

    def check(self) -> None:
        """Fails unless the tables the API reads exist and are readable."""
        self._conn.execute(load_sql("api/check"), prepare=False)

    def flight(self, flight_id: str) -> FlightMeta:
        with self._conn.cursor(row_factory=class_row(FlightMeta)) as cur:
            cur.execute(load_sql("api/flight"), {"flight_id": flight_id})
            meta = cur.fetchone()
        assert meta is not None
        return meta

    def known(self, flight_id: str) -> bool:
        """Whether any history of the flight is stored (raw or aggregated)."""
        row = self._conn.execute(
            load_sql("api/flight_known"), {"flight_id": flight_id}, prepare=False
        ).fetchone()
        return bool(row and row[0])

    def _track(self, query: sql.Composable, params: dict[str, Any]) -> Track:
        with self._conn.cursor(binary=True) as cur:
            cur.execute(load_sql("api/track_arrays").format(points=query), params)
            row = cur.fetchone()
        assert row is not None
        return _track(row)

    @staticmethod
    def _params(flight_id: str, window: Window, **more: Any) -> dict[str, Any]:
        return {"flight_id": flight_id, "start": window.start, "end": window.end, **more}

    def track(self, source: Source, flight_id: str, window: Window, *, limit: int) -> Track:
        """The first `limit` points of the window."""
        query = load_sql("api/track_first").format(source=load_sql(source.value))
        return self._track(query, self._params(flight_id, window, limit=limit))

    def track_even(
        self, source: Source, flight_id: str, window: Window, *, points: int
    ) -> SampledTrack:
        """All the window's points when there are at most `points`, else `points` of them
        evenly spread, in one statement."""
        query = load_sql("api/track_even").format(source=load_sql(source.value))
        with self._conn.cursor(binary=True) as cur:
            cur.execute(
                load_sql("api/track_arrays").format(points=query),
                self._params(flight_id, window, points=points),
            )
            row = cur.fetchone()
        assert row is not None
        return SampledTrack(_track(row), int(row[-2]), int(row[-1]))

    def flights(
        self, query: FlightQuery, *, after: tuple[datetime, str] | None, limit: int
    ) -> list[FlightListing]:
        """One page of a flight search, after the (first_seen, flight_id) of the last row.
        A window of exactly one UTC day or hour has its own statement, a walk of that bucket's
        index that stops after the page; any other window is cut into parts (`window_parts`)."""
        bucket = whole_bucket(query.window.start, query.window.end)
        statement: sql.Composable
        if bucket is None:
            statement = load_sql("api/list_flights")
        else:
            statement = load_sql("api/list_flights_one_bucket").format(
                spans=sql.Identifier(bucket.name), bucket=sql.Identifier(bucket.time_column)
            )
        params = listing_parameters(query, after=after, limit=limit)
        with self._conn.cursor(row_factory=class_row(FlightListing)) as cur:
            return cur.execute(statement, params, prepare=False).fetchall()

    def days(self, flight_id: str) -> list[FlightDay]:
        """The flight's UTC days from the per-day aggregate, oldest first."""
        with self._conn.cursor(row_factory=class_row(FlightDay)) as cur:
            return cur.execute(
                load_sql("api/flight_days"), {"flight_id": flight_id}, prepare=False
            ).fetchall()
