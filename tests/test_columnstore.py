"""Raw days in the columnstore (licensed edition): compressed by the cleaner, and still
written (re-runs, late drops), aggregated, read through the API and dropped as before."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pipelines.api.validation import to_timestamp as ts
from pipelines.ingest import ingest_partition
from pipelines.proto import flight_pb2 as pb
from pipelines.warehouse.aggregates import partition_window, refresh_aggregates
from pipelines.warehouse.connection import connect
from pipelines.warehouse.migrations import migrate
from pipelines.warehouse.retention import RetentionPolicy, clean
from tests.api import serving, stub_for
from tests.conftest import DATA
from tests.drops_factory import synthetic_day, write_pb
from tests.test_aggregates import late_drop

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


def api_answers(url: str, flight_ids: tuple[str, ...]) -> dict[str, Any]:
    """Full tracks, a downsampled one, and each flight's day listed, through the API."""
    answers: dict[str, Any] = {}
    with serving(url) as server, stub_for(server.port) as stub:
        for flight_id in flight_ids:
            track = stub.GetFlightData(pb.FlightDataRequest(flight_id=flight_id))
            answers[flight_id] = [(p.timestamp, p.latitude, p.altitude) for p in track.data]
            few = stub.GetFlightData(pb.FlightDataRequest(flight_id=flight_id, max_points=20))
            answers[f"{flight_id} max 20"] = [p.timestamp for p in few.data]
        for day in REAL_DAYS:
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


@pytest.mark.licensed
def test_compressed_real_opensky_days_take_under_20_bytes_per_point(licensed_url: str) -> None:
    opensky = DATA / "opensky"
    day = date(2021, 10, 7)
    ingest_partition(licensed_url, day, opensky)
    with connect(licensed_url, autocommit=True) as conn:
        before, points = conn.execute(FOOTPRINT).fetchone() or (0.0, 0)
        report = clean(conn, day + timedelta(days=8), KEEP_ALL)
        after, _ = conn.execute(FOOTPRINT).fetchone() or (0.0, 0)
    assert points > 200_000 and report.compressed_chunks
    assert after <= 20 < before, (before, after)


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
