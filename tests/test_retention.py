"""The cleaner on both editions: raw days go, their aggregates stay unchanged, twice is once."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipelines.definitions import defs
from pipelines.ingest import ingest_partition
from pipelines.retention import policy as retention_settings
from pipelines.warehouse.aggregates import refresh_aggregates
from pipelines.warehouse.connection import connect, retrying
from pipelines.warehouse.retention import (
    CleanReport,
    RetentionError,
    RetentionPolicy,
    clean,
    share_writes_lock,
)
from tests.conftest import DATA
from tests.test_aggregates import (
    REAL,
    REAL_DAYS,
    assert_aggregates_match_raw,
    ingest_real,
    late_drop,
    refresh_partition,
)

FLIGHTS = str(Path(sys.executable).with_name("flights"))
# As of this day, with the default 90 days, both real days (2022-08-02, 2024-01-02) are past
# the raw retention and within the aggregate retention (730 days).
AS_OF = date(2024, 4, 5)
POLICY = RetentionPolicy()


def aggregates(url: str) -> dict[str, list[tuple]]:
    with connect(url) as conn:
        return {
            name: conn.execute(f"SELECT * FROM {name} ORDER BY 1, 2").fetchall()
            for name in ("flight_minutes", "flight_hours", "flight_days", "traffic_hours")
        }


def raw_count(url: str) -> int:
    with connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM flight_data").fetchone()
    assert row is not None
    return int(row[0])


def run_clean(
    url: str, day: date = AS_OF, policy: RetentionPolicy = POLICY, *, dry_run: bool = False
):
    """As `flights clean` and the cleaner asset run it: again after a transient failure (the
    drop can deadlock with autovacuum on a chunk; the server picks the drop as the victim)."""

    def attempt() -> CleanReport:
        with connect(url, autocommit=True) as conn:
            return clean(conn, day, policy, dry_run=dry_run)

    return retrying(attempt)


def test_dropped_days_keep_their_aggregates_and_a_second_run_drops_nothing(db_url: str) -> None:
    ingest_real(db_url)
    for day in REAL_DAYS:
        refresh_partition(db_url, day)
    before = aggregates(db_url)

    report = run_clean(db_url)
    assert [c.range_start.date() for c in report.raw_chunks] == list(REAL_DAYS)
    assert report.raw_range is not None
    assert report.raw_range.start == datetime(2022, 8, 2, tzinfo=UTC)
    assert report.raw_range.end == datetime(2024, 1, 3, tzinfo=UTC)
    assert report.raw_bytes > 0
    assert report.raw_horizon == datetime(2024, 1, 6, tzinfo=UTC)
    assert report.aggregate_chunks == ()
    assert raw_count(db_url) == 0
    assert aggregates(db_url) == before

    # A refresh over the dropped days would erase their aggregates: it stops at the horizon.
    with connect(db_url, autocommit=True) as conn:
        refreshed = refresh_aggregates(
            conn, datetime(2022, 1, 1, tzinfo=UTC), datetime(2024, 3, 1, tzinfo=UTC)
        )
    assert refreshed.refreshed is not None
    assert refreshed.refreshed.start == report.raw_horizon
    assert aggregates(db_url) == before

    again = run_clean(db_url)
    assert again.raw_chunks == () and again.aggregate_chunks == () and again.refreshed == ()
    assert aggregates(db_url) == before
    with connect(db_url) as conn:
        runs = conn.execute(
            "SELECT partition_day, raw_chunks, raw_range_start FROM retention_runs ORDER BY id"
        ).fetchall()
    assert runs == [(AS_OF, 2, datetime(2022, 8, 2, tzinfo=UTC)), (AS_OF, 0, None)]


def test_every_bundled_real_day_aggregates_exactly_and_outlives_its_raw_points(
    db_url: str,
) -> None:
    """The OpenSky days too: hundreds of flights an hour, flights across midnight."""
    sets = [(DATA / "drops", day) for day in REAL_DAYS] + [
        (DATA / "opensky", day) for day in (date(2018, 8, 1), date(2021, 10, 7))
    ]
    for root, day in sets:
        ingest_partition(db_url, day, root)
        refresh_partition(db_url, day)
    assert_aggregates_match_raw(db_url)
    stored = raw_count(db_url)
    assert stored > 400_000
    before = aggregates(db_url)

    keep_2018 = RetentionPolicy(aggregate_days=3650)  # aggregates from 2018 on stay
    report = run_clean(db_url, AS_OF, keep_2018)
    assert raw_count(db_url) == 0
    assert len(report.raw_chunks) >= len(sets)
    assert aggregates(db_url) == before
    assert sum(row[2] for row in before["traffic_hours"]) == stored
    assert run_clean(db_url, AS_OF, keep_2018).raw_chunks == ()
    assert aggregates(db_url) == before


def test_the_cleaner_refreshes_what_it_is_about_to_drop(db_url: str, tmp_path: Path) -> None:
    """Points whose aggregates were never refreshed (a failed run, a late drop) are counted
    before their raw data goes."""
    ingest_real(db_url)
    refresh_partition(db_url, date(2022, 8, 2))
    late_drop(tmp_path, date(2022, 8, 9), date(2022, 8, 2), "2ce4ff01", 25)
    ingest_partition(db_url, date(2022, 8, 9), tmp_path)
    # Neither 2024-01-02 nor the late flight of 2022-08-02 is aggregated yet.
    assert [row[1] for row in aggregates(db_url)["flight_days"]] == ["2ce4f83f"]

    report = run_clean(db_url)
    assert report.refreshed, "the unrefreshed days were refreshed before the drop"
    assert raw_count(db_url) == 0
    with connect(db_url) as conn:
        days = conn.execute(
            "SELECT day::date, flight_id, points FROM flight_days ORDER BY 1, 2"
        ).fetchall()
    assert days == [
        (date(2022, 8, 2), "2ce4f83f", 871),
        (date(2022, 8, 2), "2ce4ff01", 25),
        (date(2024, 1, 2), "3376ab31", 305),
    ]


def test_late_points_below_the_horizon_change_no_aggregate_and_go_next_run(
    db_url: str, tmp_path: Path
) -> None:
    ingest_real(db_url)
    for day in REAL_DAYS:
        refresh_partition(db_url, day)
    run_clean(db_url)
    before = aggregates(db_url)

    late_drop(tmp_path, date(2024, 4, 5), date(2022, 8, 2), "2ce4ff02", 10)
    ingest_partition(db_url, date(2024, 4, 5), tmp_path)
    refresh_partition(db_url, date(2024, 4, 5))
    assert aggregates(db_url) == before

    report = run_clean(db_url)
    assert [c.range_start.date() for c in report.raw_chunks] == [date(2022, 8, 2)]
    assert report.refreshed == ()
    assert raw_count(db_url) == 0
    assert aggregates(db_url) == before


def test_a_dry_run_reports_what_a_run_removes_and_changes_nothing(db_url: str) -> None:
    ingest_real(db_url)
    for day in REAL_DAYS:
        refresh_partition(db_url, day)
    with connect(db_url) as conn:
        conn.execute(
            "INSERT INTO quarantine (partition_day, source_file, reason) VALUES "
            "('2024-01-02', 'a.jsonl', 'bad latitude'), ('2024-03-20', 'b.jsonl', 'no time')"
        )
    before = aggregates(db_url)
    # Aggregates are kept 730 days at least: as of 2024-09-01 the 2022-08-02 chunk is past.
    policy = RetentionPolicy(raw_days=90, aggregate_days=365, quarantine_days=30)
    dry = run_clean(db_url, date(2024, 9, 1), policy, dry_run=True)
    assert raw_count(db_url) == 1176 and aggregates(db_url) == before

    real = run_clean(db_url, date(2024, 9, 1), policy)
    assert [c.name for c in dry.raw_chunks] == [c.name for c in real.raw_chunks]
    assert [c.name for c in dry.aggregate_chunks] == [c.name for c in real.aggregate_chunks]
    assert dry.quarantine_rows == real.quarantine_rows == 2
    assert {c.relation for c in real.aggregate_chunks} == {
        "flight_minutes",
        "flight_hours",
        "flight_days",
        "traffic_hours",
    }
    assert all(c.range_end <= real.aggregate_horizon for c in real.aggregate_chunks)
    after = aggregates(db_url)
    assert [r[1] for r in after["flight_days"]] == ["3376ab31"]
    assert after["flight_minutes"] == [r for r in before["flight_minutes"] if r[1] == "3376ab31"]


def test_policies_below_the_floor_or_inconsistent_are_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(RetentionError, match="below the floor of 7 days"):
        RetentionPolicy(raw_days=3)
    with pytest.raises(RetentionError, match="at least the raw retention"):
        RetentionPolicy(raw_days=90, aggregate_days=30)
    monkeypatch.setenv("FLIGHTS_RAW_RETENTION_FLOOR_DAYS", "30")
    monkeypatch.setenv("FLIGHTS_RAW_RETENTION_DAYS", "45")
    assert retention_settings.retention_policy().raw_days == 45
    with pytest.raises(RetentionError, match="below the floor of 30 days"):
        retention_settings.retention_policy(raw_days=14)


def test_the_cleaner_job_reports_its_work_and_checks_the_horizon(
    db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ingest_real(db_url)
    for day in REAL_DAYS:
        refresh_partition(db_url, day)
    before = aggregates(db_url)
    monkeypatch.setenv("FLIGHTS_DATABASE_URL", db_url)
    monkeypatch.setenv("FLIGHTS_LANDING_ROOT", str(tmp_path))
    job = defs.resolve_job_def("flight_cleaner")

    dry = job.execute_in_process(
        partition_key=AS_OF.isoformat(),
        run_config={"ops": {"flight_retention": {"config": {"dry_run": True}}}},
    )
    assert dry.success
    assert dry.asset_materializations_for_node("flight_retention") == []
    assert dry.get_asset_check_evaluations() == []
    assert raw_count(db_url) == 1176

    result = job.execute_in_process(partition_key=AS_OF.isoformat())
    assert result.success
    (materialization,) = result.asset_materializations_for_node("flight_retention")
    metadata = {k: v.value for k, v in materialization.metadata.items()}
    assert metadata["raw_chunks_dropped"] == 2
    assert metadata["raw_range_dropped"] == (
        "2022-08-02T00:00:00+00:00 .. 2024-01-03T00:00:00+00:00"
    )
    assert metadata["raw_bytes_dropped"] > 0
    assert metadata["dry_run"] is False
    (check,) = result.get_asset_check_evaluations()
    assert check.check_name == "no_raw_data_past_horizon" and check.passed
    assert raw_count(db_url) == 0 and aggregates(db_url) == before


@pytest.mark.apache
def test_the_cleaner_waits_for_a_writer_of_the_same_store(apache_url: str) -> None:
    ingest_real(apache_url)
    finished: list[float] = []
    with connect(apache_url) as writer:
        share_writes_lock(writer)  # a writer's transaction is open
        cleaner = threading.Thread(target=lambda: finished.append(run_clean(apache_url).seconds))
        cleaner.start()
        time.sleep(1.0)
        assert not finished, "the cleaner must wait for the writer"
        assert raw_count(apache_url) == 1176
        writer.commit()
    cleaner.join(timeout=30)
    assert finished and raw_count(apache_url) == 0


@pytest.mark.apache
@given(
    day=st.dates(),
    days=st.integers(1, 10**12) | st.integers(1, 800_000),
    kind=st.sampled_from(["raw", "aggregate", "quarantine", "compress"]),
)
def test_a_horizon_is_its_days_before_the_day_or_the_first_day_there_is(
    day: date, days: int, kind: str
) -> None:
    """Any retention, "forever" written as a huge number included, has a horizon: never a
    crash of the cleaner on a date before year 1."""
    policy = RetentionPolicy(
        raw_floor_days=1,
        raw_days=days if kind == "raw" else 1,
        aggregate_days=days,
        quarantine_days=days if kind == "quarantine" else 1,
        compress_after_days=days if kind == "compress" else 1,
    )
    horizon = {
        "raw": lambda: policy.raw_horizon(day).date(),
        "aggregate": lambda: policy.aggregate_horizon(day).date(),
        "quarantine": lambda: policy.quarantine_before(day),
        "compress": lambda: policy.compress_horizon(day).date(),
    }[kind]()
    assert horizon == (day - timedelta(days=days) if days <= day.toordinal() - 1 else date.min)


def test_flights_clean_cli_dry_run_run_floor_and_landing_archive(
    apache_url: str, tmp_path: Path
) -> None:
    landing = tmp_path / "landing"
    for day in REAL_DAYS:
        (landing / day.isoformat()).mkdir(parents=True)
        for src in (REAL / day.isoformat()).iterdir():
            (landing / day.isoformat() / src.name).write_bytes(src.read_bytes())
        ingest_partition(apache_url, day, landing)
    env = {
        **os.environ,
        "FLIGHTS_DATABASE_URL": apache_url,
        "FLIGHTS_LANDING_ROOT": str(landing),
        "FLIGHTS_LANDING_RETENTION": "archive",
    }

    def flights(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [FLIGHTS, "clean", *args], capture_output=True, text=True, env=env, timeout=120
        )

    dry = flights("--date", AS_OF.isoformat(), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would drop 2 chunks" in dry.stdout and "2022-08-02 .. 2024-01-03" in dry.stdout
    assert "would be archived" in dry.stdout
    assert raw_count(apache_url) == 1176 and (landing / "2022-08-02").is_dir()

    forever = flights(
        "--date",
        AS_OF.isoformat(),
        "--dry-run",
        *("--raw-retention-days", "99999999999"),
        *("--aggregate-retention-days", "99999999999", "--quarantine-retention-days", "10000000"),
    )
    assert forever.returncode == 0, forever.stderr
    assert "raw points before 0001-01-01: would drop 0 chunks" in forever.stdout

    refused = flights("--date", AS_OF.isoformat(), "--raw-retention-days", "2")
    assert refused.returncode == 1
    assert refused.stderr.strip() == "error: raw retention of 2 days is below the floor of 7 days"
    future = flights("--date", "2999-01-01")
    assert future.returncode != 0 and "in the future" in future.stderr

    done = flights("--date", AS_OF.isoformat())
    assert done.returncode == 0, done.stderr
    assert "dropped 2 chunks" in done.stdout
    assert raw_count(apache_url) == 0
    archive = tmp_path / "landing-archive"
    assert sorted(p.name for p in archive.iterdir()) == [d.isoformat() for d in REAL_DAYS]
    assert not any(landing.iterdir())
    assert "dropped 0 chunks" in flights("--date", AS_OF.isoformat()).stdout


def test_aggregates_still_equal_raw_for_the_days_that_stay(db_url: str) -> None:
    ingest_real(db_url)
    for day in REAL_DAYS:
        refresh_partition(db_url, day)
    run_clean(db_url, date(2022, 11, 1))  # drops 2022-08-02 only
    assert raw_count(db_url) == 305
    with connect(db_url) as conn:
        kept = conn.execute(
            "SELECT sum(points)::bigint FROM flight_minutes WHERE bucket >= '2024-01-01'"
        ).fetchone()
        gone = conn.execute(
            "SELECT sum(points)::bigint FROM flight_days WHERE day < '2024-01-01'"
        ).fetchone()
    assert kept == (305,) and gone == (871,)
