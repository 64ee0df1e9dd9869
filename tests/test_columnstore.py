"""Raw days past the compression age: compressed by the cleaner on the licensed edition, their
indexes rebuilt compact on the Apache edition; still written (re-runs, late drops), aggregated,
read through the API and dropped as before."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from pipelines.api.validation import to_timestamp as ts
from pipelines.ingest import ingest_partition
from pipelines.proto import flight_pb2 as pb
from pipelines.warehouse.aggregates import partition_window, refresh_aggregates
from pipelines.warehouse.columnstore import compact_chunk
from pipelines.warehouse.connection import connect
from pipelines.warehouse.migrations import migrate
from pipelines.warehouse.retention import CleanReport, RetentionPolicy, clean
from tests.api import serving, stub_for
from tests.conftest import DATA
from tests.drops_factory import synthetic_day, write_pb
from tests.test_aggregates import late_drop

FLIGHTS = str(Path(sys.executable).with_name("flights"))
REAL = DATA / "drops"
REAL_DAYS = (date(2022, 8, 2), date(2024, 1, 2))
FLIGHT_IDS = ("2ce4f83f", "3376ab31")
# Keeps every bundled day raw; compresses what is older than a week.
KEEP_ALL = RetentionPolicy(raw_days=730, aggregate_days=1000)
OLD_DAY_AGGREGATES = "SELECT flight_id, points FROM flight_days WHERE day = '2022-08-02'"

# Chunk status bits in TimescaleDB's catalog: 1 compressed, 8 partially compressed (rows
# written since). The public views only say "compressed" for both.
CHUNK_STATES = """
SELECT ch.table_name, ch.status & 1 = 1, ch.status & 8 = 8
FROM _timescaledb_catalog.chunk AS ch
JOIN _timescaledb_catalog.hypertable AS h ON h.id = ch.hypertable_id
WHERE h.table_name = 'flight_data' AND NOT ch.dropped
ORDER BY ch.table_name
"""


@pytest.fixture
def licensed_url(licensed_db: str) -> str:
    with connect(licensed_db) as conn:
        migrate(conn)
    return licensed_db


def chunk_states(url: str) -> list[tuple[str, bool, bool]]:
    with connect(url) as conn:
        return conn.execute(CHUNK_STATES).fetchall()


def all_fully_compressed(url: str) -> bool:
    states = chunk_states(url)
    return bool(states) and all(compressed and not partial for _, compressed, partial in states)


def stored(url: str) -> list[tuple[Any, ...]]:
    with connect(url) as conn:
        return conn.execute('SELECT * FROM flight_data ORDER BY flight_id, "timestamp"').fetchall()


def ingest_and_refresh(url: str, day: date, landing: Path) -> None:
    ingest_partition(url, day, landing)
    with connect(url, autocommit=True) as conn:
        window = partition_window(conn, day)
        assert window is not None
        refresh_aggregates(conn, window.start, window.end)


def api_answers(
    url: str, flight_ids: tuple[str, ...], days: tuple[date, ...] = REAL_DAYS
) -> dict[str, Any]:
    """Full tracks, a downsampled one, and each of `days` listed, through the API."""
    answers: dict[str, Any] = {}
    with serving(url) as server, stub_for(server.port) as stub:
        for flight_id in flight_ids:
            track = stub.GetFlightData(pb.FlightDataRequest(flight_id=flight_id))
            answers[flight_id] = [(p.timestamp, p.latitude, p.altitude) for p in track.flight_data]
            few = stub.GetFlightData(pb.FlightDataRequest(flight_id=flight_id, max_points=20))
            answers[f"{flight_id} max 20"] = [p.timestamp for p in few.flight_data]
        for day in days:
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            listed = stub.ListFlights(
                pb.ListFlightsRequest(start_time=ts(start), end_time=ts(start + timedelta(days=1)))
            )
            answers[str(day)] = [(f.flight_id, f.points) for f in listed.flights]
    return answers


@pytest.mark.licensed
def test_compressed_days_round_trip_reruns_late_drops_the_api_and_the_cleaner(
    licensed_url: str, tmp_path: Path
) -> None:
    for day in REAL_DAYS:
        ingest_and_refresh(licensed_url, day, REAL)
    rows = stored(licensed_url)
    answers = api_answers(licensed_url, FLIGHT_IDS)
    with connect(licensed_url) as conn:
        old_day = conn.execute(OLD_DAY_AGGREGATES).fetchall()
    assert old_day
    assert all(answers[flight_id] for flight_id in FLIGHT_IDS)

    # The cleaner compresses the days past the compression age, and only once.
    with connect(licensed_url, autocommit=True) as conn:
        dry = clean(conn, date(2024, 1, 12), KEEP_ALL, dry_run=True)
        assert not any(compressed for _, compressed, _ in chunk_states(licensed_url))
        first = clean(conn, date(2024, 1, 12), KEEP_ALL)
        again = clean(conn, date(2024, 1, 12), KEEP_ALL)
    names = [name.split(".")[-1] for name, _, _ in chunk_states(licensed_url)]
    assert [c.name.split(".")[-1] for c in first.compressed_chunks] == names
    assert [c.name for c in dry.compressed_chunks] == [c.name for c in first.compressed_chunks]
    assert first.raw_chunks == () and again.compressed_chunks == ()
    assert all_fully_compressed(licensed_url)
    assert stored(licensed_url) == rows
    assert api_answers(licensed_url, FLIGHT_IDS) == answers

    # A re-run of a compressed day stores the same and leaves it compressed.
    report = ingest_partition(licensed_url, REAL_DAYS[1], REAL)
    assert (report.rows_read, report.rows_stored, report.duplicates) == (610, 305, 305)
    assert all_fully_compressed(licensed_url)
    assert stored(licensed_url) == rows

    # A late drop into a compressed day: stored, aggregated, served, compressed again.
    late_drop(tmp_path, date(2024, 1, 5), REAL_DAYS[1], "3376ff01", 40)
    ingest_and_refresh(licensed_url, date(2024, 1, 5), tmp_path)
    assert all_fully_compressed(licensed_url)
    with connect(licensed_url) as conn:
        days = conn.execute(
            "SELECT flight_id, points FROM flight_days WHERE day = '2024-01-02' ORDER BY 1"
        ).fetchall()
    assert days == [("3376ab31", 305), ("3376ff01", 40)]
    late = api_answers(licensed_url, (*FLIGHT_IDS, "3376ff01"))
    assert len(late["3376ff01"]) == 40
    assert late["2024-01-02"] == [("3376ab31", 305), ("3376ff01", 40)]
    assert {k: late[k] for k in answers if k != "2024-01-02"} == {
        k: v for k, v in answers.items() if k != "2024-01-02"
    }

    # The cleaner drops a compressed day past the raw horizon; its aggregates stay.
    with connect(licensed_url, autocommit=True) as conn:
        dropped = clean(conn, date(2024, 8, 10), KEEP_ALL)
        kept = conn.execute(OLD_DAY_AGGREGATES).fetchall()
        left = conn.execute('SELECT min("timestamp") FROM flight_data').fetchone()
    assert [c.range_start.date() for c in dropped.raw_chunks] == [REAL_DAYS[0]]
    assert dropped.compressed_chunks == ()
    assert kept == old_day
    assert left is not None and left[0] >= datetime(2024, 1, 2, tzinfo=UTC)
    assert all_fully_compressed(licensed_url)


# Bytes of flight_data (heap, indexes, compressed chunks) per stored point.
FOOTPRINT = "SELECT hypertable_size('flight_data')::float8 / count(*), count(*) FROM flight_data"


def settled_real_day(url: str) -> tuple[float, float, CleanReport]:
    """Bytes per point of the real OpenSky day as loaded and once the cleaner settled it."""
    day = date(2021, 10, 7)
    ingest_partition(url, day, DATA / "opensky")
    with connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE flight_data")
        before, points = conn.execute(FOOTPRINT).fetchone() or (0.0, 0)
        report = clean(conn, day + timedelta(days=8), KEEP_ALL)
        after, _ = conn.execute(FOOTPRINT).fetchone() or (0.0, 0)
    assert points > 200_000
    return before, after, report


@pytest.mark.licensed
def test_compressed_real_opensky_days_take_under_20_bytes_per_point(licensed_url: str) -> None:
    before, after, report = settled_real_day(licensed_url)
    assert report.compressed_chunks and not report.compacted_chunks
    assert after <= 20 < before, (before, after)


@pytest.mark.apache
def test_compacted_real_opensky_days_take_under_150_bytes_per_point(apache_url: str) -> None:
    before, after, report = settled_real_day(apache_url)
    assert report.compacted_chunks and not report.compressed_chunks
    assert after <= 150 < before, (before, after)


@pytest.mark.apache
def test_the_apache_edition_keeps_a_time_ordered_day_under_150_bytes_per_point(
    apache_url: str, tmp_path: Path
) -> None:
    """Rows uncompressed: the primary key and a BRIN time index, no B-tree on time."""
    day = "2024-03-01"
    reports = sorted(synthetic_day(60_000, day, flights=300), key=lambda m: m.timestamp)
    write_pb(tmp_path / day / "day.pb", reports)
    ingest_partition(apache_url, date.fromisoformat(day), tmp_path)
    with connect(apache_url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE flight_data")
        per_point, points = conn.execute(FOOTPRINT).fetchone() or (0.0, 0)
        methods = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'flight_data' "
            "ORDER BY indexname"
        ).fetchall()
    assert points == 60_000
    assert per_point <= 150, per_point
    assert [name for name, _ in methods] == ["flight_data_pkey", "flight_data_time_brin"]
    assert "USING brin" in methods[1][1]


# The Apache edition's chunks of flight_data: name, total index bytes, and their indexes
# (name, valid).
APACHE_CHUNKS = """
SELECT format('%I.%I', c.chunk_schema, c.chunk_name),
       pg_indexes_size(format('%I.%I', c.chunk_schema, c.chunk_name)::regclass),
       (SELECT array_agg(ARRAY[x.relname, i.indisvalid::text] ORDER BY x.relname)
        FROM pg_index AS i JOIN pg_class AS x ON x.oid = i.indexrelid
        WHERE i.indrelid = format('%I.%I', c.chunk_schema, c.chunk_name)::regclass)
FROM timescaledb_information.chunks AS c
WHERE c.hypertable_name = 'flight_data'
ORDER BY c.range_start
"""


def apache_chunks(url: str) -> list[tuple[str, int, list[list[str]]]]:
    with connect(url) as conn:
        return conn.execute(APACHE_CHUNKS).fetchall()


def time_ordered_day(landing: Path, day: date, n: int, *, north: float = 0.0) -> None:
    """A day of `n` reports from 300 flights in time order, as real drops arrive, each
    `north` degrees further north."""
    reports = sorted(synthetic_day(n, str(day), flights=300), key=lambda m: m.timestamp)
    for report in reports:
        report.latitude += north
    write_pb(landing / str(day) / "day.pb", reports)


@pytest.mark.apache
def test_the_cleaner_compacts_old_apache_days_once_and_again_after_rewrites(
    apache_url: str, tmp_path: Path
) -> None:
    day = date(2024, 3, 1)
    time_ordered_day(tmp_path / "first", day, 40_000)
    ingest_and_refresh(apache_url, day, tmp_path / "first")
    rows = stored(apache_url)
    flights = ("00000000", "0000012b")
    answers = api_answers(apache_url, flights, (day,))
    [(chunk, loaded, indexes)] = apache_chunks(apache_url)

    # A rebuild stopped part way (here: its statement timeout expires while a writer holds
    # the chunk) leaves an invalid copy of an index behind; the next run drops it.
    with connect(apache_url) as writer, connect(apache_url, autocommit=True) as conn:
        writer.execute(
            "UPDATE flight_data SET altitude = altitude WHERE flight_id = %s", (flights[0],)
        )
        conn.execute("SET statement_timeout = '1s'")
        with pytest.raises(psycopg.errors.QueryCanceled):
            compact_chunk(conn, chunk)
        writer.rollback()
    [(_, _, interrupted)] = apache_chunks(apache_url)
    assert sorted(interrupted) == sorted([*indexes, *([f"{n}_ccnew", "false"] for n, _ in indexes)])

    # Before the compression age nothing is rebuilt; past it, once, and a dry run says so.
    with connect(apache_url, autocommit=True) as conn:
        young = clean(conn, day + timedelta(days=6), KEEP_ALL)
        shown = subprocess.run(
            [FLIGHTS, "clean", "--date", str(day + timedelta(days=8)), "--dry-run"],
            capture_output=True,
            text=True,
            env={
                **os.environ,
                "FLIGHTS_DATABASE_URL": apache_url,
                "FLIGHTS_LANDING_ROOT": str(tmp_path / "first"),
            },
            timeout=120,
        )
        assert shown.returncode == 0, shown.stderr
        assert "would rebuild the indexes of 1 chunk," in shown.stdout, shown.stdout
        dry = clean(conn, day + timedelta(days=8), KEEP_ALL, dry_run=True)
        assert apache_chunks(apache_url)[0][1] == loaded
        first = clean(conn, day + timedelta(days=8), KEEP_ALL)
        again = clean(conn, day + timedelta(days=9), KEEP_ALL)
    assert young.compacted_chunks == () and again.compacted_chunks == ()
    assert [c.name for c in dry.compacted_chunks] == [c.name for c in first.compacted_chunks]
    assert [c.name for c in first.compacted_chunks] == [chunk]
    assert first.compressed_chunks == () and first.raw_chunks == ()
    [(_, compacted, same_indexes)] = apache_chunks(apache_url)
    assert compacted < 0.75 * loaded, (loaded, compacted)
    assert same_indexes == indexes and all(valid == "true" for _, valid in indexes)
    assert stored(apache_url) == rows
    assert api_answers(apache_url, flights, (day,)) == answers

    # A rewrite of the whole day (every report moved) grows the indexes: rebuilt again.
    time_ordered_day(tmp_path / "moved", day, 40_000, north=0.5)
    ingest_and_refresh(apache_url, day, tmp_path / "moved")
    moved = stored(apache_url)
    assert len(moved) == len(rows) and moved != rows
    with connect(apache_url, autocommit=True) as conn:
        rebuilt = clean(conn, day + timedelta(days=10), KEEP_ALL)
    assert [c.name for c in rebuilt.compacted_chunks] == [chunk]
    assert stored(apache_url) == moved

    # Dropped by retention, the chunk leaves no compaction record behind.
    with connect(apache_url, autocommit=True) as conn:
        clean(conn, day + timedelta(days=731), KEEP_ALL)
        left = conn.execute("SELECT count(*) FROM compacted_chunks").fetchone()
    assert apache_chunks(apache_url) == [] and left == (0,)
