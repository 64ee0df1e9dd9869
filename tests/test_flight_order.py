"""Exact OpenSky data whatever the order: position reports rather than state vectors, and
flight identity across midnight that does not depend on which day arrives first.

The days are built from the bundled real Paris rows (samples/opensky/2021-10-07), moved so
that their three hours straddle two consecutive midnights, with stale repeats written into
them as OpenSky writes them: the last known position and its `lastposupdate` carried on
while `time` and the other fields advance.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from itertools import permutations
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from pipelines.assets.ingest import stored_day_checks
from pipelines.assets.resources import FlightStore
from pipelines.ingest import ingest_partition
from pipelines.warehouse.aggregates import partition_window, refresh_aggregates
from pipelines.warehouse.connection import connect
from pipelines.warehouse.ingest_checks import aircraft_instants_twice
from tests.conftest import DATA

PARIS = DATA / "opensky" / "2021-10-07"
DAYS = (date(2023, 5, 14), date(2023, 5, 15), date(2023, 5, 16))
TIME_COLUMNS = ("time", "lastposupdate", "lastcontact")

# What the store holds, without row versions or wall-clock columns.
CONTENT = {
    "flight_data": "SELECT flight_id, timestamp, latitude, longitude, altitude, airspeed, "
    "track, vertical_rate, on_ground, squawk FROM flight_data",
    "flight_metadata": "SELECT flight_id, airline, flight_number, departure_airport, "
    "arrival_airport, icao24, callsign FROM flight_metadata",
    "flight_minutes": "SELECT bucket, flight_id, points, first_latitude, first_longitude, "
    "last_latitude, last_longitude, min_altitude, max_altitude, round(avg_altitude::numeric, 6),"
    " round(avg_airspeed::numeric, 6), max_airspeed, first_time, last_time, min_latitude, "
    "max_latitude, min_longitude, max_longitude FROM flight_minutes",
    "flight_days": "SELECT * FROM flight_days",
    "traffic_hours": "SELECT * FROM traffic_hours",
    "ledger": "SELECT partition_day, files, rows_read, rows_stored, rows_quarantined, "
    "duplicates, min_timestamp, max_timestamp, fingerprint, carried_state FROM partition_loads",
    "quarantine": "SELECT partition_day, source_file, line, reason FROM quarantine",
}


def paris_rows(every_nth_aircraft: int) -> pd.DataFrame:
    """The real rows of a share of the aircraft, as text, in file order."""
    table = pd.concat(
        [pd.read_csv(p, dtype=str, keep_default_na=False) for p in sorted(PARIS.glob("*.gz"))],
        ignore_index=True,
    )
    keep = table["icao24"].map(lambda a: int(a, 16) % every_nth_aircraft == 0)
    return table[keep].reset_index(drop=True)


def with_stale_repeats(table: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Runs of 1 to 4 rows of each aircraft repeat the position before them, as OpenSky's
    state vectors do when no new position arrived: `lat`, `lon` and `lastposupdate` stay,
    `time` and every other field move on."""
    out = table.copy()
    placed = out["lat"] != ""
    for _, index in out[placed].groupby("icao24", sort=False).groups.items():
        rows = np.asarray(index)
        i = int(rng.integers(1, 6))
        while i < len(rows):
            run = int(rng.integers(1, 5))
            source = rows[i - 1]
            for target in rows[i : i + run]:
                for column in ("lat", "lon", "lastposupdate"):
                    out.at[target, column] = out.at[source, column]
            i += run + int(rng.integers(2, 12))
    return out


def write_hourly(table: pd.DataFrame, root: Path, shift: int) -> None:
    """The rows moved by `shift` seconds, as OpenSky's hourly files in their day folders."""
    moved = table.copy()
    for column in TIME_COLUMNS:
        seconds = pd.to_numeric(moved[column], errors="coerce") + shift
        text = seconds.map("{:.0f}".format if column == "time" else "{:.3f}".format)
        moved[column] = text.where(seconds.notna(), "")
    hours = pd.to_numeric(moved["time"]) // 3600
    for hour, rows in moved.groupby(hours, sort=True):
        start = datetime.fromtimestamp(int(hour) * 3600, UTC)
        folder = root / start.date().isoformat()
        folder.mkdir(parents=True, exist_ok=True)
        name = folder / f"states_{start:%Y-%m-%d-%H}.csv.gz"
        name.write_bytes(gzip.compress(rows.to_csv(index=False).encode()))


def three_days(root: Path) -> pd.DataFrame:
    """Paris 12:00-15:00 twice: 22:30-01:30 across each of the two midnights between the
    three days, the second copy with stale repeats. Returns every row written."""
    table = paris_rows(every_nth_aircraft=5)
    base = int(datetime(2021, 10, 7, 12, tzinfo=UTC).timestamp())
    copies = []
    for k, day in enumerate(DAYS[:2]):
        start = int(datetime(day.year, day.month, day.day, 22, 30, tzinfo=UTC).timestamp())
        rows = with_stale_repeats(table, np.random.default_rng(k)) if k else table
        write_hourly(rows, root, start - base)
        copies.append(rows.assign(shift=start - base))
    return pd.concat(copies, ignore_index=True)


def expected_reports(rows: pd.DataFrame) -> int:
    """Position reports among the rows, counted independently of the pipeline: per aircraft
    and day in time order, a positioned row whose `lastposupdate` is later than every earlier
    one and falls in its own row's day, and which, off the ground, is not at exactly the
    place of the row before it."""
    placed = rows[rows["lat"] != ""].copy()
    placed["t"] = placed["time"].astype(float) + placed["shift"]
    placed["p"] = placed["lastposupdate"].astype(float) + placed["shift"]
    placed["day"] = placed["t"] // 86400
    placed = placed.sort_values(["icao24", "t"], kind="stable")
    by_day = placed.groupby(["icao24", "day"])
    earlier = by_day["p"].transform(lambda p: p.cummax().shift(fill_value=-np.inf))
    same_place = (placed["lat"].astype(float) == by_day["lat"].shift().astype(float)) & (
        placed["lon"].astype(float) == by_day["lon"].shift().astype(float)
    )
    fresh = (placed["p"] > earlier) & (placed["p"] // 86400 == placed["day"])
    return int((fresh & ~(same_place & (placed["onground"] != "True"))).sum())


def content(url: str) -> dict[str, str]:
    with connect(url) as conn:
        return {
            name: hashlib.sha256(
                repr(sorted(conn.execute(query).fetchall(), key=repr)).encode()
            ).hexdigest()
            for name, query in CONTENT.items()
        }


def load(url: str, day: date, landing: Path) -> None:
    """One partition as the ingest job runs it: the load, then its aggregates."""
    ingest_partition(url, day, landing)
    with connect(url, autocommit=True) as conn:
        window = partition_window(conn, day)
        if window is not None:
            refresh_aggregates(conn, window.start, window.end)


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    root = tmp_path_factory.mktemp("landing")
    return root, three_days(root)


@pytest.mark.apache
def test_every_order_rerun_and_parallel_backfill_stores_the_same(
    apache_db_factory: Callable[[], str], landing: tuple[Path, pd.DataFrame]
) -> None:
    root, rows = landing
    assert sorted(p.name for p in root.iterdir()) == [d.isoformat() for d in DAYS]
    in_order = apache_db_factory()
    for day in DAYS:
        load(in_order, day, root)
    reference = content(in_order)

    with connect(in_order) as conn:
        stored, quarantined, reads, duplicates = conn.execute(
            "SELECT sum(rows_stored), sum(rows_quarantined), sum(rows_read), sum(duplicates) "
            "FROM partition_loads"
        ).fetchone()
        reasons = {r for (r,) in conn.execute("SELECT reason FROM quarantine")}
        across = conn.execute(
            "SELECT count(*) FILTER (WHERE first < '2023-05-15' AND last >= '2023-05-15'), "
            "count(*) FILTER (WHERE first < '2023-05-16' AND last >= '2023-05-16') FROM "
            "(SELECT min(timestamp) AS first, max(timestamp) AS last FROM flight_data "
            "GROUP BY flight_id) AS f"
        ).fetchone()
        for day in DAYS:
            assert aircraft_instants_twice(conn, day) == 0
    assert reads == len(rows)
    # Stored or quarantined (real altitudes out of range): every position report, once.
    assert stored + quarantined == expected_reports(rows)
    assert all(r.startswith("altitude: in_range") for r in reasons)
    assert duplicates > 0 and across[0] > 5 and across[1] > 5

    for order in permutations(DAYS):
        url = apache_db_factory()
        for day in order:
            load(url, day, root)
        assert content(url) == reference, order
        for day in (order[1], order[0], order[2]):  # re-runs, in yet another order
            load(url, day, root)
        assert content(url) == reference, ("re-run", order)

    parallel = apache_db_factory()
    with ThreadPoolExecutor(max_workers=3) as pool:
        list(pool.map(lambda day: load(parallel, day, root), DAYS))
    assert content(parallel) == reference


def test_the_later_day_first_then_the_earlier_keys_each_point_once(
    db_url: str, landing: tuple[Path, pd.DataFrame]
) -> None:
    """On both editions: the continuation is re-keyed when its earlier day arrives, and the
    check that would catch a position under two flights stays at zero."""
    root, _ = landing
    load(db_url, DAYS[1], root)
    with connect(db_url) as conn:
        alone = {r[0] for r in conn.execute("SELECT DISTINCT flight_id FROM flight_data")}
    load(db_url, DAYS[0], root)
    with connect(db_url) as conn:
        now = {
            r[0]
            for r in conn.execute(
                "SELECT DISTINCT flight_id FROM flight_data WHERE timestamp >= '2023-05-15'"
            )
        }
        (reidentified,) = conn.execute(
            "SELECT count(*) FROM flight_metadata m WHERE NOT EXISTS "
            "(SELECT 1 FROM flight_data d WHERE d.flight_id = m.flight_id)"
        ).fetchone()
        twice = aircraft_instants_twice(conn, DAYS[1])
    assert alone - now  # the day's own ids of continuing flights are gone
    assert (reidentified, twice) == (0, 0)


@pytest.mark.apache
def test_the_dagster_check_fails_a_day_with_a_position_under_two_flights(
    apache_url: str, landing: tuple[Path, pd.DataFrame]
) -> None:
    """The check sees what the primary key cannot: one aircraft's position under two ids."""
    root, _ = landing
    load(apache_url, DAYS[1], root)

    def check() -> dg.AssetCheckResult:
        context = dg.build_op_context(
            partition_key=DAYS[1].isoformat(),
            resources={"flight_store": FlightStore(database_url=apache_url)},
        )
        results = {r.check_name: r for r in stored_day_checks(context)}
        assert set(results) == {"unique_keys", "positions_under_one_flight"}
        return results["positions_under_one_flight"]

    assert check().passed
    with connect(apache_url) as conn:
        conn.execute(
            "INSERT INTO flight_metadata (flight_id, icao24) "
            "SELECT 'twin', icao24 FROM flight_metadata WHERE icao24 IS NOT NULL LIMIT 1"
        )
        conn.execute(
            'INSERT INTO flight_data (flight_id, "timestamp", latitude, longitude) '
            "SELECT 'twin', d.\"timestamp\", d.latitude, d.longitude "
            "FROM flight_data d JOIN flight_metadata m USING (flight_id) "
            "WHERE m.icao24 = (SELECT icao24 FROM flight_metadata WHERE flight_id = 'twin') "
            "AND d.flight_id <> 'twin' AND d.\"timestamp\" >= %s LIMIT 3",
            (DAYS[1],),
        )
    failed = check()
    assert not failed.passed
    assert failed.metadata["positions_under_two_flights"].value == 3


@pytest.mark.apache
def test_a_real_day_with_stale_repeats_stores_each_position_report_once(
    apache_url: str, tmp_path: Path
) -> None:
    """2018-08-01 over Switzerland (17 hours, 842 aircraft) with stale repeats written in."""
    real = DATA / "opensky" / "2018-08-01"
    table = pd.concat(
        [pd.read_csv(p, dtype=str, keep_default_na=False) for p in sorted(real.glob("*.gz"))],
        ignore_index=True,
    )
    rows = with_stale_repeats(table, np.random.default_rng(7))
    write_hourly(rows, tmp_path, 0)
    report = ingest_partition(apache_url, date(2018, 8, 1), tmp_path)
    reports = expected_reports(rows.assign(shift=0))
    placed = int((rows["lat"] != "").sum())
    assert report.reconciles and report.rows_quarantined == 0
    assert (report.rows_stored, report.duplicates) == (reports, placed - reports)
    assert placed - reports > 20_000  # the repeats written in
    with connect(apache_url) as conn:
        parked_in_the_air = conn.execute(
            "SELECT count(*) FROM (SELECT 1 FROM flight_data WHERE NOT on_ground "
            "GROUP BY flight_id, latitude, longitude HAVING count(*) > 1) AS twice"
        ).fetchone()
        stamps = conn.execute(
            "SELECT m.icao24, extract(epoch FROM d.timestamp)::numeric(14, 3), d.latitude "
            "FROM flight_data d JOIN flight_metadata m USING (flight_id)"
        ).fetchall()
    assert parked_in_the_air == (0,)
    positions = rows[rows["lat"] != ""]
    known = set(
        zip(
            positions["icao24"],
            positions["lastposupdate"].map(lambda p: round(float(p), 3)),
            positions["lat"].astype(float),
            strict=True,
        )
    )
    assert {(a, float(t), lat) for a, t, lat in stamps} <= known  # at the position's time
