"""Reads for the API: tracks as numpy columns, flight listings and summaries.

Every read runs in a READ ONLY transaction on a pooled connection, under a statement timeout
and, when configured, a read-only database role (migration 004). A read can be cancelled from
another thread: the API does so when its caller goes away, so an abandoned call stops its query.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import psycopg
from psycopg_pool import ConnectionPool

from pipelines.warehouse.sqlfiles import load_sql

OPEN_START = datetime(1, 1, 1, tzinfo=UTC)
OPEN_END = datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)
# PostgreSQL's binary timestamps count microseconds from 2000-01-01 UTC.
_PG_EPOCH_US = 946_684_800_000_000
_UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
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
class Flight:
    meta: FlightMeta
    has_points: bool


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

    @property
    def last_time(self) -> datetime:
        return _UNIX_EPOCH + timedelta(microseconds=int(self.times_us[-1]))


_FLOAT_COLUMNS = ("latitude", "longitude", "altitude", "airspeed", "track", "vertical_rate",
                  "on_ground")


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


def _track(row: tuple[Any, ...]) -> Track:
    n, times, *floats = row
    columns = {name: _array(data, n, ">f8") for name, data in zip(_FLOAT_COLUMNS, floats,
                                                                 strict=True)}
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
            if self._conn is not None:
                self._conn.cancel_safe()

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
        application_name: str = "flights-api",
        wait_timeout: float = 30.0,
    ) -> FlightStore:
        """Opens the pool and waits for its first connections (fails fast when it cannot)."""

        def configure(conn: psycopg.Connection) -> None:
            conn.read_only = True

        pool = ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            kwargs={"prepare_threshold": None, "application_name": application_name},
            configure=configure,
            open=False,
            name="flights-api",
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
            scope = cancellation.attach(conn) if cancellation else _no_cancel()
            with scope, conn.transaction():
                conn.execute(
                    load_sql("api/begin_read"),
                    {"timeout": f"{max(int(timeout * 1000), 1)}ms", "role": self.role or "none"},
                )
                yield FlightReads(conn)


@contextmanager
def _no_cancel() -> Iterator[None]:
    yield


class FlightReads:
    """The API's queries, on one connection inside a read-only transaction."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self._conn = conn

    def check(self) -> None:
        """Fails unless the tables the API reads exist and are readable."""
        self._conn.execute(load_sql("api/check"))

    def flight(self, flight_id: str) -> Flight:
        with self._conn.cursor() as cur:
            cur.execute(load_sql("api/flight"), {"flight_id": flight_id})
            row = cur.fetchone()
        assert row is not None
        return Flight(FlightMeta(*row[:-1]), bool(row[-1]))

    def _track(self, points: str, params: dict[str, Any]) -> Track:
        query = load_sql("api/track_arrays").format(points=load_sql(points))
        with self._conn.cursor(binary=True) as cur:
            cur.execute(query, params)
            row = cur.fetchone()
        assert row is not None
        return _track(row)

    def track(self, flight_id: str, window: Window, *, limit: int) -> Track:
        """The first `limit` stored reports in the window."""
        return self._track("api/track_raw", {
            "flight_id": flight_id, "start": window.start, "end": window.end, "limit": limit,
        })

    def track_even(self, flight_id: str, window: Window, *, points: int) -> Track:
        """`points` reports evenly spread over all those in the window."""
        return self._track("api/track_even", {
            "flight_id": flight_id, "start": window.start, "end": window.end, "points": points,
        })

    def count(self, flight_id: str, window: Window) -> int:
        row = self._conn.execute(
            load_sql("api/track_count"),
            {"flight_id": flight_id, "start": window.start, "end": window.end},
        ).fetchone()
        assert row is not None
        return int(row[0])

