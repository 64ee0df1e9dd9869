"""The Dagster layer on the real machinery: definitions, partitioned runs, checks, sensor."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from datetime import date
from pathlib import Path

import dagster as dg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.assets.ingest import PROGRESS_LOG_SECONDS
from pipelines.assets.landing_sensor import landing_zone_sensor
from pipelines.assets.resources import FlightStore, LandingZone
from pipelines.definitions import defs
from pipelines.drops.files import discover_drops
from pipelines.ingest import ingest_partition
from tests.conftest import DATA
from tests.drops_factory import message, write_jsonl, write_pb


@pytest.fixture
def env(apache_url: str, flights_env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FLIGHTS_DATABASE_URL", apache_url)
    landing = flights_env / "landing"
    shutil.copytree(DATA / "drops", landing, dirs_exist_ok=True)
    return landing


def test_definitions_load_and_every_job_resolves() -> None:
    repo = defs.get_repository_def()
    jobs = {job.name for job in repo.get_all_jobs()}
    assert "ingest_job" in jobs
    for name in jobs:
        assert defs.resolve_job_def(name) is not None
    assert {s.name for s in repo.schedule_defs} >= {"ingest_job_schedule"}
    assert {s.name for s in repo.sensor_defs} >= {"landing_zone_sensor"}


@pytest.mark.apache
def test_a_partition_run_materializes_both_tables_with_metadata_and_checks(
    env: Path, apache_url: str
) -> None:
    result = defs.resolve_job_def("ingest_job").execute_in_process(
        partition_key="2024-01-02", instance=dg.DagsterInstance.ephemeral()
    )
    assert result.success
    materialized = {
        e.asset_key.to_user_string(): e.materialization.metadata
        for e in result.get_asset_materialization_events()
    }
    assert set(materialized) == {"flight_data", "flight_metadata", "flight_aggregates"}
    meta = materialized["flight_data"]
    assert meta["rows_read"].value == 610
    assert meta["rows_stored"].value == 305
    assert meta["duplicates"].value == 305
    assert "dagster/column_schema" in meta
    hours = meta["points_per_hour"].value
    assert [c.name for c in hours.schema.columns] == ["hour (UTC)", "points"]
    assert sum(record.data["points"] for record in hours.records) == 305
    assert [c.name for c in meta["dagster/column_schema"].schema.columns][:3] == [
        "flight_id",
        "timestamp",
        "latitude",
    ]
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks == {
        "rows_reconcile": True,
        "reject_rate": True,
        "unique_keys": True,
        "positions_under_one_flight": True,
        "minute_points_match_raw": True,
    }


@pytest.mark.apache
@pytest.mark.parametrize("check", ["unique_keys", "positions_under_one_flight"])
def test_each_check_of_the_stored_day_runs_alone_as_the_ui_runs_it(
    env: Path, apache_url: str, check: str
) -> None:
    """The stored day's checks share a step, and each can still be run by itself."""
    key = dg.AssetCheckKey(dg.AssetKey("flight_data"), check)
    job = defs.resolve_implicit_global_asset_job_def().get_subset(
        asset_selection=set(), asset_check_selection={key}
    )
    result = job.execute_in_process(
        partition_key="2024-01-02", instance=dg.DagsterInstance.ephemeral()
    )
    evaluations = result.get_asset_check_evaluations()
    assert [(e.check_name, e.passed, e.partition) for e in evaluations] == [
        (check, True, "2024-01-02")
    ]


@pytest.mark.apache
@settings(
    max_examples=3, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(files=st.integers(2, 60))
def test_a_run_logs_as_much_for_a_day_of_many_files_as_for_one(
    env: Path, apache_url: str, files: int
) -> None:
    """Dagster stores every log line as an event (milliseconds each): the reader's progress
    reaches the run's log every PROGRESS_LOG_SECONDS, not after every file."""

    def run_log(day: str, count: int) -> tuple[int, float]:
        for i in range(count):
            write_pb(env / day / f"part-{i:03d}.pb", [message(i, flight_id=f"f{i}")])
        instance = dg.DagsterInstance.ephemeral()
        started = time.monotonic()
        result = defs.resolve_job_def("ingest_job").execute_in_process(
            partition_key=day, instance=instance
        )
        assert result.success
        return len(instance.all_logs(result.run_id)), time.monotonic() - started

    one, _ = run_log("2023-06-01", 1)
    many, seconds = run_log("2023-06-02", files)
    assert one <= many <= one + int(seconds // PROGRESS_LOG_SECONDS)


@pytest.mark.apache
def test_a_day_over_the_reject_threshold_fails_its_check_and_publishes_nothing(
    env: Path, apache_url: str
) -> None:
    day = env / "2024-03-01"
    write_pb(day / "ok.pb", [message(0)])
    write_jsonl(
        day / "bad.jsonl",
        [{"flight_id": "b", "latitude": 500, "longitude": 0, "timestamp": "2024-03-01T00:00:00Z"}]
        * 3,
    )
    result = dg.materialize(
        [defs.get_assets_def("flight_data")],
        partition_key="2024-03-01",
        instance=dg.DagsterInstance.ephemeral(),
        resources={
            "flight_store": FlightStore(database_url=apache_url),
            "landing": LandingZone(root=str(env), max_reject_rate=0.5),
        },
        raise_on_error=False,
    )
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert checks["reject_rate"].passed is False
    assert checks["reject_rate"].metadata["reject_rate"].value == 0.75
    assert checks["reject_rate"].metadata["publish_as_is"].value == "flights accept 2024-03-01"
    assert checks["rows_reconcile"].passed is True
    assert {c.partition for c in checks.values()} == {"2024-03-01"}
    assert result.get_asset_materialization_events() == []


@pytest.mark.apache
def test_the_sensor_requests_new_and_changed_days_only(env: Path, apache_url: str) -> None:
    resources = {
        "landing": LandingZone(root=str(env)),
        "flight_store": FlightStore(database_url=apache_url),
    }
    (env / "not-a-day").mkdir()
    with dg.build_sensor_context(resources=resources) as ctx:
        first = landing_zone_sensor(ctx)
    assert sorted(r.partition_key for r in first.run_requests) == ["2022-08-02", "2024-01-02"]
    with dg.build_sensor_context(cursor=first.cursor, resources=resources) as ctx:
        assert landing_zone_sensor(ctx).run_requests == []
    drop = env / "2024-01-02" / "fr24_3376ab31.jsonl"
    os.utime(drop, ns=(time.time_ns(), time.time_ns() + 10**9))
    write_pb(env / "2024-01-03" / "new.pb", [message(0, timestamp="2024-01-03T00:00:00Z")])
    with dg.build_sensor_context(cursor=first.cursor, resources=resources) as ctx:
        third = landing_zone_sensor(ctx)
    assert sorted(r.partition_key for r in third.run_requests) == ["2024-01-02", "2024-01-03"]


# What a day folder may hold while producers write: a drop, or what is not (yet) one.
_ENTRIES = st.sampled_from(["drop", "hidden", "partial", "empty folder", "link to a day's drop"])


@pytest.mark.apache
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(folders=st.lists(st.lists(_ENTRIES, max_size=3), min_size=1, max_size=4))
def test_the_sensor_requests_exactly_the_days_with_a_drop(
    apache_url: str, folders: list[list[str]]
) -> None:
    """A day folder is requested once it holds a drop of its own, never before (its run
    would fail with nothing to load), and then only once for the same files."""
    days = [date(2024, 5, 1 + i) for i in range(len(folders))]
    with tempfile.TemporaryDirectory() as landing:
        root = Path(landing)
        write_pb(root / "2024-04-30" / "source.pb", [message(0, timestamp="2024-04-30T00:00:00Z")])
        for day, entries in zip(days, folders, strict=True):
            folder = root / day.isoformat()
            folder.mkdir()
            for k, entry in enumerate(entries):
                if entry == "drop":
                    write_pb(folder / f"{k}.pb", [message(k, timestamp=f"{day}T00:00:0{k}Z")])
                elif entry == "hidden":
                    (folder / f".{k}.pb").write_bytes(b"x")
                elif entry == "partial":
                    (folder / f"{k}.pb.part").write_bytes(b"x")
                elif entry == "empty folder":
                    (folder / f"sub{k}").mkdir()
                else:
                    (folder / f"{k}.pb").symlink_to(root / "2024-04-30" / "source.pb")
        resources = {
            "landing": LandingZone(root=str(root)),
            "flight_store": FlightStore(database_url=apache_url),
        }
        with dg.build_sensor_context(resources=resources) as ctx:
            first = landing_zone_sensor(ctx)
        with_drops = {d.isoformat() for d in days if discover_drops(root, d)}
        assert with_drops == {
            d.isoformat() for d, e in zip(days, folders, strict=True) if "drop" in e
        }
        requested = [r.partition_key for r in first.run_requests]
        assert sorted(requested) == sorted(with_drops | {"2024-04-30"})
        waiting = [d for d in days if d.isoformat() not in with_drops]
        for day in waiting:
            write_pb(root / day.isoformat() / "late.pb", [message(9, timestamp=f"{day}T01:00:00Z")])
        with dg.build_sensor_context(cursor=first.cursor, resources=resources) as ctx:
            second = landing_zone_sensor(ctx)
        assert sorted(r.partition_key for r in second.run_requests) == [str(d) for d in waiting]


@pytest.mark.apache
def test_the_sensor_first_tick_requests_only_days_the_ledger_does_not_know(
    env: Path, apache_url: str
) -> None:
    ingest_partition(apache_url, date(2024, 1, 2), env)
    write_jsonl(env / "2024-03-01" / "bad.jsonl", ["not json"] * 3)
    assert ingest_partition(apache_url, date(2024, 3, 1), env).held is not None
    resources = {
        "landing": LandingZone(root=str(env)),
        "flight_store": FlightStore(database_url=apache_url),
    }
    with dg.build_sensor_context(resources=resources) as ctx:  # no cursor: a first tick
        first = landing_zone_sensor(ctx)
    assert [r.partition_key for r in first.run_requests] == ["2022-08-02"]
    assert {r.job_name for r in first.run_requests} <= {None, "ingest_job"}
    write_pb(env / "2024-01-02" / "late.pb", [message(0, timestamp="2024-01-02T00:00:00Z")])
    with dg.build_sensor_context(resources=resources) as ctx:
        changed = landing_zone_sensor(ctx)
    assert sorted(r.partition_key for r in changed.run_requests) == ["2022-08-02", "2024-01-02"]


@pytest.mark.apache
def test_cli_runs_are_listed_under_ingest_job(env: Path, apache_url: str) -> None:
    from rich.console import Console

    from pipelines.cli.ingest import run_ingest

    with dg.instance_for_test() as instance:
        os.environ["DAGSTER_HOME"] = instance.root_directory
        (Path(instance.root_directory) / "dagster.yaml").touch()
        [outcome] = run_ingest([date(2024, 1, 2)], Console(quiet=True))
        assert (outcome.status, outcome.metadata["rows_stored"]) == ("ok", 305)
        with dg.DagsterInstance.get() as same:
            runs = same.get_runs(
                dg.RunsFilter(
                    job_name="ingest_job", tags={".dagster/repository": "__repository__@pipelines"}
                )
            )
    assert [r.tags["dagster/partition"] for r in runs] == ["2024-01-02"]
