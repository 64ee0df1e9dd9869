"""Write-audit-publish: a day failing its checks is held, invisible to readers until accepted;
a day without drops changes nothing; the published state of a day survives a failing re-run."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from psycopg import sql

from pipelines.assets.resources import FlightStore
from pipelines.cli.main import run_command
from pipelines.definitions import defs
from pipelines.ingest import NoDrops, ingest_partition
from pipelines.proto import flight_pb2 as pb
from pipelines.warehouse.connection import connect
from pipelines.warehouse.retention import RetentionPolicy, clean
from pipelines.warehouse.review import ReviewError, accept, reject
from tests.api import serving, stub_for
from tests.conftest import DATA, ROOT
from tests.drops_factory import message, write_jsonl, write_pb

DAY = date(2024, 3, 1)
FLIGHTS = str(Path(sys.executable).with_name("flights"))
WORKSPACE = ROOT / "workspace.yaml"
BAD = {"flight_id": "bad01", "latitude": 500, "longitude": 0, "timestamp": "2024-03-01T00:00:00Z"}


def published(url: str) -> dict[str, list]:
    """What readers can see, and the day's ledger; with row versions (xmin), so equal means
    nothing was rewritten."""
    with connect(url) as conn:
        return {
            "data": conn.execute(
                "SELECT xmin::text, * FROM flight_data ORDER BY flight_id, timestamp"
            ).fetchall(),
            "meta": conn.execute(
                "SELECT xmin::text, * FROM flight_metadata ORDER BY flight_id"
            ).fetchall(),
            "quarantine": conn.execute(
                "SELECT xmin::text, id FROM quarantine WHERE NOT held ORDER BY id"
            ).fetchall(),
            "ledger": conn.execute("SELECT xmin::text, * FROM partition_loads").fetchall(),
        }


def content(url: str) -> dict[str, list]:
    """The published values only (no row versions, ids or times): to compare two databases."""
    with connect(url) as conn:
        return {
            "data": conn.execute(
                "SELECT * FROM flight_data ORDER BY flight_id, timestamp"
            ).fetchall(),
            "meta": conn.execute(
                "SELECT flight_id, airline, flight_number, departure_airport, arrival_airport, "
                "icao24, callsign FROM flight_metadata ORDER BY flight_id"
            ).fetchall(),
            "quarantine": conn.execute(
                "SELECT partition_day, source_file, line, byte_offset, reason, raw_record "
                "FROM quarantine WHERE NOT held ORDER BY 1, 2, 3, 4, 5"
            ).fetchall(),
            "ledger": conn.execute(
                "SELECT partition_day, files, rows_read, rows_stored, rows_quarantined, "
                "duplicates, min_timestamp, max_timestamp, fingerprint FROM partition_loads"
            ).fetchall(),
        }


def held_counts(url: str) -> tuple[int, int, int]:
    with connect(url) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM held_points), (SELECT count(*) FROM held_metadata), "
            "(SELECT count(*) FROM quarantine WHERE held)"
        ).fetchone()
    assert row is not None
    return row


def write_day(landing: Path, good: int, bad: int, *, altitude: int = 0) -> None:
    folder = landing / DAY.isoformat()
    for old in folder.glob("*"):
        old.unlink()
    write_pb(folder / "good.pb", [message(i, altitude=30000 + i + altitude) for i in range(good)])
    if bad:
        write_jsonl(folder / "bad.jsonl", [BAD] * bad)


def test_a_held_day_is_invisible_until_accepted_once(db_url: str, tmp_path: Path) -> None:
    write_day(tmp_path, good=10, bad=5)
    report = ingest_partition(db_url, DAY, tmp_path)
    assert report.held is not None and report.held.name == "reject_rate"
    assert report.held.describe() == "reject_rate 0.3333 > 0.05"
    assert published(db_url) == {"data": [], "meta": [], "quarantine": [], "ledger": []}
    assert held_counts(db_url) == (10, 1, 5)
    with connect(db_url) as conn:
        state = conn.execute(
            "SELECT state, failed_check, check_value, threshold FROM held_loads"
        ).fetchall()
        assert state == [("held", "reject_rate", 5 / 15, 0.05)]
        decided = accept(conn, DAY, "ops-alice")
    assert (decided.state, decided.decided_by) == ("accepted", "ops-alice")
    assert decided.decided_at is not None and decided.decided_at.tzinfo is not None
    after = content(db_url)
    assert len(after["data"]) == 10 and len(after["meta"]) == 1 and len(after["quarantine"]) == 5
    assert held_counts(db_url) == (0, 0, 0)
    with connect(db_url) as conn:
        assert conn.execute(
            "SELECT state, accepted_by, rows_stored FROM partition_loads"
        ).fetchall() == [("accepted", "ops-alice", 10)]
        with pytest.raises(ReviewError, match=r"^2024-03-01 was already accepted by ops-alice"):
            accept(conn, DAY, "ops-bob")
    assert len(content(db_url)["data"]) == 10


def test_a_failing_rerun_leaves_the_published_day_untouched_and_reject_discards_it(
    db_url: str, tmp_path: Path
) -> None:
    write_day(tmp_path, good=10, bad=0)
    assert ingest_partition(db_url, DAY, tmp_path).held is None
    before = published(db_url)
    write_day(tmp_path, good=12, bad=4, altitude=7)  # every point changes, and too many rejects
    assert ingest_partition(db_url, DAY, tmp_path).held is not None
    assert published(db_url) == before
    assert held_counts(db_url) == (12, 1, 4)
    with connect(db_url) as conn:
        decided = reject(conn, DAY, "ops-bob")
        assert (decided.state, decided.decided_by) == ("rejected", "ops-bob")
        with pytest.raises(ReviewError, match=r"^2024-03-01 was already rejected by ops-bob"):
            reject(conn, DAY, "ops-bob")
    assert published(db_url) == before
    assert held_counts(db_url) == (0, 0, 0)
    with connect(db_url) as conn, pytest.raises(ReviewError, match="has no held load"):
        accept(conn, date(2024, 3, 2), "ops-bob")


def test_a_rerun_with_a_higher_threshold_publishes_the_held_day(
    db_url: str, tmp_path: Path
) -> None:
    write_day(tmp_path, good=10, bad=5)
    assert ingest_partition(db_url, DAY, tmp_path).held is not None
    report = ingest_partition(db_url, DAY, tmp_path, max_reject_rate=0.5)
    assert report.held is None
    assert held_counts(db_url) == (0, 0, 0)
    with connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM held_loads").fetchone() == (0,)
        assert conn.execute("SELECT state FROM partition_loads").fetchall() == [("loaded",)]
    assert len(content(db_url)["data"]) == 10


@pytest.mark.apache
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    first=st.lists(st.integers(0, 30), max_size=25),
    second=st.lists(st.integers(0, 30), min_size=1, max_size=25),
    shift=st.integers(0, 2),
    bad=st.integers(1, 6),
    batch_rows=st.sampled_from([2, 7, 1000]),
)
def test_hold_then_accept_equals_publishing_directly(
    apache_db_factory: Callable[[], str],
    tmp_path_factory: pytest.TempPathFactory,
    first: list[int],
    second: list[int],
    shift: int,
    bad: int,
    batch_rows: int,
) -> None:
    """Differential: a published day, then a new version of it with rejects. Held then
    accepted must give exactly what publishing the new version directly gives, and holding
    must not change a single published row version."""
    held_db, direct_db = apache_db_factory(), apache_db_factory()
    landing = tmp_path_factory.mktemp("landing")
    folder = landing / DAY.isoformat()
    folder.mkdir()
    if first:  # repeated indexes: exact duplicates (and conflicts when shift moves altitudes)
        write_pb(folder / "a.pb", [message(i) for i in first])
        for url in (held_db, direct_db):
            ingest_partition(url, DAY, landing, max_reject_rate=1.0, batch_rows=batch_rows)
    for old in folder.glob("*"):
        old.unlink()
    write_pb(folder / "b.pb", [message(i, altitude=30000 + i * shift) for i in second])
    write_jsonl(folder / "c.jsonl", [BAD] * bad)
    before = published(held_db)
    held = ingest_partition(held_db, DAY, landing, max_reject_rate=0.0, batch_rows=batch_rows)
    assert held.held is not None
    assert published(held_db) == before
    direct = ingest_partition(direct_db, DAY, landing, max_reject_rate=1.0, batch_rows=batch_rows)
    assert direct.held is None
    assert (held.rows_stored, held.rows_quarantined, held.duplicates) == (
        direct.rows_stored,
        direct.rows_quarantined,
        direct.duplicates,
    )
    with connect(held_db) as conn:
        accept(conn, DAY, "ops")
    assert content(held_db) == content(direct_db)
    assert held_counts(held_db) == (0, 0, 0)


def test_a_day_without_drops_changes_nothing(db_url: str, tmp_path: Path) -> None:
    write_day(tmp_path, good=5, bad=0)
    ingest_partition(db_url, DAY, tmp_path)
    before = published(db_url)
    folder = tmp_path / DAY.isoformat()
    for old in folder.glob("*"):
        old.unlink()
    with pytest.raises(NoDrops, match=rf"^no drops for 2024-03-01: {folder} is empty; nothing"):
        ingest_partition(db_url, DAY, tmp_path)
    folder.rmdir()
    with pytest.raises(NoDrops, match=rf"{folder} does not exist"):
        ingest_partition(db_url, DAY, tmp_path)
    assert published(db_url) == before


def _flights(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # A local instance as the project's (no telemetry banner), on local storage.
    (Path(env["DAGSTER_HOME"]) / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return subprocess.run(
        [FLIGHTS, *args], capture_output=True, text=True, env=env, timeout=300, check=False
    )


def _visible(url: str, flight_id: str) -> tuple[int, list[str], int]:
    """Points GetFlightData serves, flights ListFlights names, points in the aggregates."""
    start, end = Timestamp(), Timestamp()
    start.FromJsonString("2024-03-01T00:00:00Z")
    end.FromJsonString("2024-03-02T00:00:00Z")
    with serving(url) as running, stub_for(running.port) as stub:
        try:
            points = len(stub.GetFlightData(pb.FlightDataRequest(flight_id=flight_id)).flight_data)
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.NOT_FOUND:
                raise
            points = 0
        listed = stub.ListFlights(pb.ListFlightsRequest(start_time=start, end_time=end))
    with connect(url) as conn:
        row = conn.execute(
            "SELECT coalesce(sum(points), 0) FROM flight_minutes "
            "WHERE bucket >= '2024-03-01' AND bucket < '2024-03-02'"
        ).fetchone()
    assert row is not None
    return points, [f.flight_id for f in listed.flights], int(row[0])


@pytest.mark.apache
def test_through_the_cli_a_held_day_is_served_only_after_flights_accept(
    apache_url: str, flights_env: Path
) -> None:
    landing = flights_env / "landing"
    write_day(landing, good=10, bad=5)
    env = {**os.environ, "FLIGHTS_DATABASE_URL": apache_url, "FLIGHTS_OPERATOR": "ops-carol"}
    held = _flights(["ingest", "--from", "2024-03-01"], env)
    assert held.returncode == 1
    assert "HELD: reject_rate" in held.stdout
    [line] = held.stderr.strip().splitlines()
    assert line.startswith("Error: held, not published: 2024-03-01 (check reject_rate failed: ")
    assert line.endswith(
        "review with `flights quarantine --day 2024-03-01`, then `flights accept 2024-03-01` "
        "or `flights reject 2024-03-01`"
    )
    assert _visible(apache_url, "abc123") == (0, [], 0)
    accepted = _flights(["accept", "2024-03-01"], env)
    assert accepted.returncode == 0, accepted.stderr
    assert accepted.stdout.startswith("2024-03-01 accepted by ops-carol: 10 rows published")
    assert _visible(apache_url, "abc123") == (10, ["abc123"], 10)
    again = _flights(["accept", "2024-03-01"], env)
    assert again.returncode == 1
    assert again.stderr.startswith("Error: 2024-03-01 was already accepted by ops-carol")
    assert _visible(apache_url, "abc123") == (10, ["abc123"], 10)


@pytest.mark.apache
def test_the_cli_refuses_a_day_without_drops_in_one_line(
    apache_url: str, flights_env: Path
) -> None:
    landing = flights_env / "landing"
    write_day(landing, good=5, bad=0)
    env = {**os.environ, "FLIGHTS_DATABASE_URL": apache_url}
    assert _flights(["ingest", "--from", "2024-03-01"], env).returncode == 0
    before = published(apache_url)
    wrong = flights_env / "wrong-root"
    wrong.mkdir()
    run = _flights(["ingest", "--from", "2024-03-01", "--landing", str(wrong)], env)
    assert run.returncode == 1
    assert run.stderr.strip().splitlines() == [
        f"Error: no drops for 2024-03-01: {wrong}/2024-03-01 does not exist; nothing was changed"
    ]
    assert published(apache_url) == before


@pytest.mark.apache
def test_flights_quarantine_lists_rejects_with_the_numbers_of_the_check(
    apache_url: str, flights_env: Path
) -> None:
    landing = flights_env / "landing"
    write_day(landing, good=10, bad=5)
    folder = landing / DAY.isoformat()
    write_jsonl(folder / "junk.jsonl", ["not json", '{"flight_id": "x1"}'])
    report = ingest_partition(apache_url, DAY, landing)
    assert report.held is not None
    env = {**os.environ, "FLIGHTS_DATABASE_URL": apache_url}
    listed = subprocess.run(
        [FLIGHTS, "quarantine", "--day", "2024-03-01"],
        capture_output=True,
        text=True,
        env={**env, "COLUMNS": "200"},
        check=True,
    )
    lines = listed.stdout.splitlines()
    # The per-day summary holds the same kinds and counts as the check's reject_reasons.
    for kind, n in report.reject_reasons.items():
        assert any(kind in line and line.rstrip(" │").endswith(f" {n}") for line in lines), (
            kind,
            listed.stdout,
        )
    assert f"7 of {report.rows_quarantined} rejected rows" in listed.stdout
    assert "2024-03-01/bad.jsonl" in listed.stdout and "held" in listed.stdout
    as_csv = subprocess.run(
        [FLIGHTS, "quarantine", "--csv", "--reason", "latitude", "--file", "bad.jsonl"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert len(rows) == 5
    assert {(r["state"], r["file"], r["line"]) for r in rows} == {
        ("held", "2024-03-01/bad.jsonl", str(n)) for n in range(1, 6)
    }
    assert all(json.loads(r["raw_record"])["latitude"] == 500 for r in rows)
    limited = subprocess.run(
        [FLIGHTS, "quarantine", "--limit", "2", "--csv"], capture_output=True, text=True, env=env
    )
    assert len(list(csv.DictReader(io.StringIO(limited.stdout)))) == 2


# Stored names and reasons: LIKE's wildcards and escape, separators, letters in both cases
# (ASCII: PostgreSQL's lower() folds by the server's locale, Python's by Unicode), a name's
# undecodable byte in its stored form.
_STORED_TEXT = st.lists(
    st.sampled_from(["a", "B", "c", "_", "%", "\\", "/", ".", "é", "\\xff"]), max_size=6
).map("".join)


def _typed(stored: str, cut: tuple[int, int], upper: bool) -> str:
    """What an operator types for a stored text: a part of it, maybe in capitals, a name's
    undecodable byte as a shell passes it (a surrogate escape, as it reaches Python)."""
    part = stored[cut[0] : cut[0] + cut[1]]
    return (part.upper() if upper else part).replace("\\xff", "\udcff")


@pytest.mark.apache
def test_quarantine_filters_match_text_as_typed_not_as_patterns(
    apache_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`flights quarantine --reason/--file` against a reference: a reason containing the
    text whatever its case, a file by its path or its name, `%` and `_` as themselves."""
    monkeypatch.setenv("FLIGHTS_DATABASE_URL", apache_url)

    def listed(reason: str, file: str) -> list[tuple[str, str]]:
        argv = ["flights", "quarantine", "--csv", "--reason", reason, "--file", file]
        monkeypatch.setattr(sys, "argv", argv)
        assert run_command() == 0
        rows = csv.DictReader(io.StringIO(capsys.readouterr().out))
        return sorted((r["file"], r["reason"]) for r in rows)

    @settings(
        max_examples=100,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(
        stored=st.lists(st.tuples(_STORED_TEXT, _STORED_TEXT), min_size=1, max_size=6),
        pick=st.integers(0, 5),
        cut=st.tuples(st.integers(0, 40), st.integers(0, 40)),
        upper=st.booleans(),
        other=_STORED_TEXT,
    )
    def filters(
        stored: list[tuple[str, str]],
        pick: int,
        cut: tuple[int, int],
        upper: bool,
        other: str,
    ) -> None:
        with connect(apache_url) as conn:
            conn.execute("DELETE FROM quarantine")
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO quarantine (partition_day, source_file, reason) "
                    "VALUES (%s, %s, %s)",
                    [(DAY, f"{DAY}/{name}", reason) for name, reason in stored],
                )
            conn.commit()
        name, reason = stored[pick % len(stored)]
        typed_reason = _typed(reason, cut, upper)
        for typed_file in (_typed(name, (0, 99), False), other, f"{DAY}/{name}"):
            wanted_reason = typed_reason.replace("\udcff", "\\xff").lower()
            wanted_file = typed_file.replace("\udcff", "\\xff")
            expected = sorted(
                (f"{DAY}/{n}", r)
                for n, r in stored
                if wanted_reason in r.lower()
                and (f"{DAY}/{n}" == wanted_file or f"{DAY}/{n}".endswith("/" + wanted_file))
            )
            assert listed(typed_reason, typed_file) == expected, (typed_reason, typed_file)

    filters()


@pytest.mark.apache
def test_a_backfill_under_the_daemon_holds_the_failing_day_until_accepted_in_dagster(
    apache_url: str,
    flights_env: Path,
    production_instance: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FLIGHTS_DATABASE_URL", apache_url)
    landing = flights_env / "landing"
    shutil.copytree(DATA / "drops" / "2024-01-02", landing / "2024-01-02")
    write_day(landing, good=10, bad=5)
    env = {**os.environ}
    daemon = subprocess.Popen(
        [str(Path(sys.executable).with_name("dagster-daemon")), "run", "-w", str(WORKSPACE)],
        env=env,
        cwd=WORKSPACE.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        backfill = subprocess.run(
            [
                *(sys.executable, "-m", "dagster", "job", "backfill", "-w", str(WORKSPACE)),
                *("-j", "ingest_job", "--partitions", "2024-01-02,2024-03-01", "--noprompt"),
            ],
            env=env,
            cwd=WORKSPACE.parent,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert backfill.returncode == 0, backfill.stdout[-2000:] + backfill.stderr[-2000:]
        deadline = time.monotonic() + 420
        with dg.DagsterInstance.get() as instance:
            while time.monotonic() < deadline:
                runs = instance.get_runs()
                if len(runs) >= 2 and all(r.is_finished for r in runs):
                    break
                time.sleep(1)
            runs = instance.get_runs()
            outcomes = sorted(
                (r.job_name, r.tags["dagster/partition"], r.status.value) for r in runs
            )
            assert outcomes == [
                ("ingest_job", "2024-01-02", "SUCCESS"),
                ("ingest_job", "2024-03-01", "SUCCESS"),  # it did its job: held the day
            ]
            evaluations = [
                event.dagster_event.asset_check_evaluation_data
                for r in runs
                for event in instance.all_logs(
                    r.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
                )
                if event.dagster_event is not None
            ]
            by_day = {(c.partition, c.check_name): c.passed for c in evaluations}
            assert by_day[("2024-03-01", "reject_rate")] is False
            assert by_day[("2024-01-02", "reject_rate")] is True
            held_run = next(r for r in runs if r.tags["dagster/partition"] == "2024-03-01")
            steps = {
                s.step_key: s.status.value for s in instance.get_run_step_stats(held_run.run_id)
            }
            assert steps["ingest_drops"] == "SUCCESS"
            assert "flight_aggregates" not in steps or steps["flight_aggregates"] == "SKIPPED"
            assert _visible(apache_url, "abc123") == (0, [], 0)
            accepted = defs.resolve_job_def("accept_held_day").execute_in_process(
                instance=instance,
                run_config={
                    "ops": {
                        "accept_held_rows": {
                            "config": {"day": "2024-03-01", "accepted_by": "ops-dana"}
                        }
                    }
                },
            )
            assert accepted.success
            assert {
                e.asset_key.to_user_string(): e.partition
                for e in accepted.get_asset_materialization_events()
            } == {
                "flight_data": "2024-03-01",
                "flight_metadata": "2024-03-01",
                "flight_aggregates": "2024-03-01",
            }
        assert _visible(apache_url, "abc123") == (10, ["abc123"], 10)
    finally:
        os.killpg(daemon.pid, signal.SIGTERM)
        daemon.wait(timeout=60)
        with contextlib.suppress(ProcessLookupError):  # a code server the daemon left behind
            os.killpg(daemon.pid, signal.SIGKILL)


def _step_error(result: dg.ExecuteInProcessResult) -> str:
    """The failed step's own description (a dg.Failure's), whole."""
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert failure.step_failure_data is not None
    assert failure.step_failure_data.user_failure_data is not None
    return failure.step_failure_data.user_failure_data.description or ""


def _accept_in_dagster(url: str, day: str) -> dg.ExecuteInProcessResult:
    return defs.resolve_job_def("accept_held_day").execute_in_process(
        instance=dg.DagsterInstance.ephemeral(),
        run_config={"ops": {"accept_held_rows": {"config": {"day": day, "accepted_by": "ops"}}}},
        resources={"flight_store": FlightStore(database_url=url)},
        raise_on_error=False,
    )


@pytest.mark.apache
def test_accepting_in_dagster_takes_exactly_a_held_partition_day(
    apache_url: str, tmp_path: Path
) -> None:
    """The Launchpad's `day` is typed by hand: any text but the held day's own partition key
    (other spellings of the same day too, which would publish it under a partition that does
    not exist) fails the run with one line and publishes nothing."""
    write_day(tmp_path, good=10, bad=5)
    assert ingest_partition(apache_url, DAY, tmp_path).held is not None
    before = published(apache_url)
    spellings = st.sampled_from(["%Y%m%d", "%Y-%m-%dT00:00", " %Y-%m-%d", "%Y-%m-%d ", "%Y-%j"])

    @settings(max_examples=15, deadline=None)
    @given(day=st.text(max_size=12) | spellings.map(DAY.strftime) | st.dates().map(date.isoformat))
    def typed(day: str) -> None:
        assume(day != DAY.isoformat())
        result = _accept_in_dagster(apache_url, day)
        assert not result.success
        error = _step_error(result)
        assert error and "\n" not in error, error
        assert published(apache_url) == before

    typed()
    accepted = _accept_in_dagster(apache_url, DAY.isoformat())
    assert accepted.success
    assert {e.partition for e in accepted.get_asset_materialization_events()} == {"2024-03-01"}
    again = _accept_in_dagster(apache_url, DAY.isoformat())  # decided already: one line
    assert not again.success and "already accepted" in _step_error(again)


def test_the_cleaner_discards_held_loads_of_days_past_the_raw_retention(
    apache_url: str, tmp_path: Path
) -> None:
    days = [DAY + timedelta(days=k) for k in range(4)]
    for day in days:
        folder = tmp_path / day.isoformat()
        write_pb(folder / "good.pb", [message(i) for i in range(4)])
        write_jsonl(folder / "bad.jsonl", [BAD] * 2)
        assert ingest_partition(apache_url, day, tmp_path).held is not None
    with connect(apache_url) as conn:
        reject(conn, days[0], "ops-dan")  # a decided load goes too
    # Quarantined rows kept longer than raw points: held ones go by the raw retention here.
    policy = RetentionPolicy(raw_days=90, quarantine_days=365)
    as_of = days[2] + timedelta(days=90)  # raw horizon: midnight starting days[2]

    def held_days() -> dict[str, list[date]]:
        with connect(apache_url) as conn:
            return {
                table: [
                    row[0]
                    for row in conn.execute(
                        sql.SQL("SELECT DISTINCT partition_day FROM {} {} ORDER BY 1").format(
                            sql.Identifier(table),
                            sql.SQL("WHERE held" if table == "quarantine" else ""),
                        )
                    )
                ]
                for table in ("held_loads", "held_points", "held_metadata", "quarantine")
            }

    before = held_days()
    staged = days[1:]  # the rejected day's rows went with the decision
    assert before == {
        "held_loads": days,
        "held_points": staged,
        "held_metadata": staged,
        "quarantine": staged,
    }
    with connect(apache_url, autocommit=True) as conn:
        dry = clean(conn, as_of, policy, dry_run=True)
        assert held_days() == before
        real = clean(conn, as_of, policy)
        again = clean(conn, as_of, policy)
    assert dry.held_loads == real.held_loads == 2 and again.held_loads == 0
    assert held_days() == {table: [d for d in before[table] if d >= days[2]] for table in before}
    with connect(apache_url) as conn:
        assert accept(conn, days[3], "ops-dan").state == "accepted"  # what stays still publishes
