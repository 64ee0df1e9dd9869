"""Aggregates on both editions: same columns, totals equal to raw data, late drops refreshed."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql

from pipelines.assets.aggregates import CHECK, flight_aggregates
from pipelines.assets.ingest import ingest_drops
from pipelines.assets.resources import FlightStore, LandingZone
from pipelines.definitions import defs
from pipelines.ingest import ingest_partition
from pipelines.warehouse.aggregates import (
    DAY,
    Window,
    partition_window,
    refresh_aggregates,
    refresh_statement,
    timescaledb_version,
    utc_midnight,
)
from pipelines.warehouse.connection import connect
from pipelines.warehouse.editions import edition
from pipelines.warehouse.migrations import migrate
from pipelines.warehouse.retention import RetentionPolicy, clean
from pipelines.warehouse.sqlfiles import load_sql
from tests.conftest import DATA
from tests.drops_factory import write_jsonl

REAL = DATA / "drops"
REAL_DAYS = (date(2022, 8, 2), date(2024, 1, 2))

# The contract readers rely on, in order (first_time .. east_longitude are additions).
COLUMNS = {
    "flight_minutes": [
        ("bucket", "timestamp with time zone"),
        ("flight_id", "character varying"),
        ("points", "bigint"),
        ("first_latitude", "double precision"),
        ("first_longitude", "double precision"),
        ("last_latitude", "double precision"),
        ("last_longitude", "double precision"),
        ("min_altitude", "integer"),
        ("max_altitude", "integer"),
        ("avg_altitude", "double precision"),
        ("avg_airspeed", "double precision"),
        ("max_airspeed", "integer"),
        ("first_time", "timestamp with time zone"),
        ("last_time", "timestamp with time zone"),
        ("min_latitude", "double precision"),
        ("max_latitude", "double precision"),
        ("min_longitude", "double precision"),
        ("max_longitude", "double precision"),
        ("min_east_longitude", "double precision"),
        ("max_west_longitude", "double precision"),
        ("west_longitude", "double precision"),
        ("east_longitude", "double precision"),
    ],
    "flight_days": [
        ("day", "timestamp with time zone"),
        ("flight_id", "character varying"),
        ("first_seen", "timestamp with time zone"),
        ("last_seen", "timestamp with time zone"),
        ("points", "bigint"),
        ("max_altitude", "integer"),
        ("max_airspeed", "integer"),
        ("min_latitude", "double precision"),
        ("max_latitude", "double precision"),
        ("min_longitude", "double precision"),
        ("max_longitude", "double precision"),
        ("min_east_longitude", "double precision"),
        ("max_west_longitude", "double precision"),
        ("west_longitude", "double precision"),
        ("east_longitude", "double precision"),
    ],
    "traffic_hours": [
        ("bucket", "timestamp with time zone"),
        ("flights", "bigint"),
        ("points", "bigint"),
    ],
}
# A flight's hours have its days' columns, the first named for the hour.
COLUMNS["flight_hours"] = [("hour", "timestamp with time zone"), *COLUMNS["flight_days"][1:]]

# Each aggregate recomputed from raw points: what it must hold, on either edition.
EXPECTED = {
    "flight_minutes": """
        SELECT time_bucket('1 minute', "timestamp"), flight_id, count(*),
               first(latitude, "timestamp"), first(longitude, "timestamp"),
               last(latitude, "timestamp"), last(longitude, "timestamp"),
               min(altitude), max(altitude), round(avg(altitude)::float8::numeric, 6),
               round(avg(airspeed)::float8::numeric, 6), max(airspeed), min("timestamp"),
               max("timestamp"), min(latitude), max(latitude), min(longitude), max(longitude),
               min(longitude) FILTER (WHERE longitude >= 0),
               max(longitude) FILTER (WHERE longitude < 0)
        FROM flight_data GROUP BY 1, 2""",
    **{
        name: f"""
        SELECT time_bucket('1 {unit}', "timestamp"), flight_id, min("timestamp"),
               max("timestamp"), count(*), max(altitude), max(airspeed), min(latitude),
               max(latitude), min(longitude), max(longitude),
               min(longitude) FILTER (WHERE longitude >= 0),
               max(longitude) FILTER (WHERE longitude < 0)
        FROM flight_data GROUP BY 1, 2"""
        for name, unit in (("flight_hours", "hour"), ("flight_days", "day"))
    },
    "traffic_hours": """
        SELECT time_bucket('1 hour', "timestamp"), count(DISTINCT flight_id), count(*)
        FROM flight_data GROUP BY 1""",
}
STORED = {
    "flight_minutes": """
        SELECT bucket, flight_id, points, first_latitude, first_longitude, last_latitude,
               last_longitude, min_altitude, max_altitude, round(avg_altitude::numeric, 6),
               round(avg_airspeed::numeric, 6), max_airspeed, first_time, last_time,
               min_latitude, max_latitude, min_longitude, max_longitude, min_east_longitude,
               max_west_longitude
        FROM flight_minutes""",
    **{
        name: f"""
        SELECT {unit}, flight_id, first_seen, last_seen, points, max_altitude, max_airspeed,
               min_latitude, max_latitude, min_longitude, max_longitude, min_east_longitude,
               max_west_longitude
        FROM {name}"""
        for name, unit in (("flight_hours", "hour"), ("flight_days", "day"))
    },
    "traffic_hours": "SELECT * FROM traffic_hours",
}


def ingest_real(url: str) -> None:
    for day in REAL_DAYS:
        ingest_partition(url, day, REAL)


def refresh_partition(url: str, day: date) -> None:
    with connect(url, autocommit=True) as conn:
        window = partition_window(conn, day)
        assert window is not None
        refresh_aggregates(conn, window.start, window.end)


def assert_aggregates_match_raw(url: str) -> None:
    with connect(url) as conn:
        for name, expected in EXPECTED.items():
            want = sorted(conn.execute(expected).fetchall())
            have = sorted(conn.execute(STORED[name]).fetchall())
            assert have == want, name


def test_aggregates_have_the_same_columns_on_both_editions(db_url: str) -> None:
    with connect(db_url) as conn:
        for name, columns in COLUMNS.items():
            found = conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_name = %s "
                "ORDER BY ordinal_position",
                (name,),
            ).fetchall()
            assert found == columns, name


def test_aggregates_of_the_real_drops_equal_their_raw_points(db_url: str) -> None:
    ingest_real(db_url)
    for day in REAL_DAYS:
        refresh_partition(db_url, day)
    assert_aggregates_match_raw(db_url)
    with connect(db_url) as conn:
        totals = conn.execute(
            "SELECT (SELECT count(*) FROM flight_data), "
            "(SELECT sum(points)::bigint FROM flight_minutes), "
            "(SELECT sum(points)::bigint FROM flight_days), "
            "(SELECT sum(points)::bigint FROM traffic_hours), "
            "(SELECT count(*) FROM flight_days)"
        ).fetchone()
        jl516 = conn.execute(
            "SELECT first_seen, last_seen, max_altitude FROM flight_days "
            "WHERE flight_id = '3376ab31'"
        ).fetchone()
    assert totals == (1176, 1176, 1176, 1176, 2)
    assert jl516 == (
        datetime(2024, 1, 2, 7, 22, 55, tzinfo=UTC),
        datetime(2024, 1, 2, 8, 47, 23, tzinfo=UTC),
        40000,
    )


def test_a_refresh_covers_whole_utc_days_and_reports_them(db_url: str) -> None:
    ingest_real(db_url)
    with connect(db_url, autocommit=True) as conn:
        report = refresh_aggregates(
            conn, datetime(2024, 1, 2, 7, tzinfo=UTC), datetime(2024, 1, 2, 8, tzinfo=UTC)
        )
        minutes = conn.execute("SELECT sum(points)::bigint FROM flight_minutes").fetchone()
    assert report.refreshed == Window.of_days(date(2024, 1, 2), date(2024, 1, 3))
    assert report.edition in ("apache", "timescale")
    assert report.below_horizon is None
    assert minutes == (305,)


def late_drop(landing: Path, day: date, of_day: date, flight_id: str, n: int) -> None:
    """A drop for partition `day` holding `n` points of a flight flown on `of_day`."""
    start = datetime(of_day.year, of_day.month, of_day.day, 21, 10, tzinfo=UTC)
    write_jsonl(
        landing / day.isoformat() / f"late_{flight_id}.jsonl",
        [
            {
                "flight_id": flight_id,
                "latitude": 35.55 + i * 0.01,
                "longitude": 139.78 - i * 0.01,
                "altitude": 1000 + 200 * i,
                "airspeed": 160 + i,
                "timestamp": (start + timedelta(seconds=15 * i)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
            for i in range(n)
        ],
    )


def materialize(url: str, partition: str) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [flight_aggregates],
        partition_key=partition,
        resources={"flight_store": FlightStore(database_url=url)},
    )


def test_a_late_drop_for_an_old_day_refreshes_that_days_aggregates(
    db_url: str, tmp_path: Path
) -> None:
    ingest_real(db_url)
    for day in REAL_DAYS:
        assert materialize(db_url, day.isoformat()).success
    late_drop(tmp_path, date(2024, 1, 5), date(2024, 1, 2), "3376ff01", 40)
    ingest_partition(db_url, date(2024, 1, 5), tmp_path)

    result = materialize(db_url, "2024-01-05")
    assert result.success
    (materialization,) = result.asset_materializations_for_node("flight_aggregates")
    assert materialization.metadata["refreshed_window"].value == (
        "2024-01-02T00:00:00+00:00 .. 2024-01-03T00:00:00+00:00"
    )
    assert materialization.metadata["points"].value == 305 + 40
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.check_name == CHECK and evaluation.passed
    assert evaluation.metadata["raw_points"].value == 345
    with connect(db_url) as conn:
        days = conn.execute(
            "SELECT flight_id, points FROM flight_days WHERE day = '2024-01-02' ORDER BY 1"
        ).fetchall()
        traffic = conn.execute(
            "SELECT flights FROM traffic_hours WHERE bucket = '2024-01-02 21:00+00'"
        ).fetchone()
    assert days == [("3376ab31", 305), ("3376ff01", 40)]
    assert traffic == (1,)
    assert_aggregates_match_raw(db_url)


def drop_spanning(landing: Path, day: date, first_day: date, last_day: date) -> None:
    """Partition `day`'s drop: points from its first to its last second, and one point on
    each other day from first_day to last_day (late points, a flight across midnight)."""
    instants = [utc_midnight(day) + timedelta(seconds=s) for s in (10, 43_200, 86_390)]
    instants += [
        utc_midnight(first_day + timedelta(days=k)) + timedelta(hours=12)
        for k in range((last_day - first_day).days + 1)
        if first_day + timedelta(days=k) != day
    ]
    write_jsonl(
        landing / day.isoformat() / "drop.jsonl",
        [
            {
                "flight_id": "span01",
                "latitude": 46.0,
                "longitude": 7.0,
                "altitude": 9000,
                "airspeed": 300,
                "timestamp": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
            for at in instants
        ],
    )


@pytest.mark.apache
@settings(
    max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    first=st.dates(date(2019, 1, 10), date(2023, 12, 1)),
    spans=st.lists(st.tuples(st.integers(-2, 0), st.integers(0, 1)), min_size=1, max_size=3),
)
def test_a_backfill_refreshes_each_loaded_day_once_and_a_neighbour_only_for_its_points(
    apache_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
    first: date,
    spans: list[tuple[int, int]],
) -> None:
    """Consecutive days each refresh their own day only; a neighbour is recomputed only by
    the partition whose drop held points of it."""
    landing = tmp_path_factory.mktemp("landing")
    monkeypatch.setenv("FLIGHTS_DATABASE_URL", apache_url)
    monkeypatch.setenv("FLIGHTS_LANDING_ROOT", str(landing))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path_factory.mktemp("dagster_home")))
    days = [first + timedelta(days=i) for i in range(len(spans))]
    for day, (back, ahead) in zip(days, spans, strict=True):
        drop_spanning(landing, day, day + timedelta(days=back), day + timedelta(days=ahead))
    job = defs.resolve_job_def("ingest_job")
    refreshed: list[str] = []
    with dg.DagsterInstance.ephemeral() as instance:
        for day in days:
            result = job.execute_in_process(partition_key=day.isoformat(), instance=instance)
            assert result.success
            (materialization,) = result.asset_materializations_for_node("flight_aggregates")
            refreshed.append(materialization.metadata["refreshed_window"].value)
    expected = [
        str(Window.of_days(day + timedelta(days=back), day + timedelta(days=ahead + 1)))
        for day, (back, ahead) in zip(days, spans, strict=True)
    ]
    assert refreshed == expected


@pytest.mark.apache
def test_every_ingested_partition_requests_its_aggregates(apache_url: str) -> None:
    """Old partitions too, since a late drop's day is not the latest partition."""
    instance = dg.DagsterInstance.ephemeral()
    selection = dg.AssetSelection.assets(flight_aggregates)
    first = dg.evaluate_automation_conditions(
        defs=defs, instance=instance, asset_selection=selection
    )
    assert first.total_requested == 0
    for day in REAL_DAYS:
        ingest = dg.materialize(
            [ingest_drops],
            partition_key=day.isoformat(),
            instance=instance,
            resources={
                "flight_store": FlightStore(database_url=apache_url),
                "landing": LandingZone(root=str(REAL)),
            },
        )
        assert ingest.success
    after = dg.evaluate_automation_conditions(
        defs=defs, instance=instance, asset_selection=selection, cursor=first.cursor
    )
    (result,) = after.results
    assert sorted(result.true_subset.expensively_compute_partition_keys()) == [
        day.isoformat() for day in REAL_DAYS
    ]
    assert "flight_aggregates_automation" in {s.name for s in defs.sensors}


def test_a_partition_without_points_materializes_with_nothing_refreshed(db_url: str) -> None:
    result = materialize(db_url, "2023-05-05")
    assert result.success
    (materialization,) = result.asset_materializations_for_node("flight_aggregates")
    assert materialization.metadata["refreshed_window"].value == (
        "2023-05-05T00:00:00+00:00 .. 2023-05-06T00:00:00+00:00"
    )
    assert materialization.metadata["points"].value == 0


def test_realtime_aggregation_is_a_setting_of_the_licensed_edition(db_url: str) -> None:
    """Off (the default), both editions show only refreshed aggregates; on, the licensed
    edition also shows raw points not yet refreshed."""
    ingest_real(db_url)
    with connect(db_url, autocommit=True) as conn:
        on = refresh_aggregates(
            conn,
            datetime(2022, 8, 2, tzinfo=UTC),
            datetime(2022, 8, 3, tzinfo=UTC),
            realtime=True,
        )
        seen_on = conn.execute("SELECT sum(points)::bigint FROM flight_minutes").fetchone()
        refresh_aggregates(
            conn,
            datetime(2022, 8, 2, tzinfo=UTC),
            datetime(2022, 8, 3, tzinfo=UTC),
            realtime=False,
        )
        seen_off = conn.execute("SELECT sum(points)::bigint FROM flight_minutes").fetchone()
    # 2024-01-02 (305 points) was never refreshed.
    assert seen_off == (871,)
    assert seen_on == ((871 + 305,) if on.edition == "timescale" else (871,))


@pytest.mark.parametrize(
    ("start", "end", "horizon", "expected"),
    [
        ("2024-01-02T05:00", "2024-01-02T06:00", None, ("2024-01-02", "2024-01-03")),
        ("2024-01-01T23:30", "2024-01-02T00:00", None, ("2024-01-01", "2024-01-02")),
        ("2024-01-01T23:30", "2024-01-03T00:00:01", "2024-01-02", ("2024-01-02", "2024-01-04")),
        ("2024-01-01T00:00", "2024-01-02T00:00", "2024-01-02", None),
    ],
)
def test_windows_are_whole_utc_days_above_the_horizon(
    start: str, end: str, horizon: str | None, expected: tuple[str, str] | None
) -> None:
    def at(text: str) -> datetime:
        return datetime.fromisoformat(text).replace(tzinfo=UTC)

    window = Window(at(start), at(end)).whole_days().above(at(horizon) if horizon else None)
    if expected is None:
        assert window is None
    else:
        assert window == Window(at(expected[0]), at(expected[1]))
    with pytest.raises(ValueError, match="timezone-aware"):
        Window(datetime(2024, 1, 1), datetime(2024, 1, 2))  # noqa: DTZ001


def test_a_late_file_into_an_ingested_day_keeps_every_bucket(db_url: str, tmp_path: Path) -> None:
    """TimescaleDB 2.28 refreshes in batches of 10 buckets and could drop a batch's last one;
    points at 07:36:10 and on 21:16:00 sit on such edges of the day's invalidated range."""
    day = date(2024, 1, 2)
    ingest_real(db_url)
    for each in REAL_DAYS:
        assert materialize(db_url, each.isoformat()).success
    late_drop(tmp_path, day, day, "3376ff02", 25)  # 21:10:00 .. 21:16:00, every 15 s
    write_jsonl(
        tmp_path / day.isoformat() / "late_morning.jsonl",
        [
            {
                "flight_id": "3376ff03",
                "latitude": 35.0,
                "longitude": 139.0,
                "timestamp": "2024-01-02T07:36:10Z",
            }
        ],
    )
    for drop in (REAL / day.isoformat()).iterdir():
        (tmp_path / day.isoformat() / drop.name).write_bytes(drop.read_bytes())
    ingest_partition(db_url, day, tmp_path)
    result = materialize(db_url, day.isoformat())
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.passed and evaluation.metadata["raw_points"].value == 305 + 25 + 1
    with connect(db_url) as conn:
        buckets = conn.execute(
            "SELECT bucket, points FROM flight_minutes WHERE flight_id IN ('3376ff02', '3376ff03')"
            " ORDER BY bucket"
        ).fetchall()
    assert [(b.strftime("%H:%M"), n) for b, n in buckets] == [
        ("07:36", 1),
        ("21:10", 4),
        ("21:11", 4),
        ("21:12", 4),
        ("21:13", 4),
        ("21:14", 4),
        ("21:15", 4),
        ("21:16", 1),
    ]
    assert_aggregates_match_raw(db_url)


@pytest.mark.parametrize(
    ("version", "unbatched"),
    [((2, 19, 3), False), ((2, 20, 9), False), ((2, 21, 0), True), ((2, 28, 3), True)],
)
def test_refreshes_turn_batching_off_where_the_server_takes_options(
    version: tuple[int, ...], unbatched: bool
) -> None:
    assert refresh_statement(version).endswith("_unbatched") is unbatched


def test_the_servers_version_picks_a_refresh_it_accepts(db_url: str) -> None:
    with connect(db_url, autocommit=True) as conn:
        version = timescaledb_version(conn)
        assert version >= (2, 19)
        if edition(conn) == "timescale":
            conn.execute(
                load_sql(refresh_statement(version)),
                {
                    "aggregate": "flight_minutes",
                    "start": datetime(2024, 1, 1, tzinfo=UTC),
                    "end": datetime(2024, 1, 2, tzinfo=UTC),
                },
            )


# Boxes across the antimeridian: flights as (flight, time, longitude) rows in two UTC days.
BOX_DAY = datetime(2024, 3, 10, tzinfo=UTC)
BoxRow = tuple[str, datetime, float]


def smallest_box(longitudes: list[float]) -> tuple[float, float]:
    """The smallest arc holding every longitude, as (west, east), found by trying each one as
    the west edge: an independent reference for the stored boxes."""
    return min(
        ((west, max(longitudes, key=lambda x: (x - west) % 360)) for west in longitudes),
        key=lambda box: (box[1] - box[0]) % 360,
    )


def expected_boxes(rows: list[BoxRow], unit: timedelta) -> dict[tuple[str, datetime], tuple]:
    groups: dict[tuple[str, datetime], list[float]] = {}
    for flight, moment, longitude in rows:
        bucket = moment - (moment - BOX_DAY) % unit
        groups.setdefault((flight, bucket), []).append(longitude)
    return {key: smallest_box(lons) for key, lons in groups.items()}


def stored_boxes(url: str, relation: str, time_column: str) -> dict[tuple[str, datetime], tuple]:
    with connect(url) as conn:
        rows = conn.execute(
            sql.SQL("SELECT flight_id, {}, west_longitude, east_longitude FROM {}").format(
                sql.Identifier(time_column), sql.Identifier(relation)
            )
        ).fetchall()
    return {(flight, at): (west, east) for flight, at, west, east in rows}


def replace_points(url: str, rows: list[BoxRow]) -> None:
    """The rows become flight_data's only points, and the aggregates are refreshed."""
    with connect(url) as conn:
        conn.execute("DELETE FROM flight_data")
        with conn.cursor().copy(
            'COPY flight_data (flight_id, "timestamp", latitude, longitude) FROM STDIN'
        ) as copy:
            for flight, moment, longitude in rows:
                copy.write_row((flight, moment, 10.0, longitude))
        conn.commit()
    with connect(url, autocommit=True) as conn:
        refresh_aggregates(conn, BOX_DAY, BOX_DAY + 2 * DAY)


def assert_stored_boxes_are_smallest(url: str, rows: list[BoxRow]) -> None:
    assert stored_boxes(url, "flight_minutes", "bucket") == expected_boxes(
        rows, timedelta(minutes=1)
    )
    assert stored_boxes(url, "flight_hours", "hour") == expected_boxes(rows, timedelta(hours=1))
    assert stored_boxes(url, "flight_days", "day") == expected_boxes(rows, DAY)


def _wrapped(micro_degrees: int) -> float:
    """Micro-degrees folded into [-180, 180) east, then moved off -180 (the same meridian as
    180, which would make two boxes equally small)."""
    folded = (micro_degrees + 180_000_000) % 360_000_000 - 180_000_000
    return max(folded, -179_999_999) / 1e6


@st.composite
def flights_near_and_across(draw: st.DrawFn) -> list[BoxRow]:
    """Up to four flights, each within 80 degrees of its centre (so its smallest box is
    unique), centred on the antimeridian, on Greenwich or anywhere, over two days."""
    rows: list[BoxRow] = []
    for n in range(draw(st.integers(1, 4))):
        centre = draw(
            st.one_of(
                st.sampled_from([180_000_000, 179_900_000, -179_900_000, 0]),
                st.integers(-180_000_000, 179_999_999),
            )
        )
        spread = draw(st.sampled_from([100_000, 5_000_000, 80_000_000]))
        seconds = draw(st.lists(st.integers(0, 2 * 86_400 - 1), min_size=1, max_size=40))
        for second in sorted(set(seconds)):
            offset = draw(st.integers(-spread, spread))
            rows.append((f"box{n}", BOX_DAY + timedelta(seconds=second), _wrapped(centre + offset)))
    return rows


def test_stored_boxes_are_the_smallest_across_the_antimeridian(db_url: str) -> None:
    """Each minute's and day's stored box (west > east: across the antimeridian) is the
    smallest arc holding the flight's reports, computed in Python from the raw points."""

    @settings(
        max_examples=25,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(rows=flights_near_and_across())
    def generated(rows: list[BoxRow]) -> None:
        replace_points(db_url, rows)
        assert_stored_boxes_are_smallest(db_url, rows)

    crossing = [
        ("across", BOX_DAY + timedelta(seconds=s), lon)
        for s, lon in ((0, 179.97), (20, -179.98), (70, 179.5), (90, -179.2))
    ]
    replace_points(db_url, crossing)
    assert_stored_boxes_are_smallest(db_url, crossing)
    with connect(db_url) as conn:
        assert conn.execute(
            "SELECT west_longitude, east_longitude FROM flight_days"
        ).fetchall() == [(179.5, -179.2)]
    generated()


def test_a_database_with_aggregates_gets_its_boxes_when_migrated(empty_db: str) -> None:
    """Aggregates refreshed before the boxes existed (schema 009) hold them once migrated:
    the Apache rollups are filled in place, the continuous aggregates made again."""
    with connect(empty_db) as conn:
        assert migrate(conn, "009")[-1].version == "009"
    rows = [
        ("across", BOX_DAY + timedelta(minutes=m, seconds=s), lon)
        for m in range(0, 600, 7)
        for s, lon in ((0, 179.9 - m / 1000), (30, -179.9 + m / 1000))
    ] + [("plain", BOX_DAY + timedelta(hours=30, seconds=s), 7 + s / 100) for s in range(50)]
    replace_points(empty_db, rows)
    with connect(empty_db) as conn:
        assert [m.version for m in migrate(conn)][:2] == ["010", "011"]
    assert_stored_boxes_are_smallest(empty_db, rows)
    assert_aggregates_match_raw(empty_db)


def test_aggregates_of_days_whose_raw_points_are_gone_survive_the_box_migration(
    empty_db: str,
) -> None:
    """The cleaner dropped a day's raw points and kept its aggregates: migrating to the boxes
    keeps those rows as they were (continuous aggregates are made again: they cannot be
    computed again from raw points that are gone), with a box holding their reports."""
    with connect(empty_db) as conn:
        migrate(conn, "009")
    gone = [("gone", BOX_DAY + timedelta(minutes=m), 179.5 if m % 2 else -179.5) for m in range(90)]
    # A minute with reports on both sides: its inner extremes are unknown once raw is gone.
    mixed = [("mixed", BOX_DAY + timedelta(seconds=s), lon) for s, lon in ((0, 179.6), (9, -179.6))]
    kept = [("kept", BOX_DAY + DAY + timedelta(seconds=s), 7 + s / 100) for s in range(50)]
    replace_points(empty_db, gone + mixed + kept)
    with connect(empty_db, autocommit=True) as conn:
        # At 009 there is no record of compactions (migration 013): days are kept as loaded.
        policy = RetentionPolicy(compress_after_days=RetentionPolicy.raw_days)
        clean(conn, (BOX_DAY + DAY).date() + timedelta(days=90), policy)
        assert conn.execute("SELECT min(timestamp) FROM flight_data").fetchone() == (kept[0][1],)
    old_columns = {
        "flight_minutes": "bucket, flight_id, points, first_longitude, last_longitude, "
        "min_longitude, max_longitude, first_time, last_time",
        "flight_days": "day, flight_id, points, first_seen, last_seen, min_longitude, "
        "max_longitude",
        "traffic_hours": "bucket, flights, points",
    }

    def snapshot() -> dict[str, list[tuple]]:
        with connect(empty_db) as conn:
            return {
                name: conn.execute(
                    sql.SQL("SELECT {} FROM {} ORDER BY 1, 2").format(
                        sql.SQL(columns), sql.Identifier(name)
                    )
                ).fetchall()
                for name, columns in old_columns.items()
            }

    before = snapshot()
    assert len(before["flight_minutes"]) == 90 + 1 + 1
    with connect(empty_db) as conn:
        migrate(conn)
    assert snapshot() == before
    boxes = stored_boxes(empty_db, "flight_days", "day")
    # Days of minutes on one side each are exact; a minute on both sides keeps the span
    # through Greenwich, which holds its reports.
    assert boxes[("gone", BOX_DAY)] == (179.5, -179.5)
    assert boxes[("mixed", BOX_DAY)] == (-179.6, 179.6)
    assert boxes[("kept", BOX_DAY + DAY)] == smallest_box([lon for _, _, lon in kept])
    minutes = stored_boxes(empty_db, "flight_minutes", "bucket")
    assert all(minutes[("gone", at)] == (lon, lon) for _, at, lon in gone)
    assert minutes[("mixed", BOX_DAY)] == (-179.6, 179.6)
    # The hours (migration 014) are built from the minutes, below the raw horizon too.
    with connect(empty_db) as conn:
        hours = conn.execute(
            "SELECT hour, flight_id, first_seen, last_seen, points, west_longitude, "
            "east_longitude FROM flight_hours ORDER BY 1, 2"
        ).fetchall()
    assert hours == [
        (BOX_DAY, "gone", gone[0][1], gone[59][1], 60, 179.5, -179.5),
        (BOX_DAY, "mixed", BOX_DAY, BOX_DAY + timedelta(seconds=9), 2, -179.6, 179.6),
        (BOX_DAY + timedelta(hours=1), "gone", gone[60][1], gone[-1][1], 30, 179.5, -179.5),
        (BOX_DAY + DAY, "kept", kept[0][1], kept[-1][1], 50, *boxes[("kept", BOX_DAY + DAY)]),
    ]
