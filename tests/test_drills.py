"""Failure drills against the real database and processes: a database restarted mid-run, a
hostile landing zone, random and corrupted drops, overlapping backfills with the cleaner."""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql

from pipelines.assets.ingest import WRITE_POOL
from pipelines.assets.runs import WORKER_TAG
from pipelines.ingest import ingest_partition
from pipelines.settings import with_database
from pipelines.warehouse.connection import connect
from pipelines.warehouse.migrations import migrate
from pipelines.warehouse.partition_load import _LOCK_NAMESPACE as _DAY_LOCK_NAMESPACE
from tests.conftest import DATA
from tests.drops_factory import framed, message, synthetic_day, write_jsonl, write_pb
from tests.test_foundation import flights
from tests.test_ingest import FLIGHTS, snapshot

ROOT = Path(__file__).resolve().parent.parent


RESTART_DAY = date(2024, 3, 1)
RESTART_POINTS = 20_000


@contextlib.contextmanager
def holding(url: str, statement: str | sql.Composable) -> Iterator[psycopg.Connection]:
    """A transaction that holds the lock `statement` takes until the block ends (or the
    server goes down under it): what a run must wait for, to be caught at a known step."""
    conn = connect(url)
    try:
        conn.execute(statement)
        yield conn
    finally:
        with contextlib.suppress(psycopg.Error):
            conn.rollback()
        conn.close()


def wait_until(url: str, condition: str, proc: subprocess.Popen | None, what: str) -> None:
    """Polls `condition` (SQL returning one boolean) until true; the process must not end
    first. No sleep decides anything: the run waits on a lock the test holds."""
    deadline = time.monotonic() + 240
    with connect(url, autocommit=True) as watcher:
        while time.monotonic() < deadline:
            row = watcher.execute(condition).fetchone()
            if row and row[0]:
                return
            if proc is not None and proc.poll() is not None:
                said = proc.stdout.read() if proc.stdout else ""
                pytest.fail(f"the run ended ({proc.returncode}) before {what}: {said[-3000:]}")
            time.sleep(0.05)
    pytest.fail(f"never saw {what}")


def waiting_on_lock(query_pattern: str) -> str:
    return (
        "SELECT count(*) > 0 FROM pg_stat_activity WHERE datname = current_database() "
        f"AND wait_event_type = 'Lock' AND query ILIKE '{query_pattern}'"
    )


def restart(env: dict[str, str]) -> None:
    """A fast shutdown (sessions terminated, transactions rolled back) and a start."""
    assert flights("db", "down", env=env).returncode == 0
    assert flights("db", "up", env=env).returncode == 0


def smart_restart_after_commit(env: dict[str, str], url: str, proc: subprocess.Popen) -> None:
    """The restart that lands right after the ingest commits: a smart shutdown (SIGTERM to
    the postmaster) refuses every new connection while sessions already open finish. The
    ingest, caught in its COPY, commits; the steps after it then connect into the shutdown.
    The watcher's own session keeps the server from finishing the shutdown until the ingest
    has committed and left."""
    data_dir = Path(env["FLIGHTS_LOCAL_DB_DIR"]) / "pgdata"
    postmaster = int((data_dir / "postmaster.pid").read_text().split()[0])
    with connect(url, autocommit=True) as watcher:
        with holding(url, "LOCK TABLE flight_data IN SHARE MODE"):
            wait_until(url, waiting_on_lock("COPY%"), proc, "the COPY waiting")
            os.kill(postmaster, signal.SIGTERM)
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            row = watcher.execute(
                "SELECT (SELECT count(*) FROM partition_loads), count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "AND backend_type = 'client backend'"
            ).fetchone()
            if row == (1, 0):
                break
            assert proc.poll() is None, "the run ended during the shutdown"
            time.sleep(0.05)
        else:
            pytest.fail("the ingest never committed")
    deadline = time.monotonic() + 120
    while flights("db", "status", env=env).returncode == 0:
        assert time.monotonic() < deadline, "the server never finished its shutdown"
        time.sleep(0.1)
    assert flights("db", "up", env=env).returncode == 0


def _restart_during(step: str, env: dict[str, str], url: str, proc: subprocess.Popen) -> None:
    if step == "copy":
        with holding(url, "LOCK TABLE flight_data IN SHARE MODE"):
            wait_until(url, waiting_on_lock("COPY%"), proc, "the COPY waiting")
            restart(env)
    elif step == "after_ingest":
        smart_restart_after_commit(env, url, proc)
    else:  # refresh: the ingest commits, the refresh then waits inside its transaction
        with holding(url, "LOCK TABLE flight_minutes IN ACCESS EXCLUSIVE MODE"):
            wait_until(url, waiting_on_lock("%flight_minutes%"), proc, "the refresh waiting")
            restart(env)


def _scratch_database(env: dict[str, str]) -> Iterator[str]:
    server = flights("db", "url", env=env).stdout.strip()
    name = f"drill_{uuid.uuid4().hex[:12]}"
    with connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = with_database(server, name)
    with connect(url) as conn:
        migrate(conn)
    yield url
    with connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def restart_db(scratch_env: dict[str, str]) -> Iterator[str]:
    """A migrated database of its own on the drill's server (which the drill restarts)."""
    assert flights("db", "up", env=scratch_env).returncode == 0
    yield from _scratch_database(scratch_env)


@pytest.mark.apache
@pytest.mark.parametrize("step", ["copy", "after_ingest", "refresh"])
def test_database_restarted_at_each_step_of_an_ingest_the_run_completes_exactly(
    step: str, scratch_env: dict[str, str], restart_db: str, tmp_path: Path
) -> None:
    landing = tmp_path / "landing"
    write_pb(landing / RESTART_DAY.isoformat() / "day.pb", synthetic_day(RESTART_POINTS))
    home = tmp_path / "home"
    home.mkdir()
    env = {**scratch_env, "FLIGHTS_DATABASE_URL": restart_db, "DAGSTER_HOME": str(home)}
    proc = subprocess.Popen(
        [FLIGHTS, "ingest", "--from", RESTART_DAY.isoformat(), "--landing", str(landing)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _restart_during(step, scratch_env, restart_db, proc)
        out, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, (out + err)[-3000:]
    with connect(restart_db) as conn:
        stored = conn.execute(
            "SELECT count(*), count(DISTINCT (flight_id, timestamp)) FROM flight_data"
        ).fetchone()
        ledger = conn.execute("SELECT rows_read, rows_stored FROM partition_loads").fetchall()
        minutes = conn.execute("SELECT sum(points)::int FROM flight_minutes").fetchone()
    assert stored == (RESTART_POINTS, RESTART_POINTS)
    assert ledger == [(RESTART_POINTS, RESTART_POINTS)]
    assert minutes == (RESTART_POINTS,)


@pytest.mark.apache
def test_database_restarted_during_the_cleaner_it_completes_exactly(
    scratch_env: dict[str, str], restart_db: str, tmp_path: Path
) -> None:
    landing = tmp_path / "landing"
    write_pb(
        landing / OLD_DAY.isoformat() / "d.pb",
        synthetic_day(RESTART_POINTS, OLD_DAY.isoformat()),
    )
    ingest_partition(restart_db, OLD_DAY, landing)
    with connect(restart_db) as conn:
        chunks = conn.execute("SELECT show_chunks('flight_data')::text").fetchall()
    assert len(chunks) == 1
    schema, name = chunks[0][0].split(".")
    env = {**scratch_env, "FLIGHTS_DATABASE_URL": restart_db, "FLIGHTS_LANDING_ROOT": str(landing)}
    proc = subprocess.Popen(
        [FLIGHTS, "clean", "--date", CLEAN_DAY.isoformat()],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lock = sql.SQL("LOCK TABLE {} IN ACCESS SHARE MODE").format(sql.Identifier(schema, name))
        with holding(restart_db, lock):
            wait_until(restart_db, waiting_on_lock("%drop_chunks%"), proc, "the cleaner waiting")
            restart(scratch_env)
        out, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, (out + err)[-3000:]
    assert "retrying in" in err
    with connect(restart_db) as conn:
        raw = conn.execute("SELECT count(*) FROM flight_data").fetchone()
        minutes = conn.execute("SELECT sum(points)::int FROM flight_minutes").fetchone()
    assert raw == (0,)
    assert minutes == (RESTART_POINTS,)


@pytest.fixture(scope="module")
def scratch_env() -> Iterator[dict[str, str]]:
    """A server of the drills' own, which they stop and start. Its folder is outside
    pytest's temporary tree: pytest may close that tree's permissions (mode 0700) while the
    server, running as another user, still needs to reach its data."""
    from tests.test_foundation import _free_port

    base = Path(tempfile.mkdtemp(prefix="flights-drill-"))
    env = {
        **os.environ,
        "FLIGHTS_LOCAL_DB_DIR": str(base / "db"),
        "FLIGHTS_DB_PORT": str(_free_port()),
    }
    env.pop("FLIGHTS_DATABASE_URL", None)
    yield env
    flights("db", "down", env=env)
    shutil.rmtree(base, ignore_errors=True)


@pytest.mark.apache
def test_a_hostile_landing_zone_is_quarantined_with_reasons(
    apache_url: str, tmp_path: Path
) -> None:
    landing = tmp_path / "landing"
    day = landing / "2024-03-01"
    write_pb(day / "good.pb", [message(i) for i in range(3)])
    secret = write_pb(tmp_path / "elsewhere" / "secret.pb", [message(9)])
    (day / "escape.pb").symlink_to(secret)
    (day / "dangling.pb").symlink_to(tmp_path / "missing.pb")
    os.mkfifo(day / "pipe.pb")  # reading it would block forever
    (day / "zero.jsonl").write_bytes(b"")
    report = ingest_partition(apache_url, date(2024, 3, 1), landing)
    assert (report.rows_read, report.rows_stored, report.rows_quarantined) == (7, 3, 4)
    with connect(apache_url) as conn:
        reasons = dict(conn.execute("SELECT source_file, reason FROM quarantine").fetchall())
    assert reasons == {
        "2024-03-01/escape.pb": "symlink points outside the landing zone",
        "2024-03-01/dangling.pb": "file vanished or is a dangling symlink",
        "2024-03-01/pipe.pb": "not a regular file (pipe, socket, device or folder)",
        "2024-03-01/zero.jsonl": "empty file",
    }


def _peak_rss_of_ingest(url: str, landing: Path) -> tuple[float, dict]:
    code = (
        "import json, sys; from datetime import date; from pathlib import Path;"
        "from pipelines.ingest import ingest_partition;"
        "r = ingest_partition(sys.argv[1], date(2024, 3, 1), Path(sys.argv[2]));"
        "from bench.memory import peak_rss_kib;"
        "print(json.dumps({'rss': peak_rss_kib(),"
        " 'read': r.rows_read, 'stored': r.rows_stored, 'quarantined': r.rows_quarantined}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, url, str(landing)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return result.pop("rss") / 1024, result


@pytest.mark.apache
def test_a_100_mb_record_is_refused_while_memory_stays_bounded(
    apache_url: str, tmp_path: Path
) -> None:
    small = tmp_path / "small"
    write_pb(small / "2024-03-01" / "ok.pb", [message(i) for i in range(3)])
    base_rss, base = _peak_rss_of_ingest(apache_url, small)
    assert base == {"read": 3, "stored": 3, "quarantined": 0}

    huge = tmp_path / "huge"
    day = huge / "2024-03-01"
    write_pb(day / "ok.pb", [message(i) for i in range(3)])
    hundred_mb = 100 << 20
    with (day / "line.jsonl").open("w") as fh:
        fh.write('{"flight_id": "' + "x" * hundred_mb + '"}\n')
    (day / "message.pb").write_bytes(framed([message(7), message(8, airline="y" * hundred_mb)]))
    rss, result = _peak_rss_of_ingest(apache_url, huge)
    assert result == {"read": 6, "stored": 4, "quarantined": 2}
    assert rss - base_rss < 60, f"peak memory grew by {rss - base_rss:.0f} MiB"


records = st.fixed_dictionaries(
    {
        "flight_id": st.sampled_from(["a1", "b2", "", "x" * 13]),
        "latitude": st.one_of(st.floats(-100, 100, allow_nan=False), st.just("n")),
        "longitude": st.one_of(st.floats(-200, 200), st.just(float("nan"))),
        "altitude": st.one_of(st.integers(-5000, 90_000), st.floats(0, 1e5)),
        "timestamp": st.one_of(
            st.sampled_from([f"2024-03-01T00:00:0{i}Z" for i in range(5)]),
            st.text(max_size=5),
            st.integers(1709251200, 1709251210),
        ),
    }
)


@pytest.mark.apache
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(records, max_size=30),
    cut=st.integers(0, 200),
    noise=st.binary(max_size=40),
    as_pb=st.booleans(),
)
def test_random_and_corrupted_drops_always_reconcile(
    apache_url: str, tmp_path_factory, rows, cut, noise, as_pb
) -> None:
    landing = tmp_path_factory.mktemp("prop")
    day = landing / "2024-03-01"
    if as_pb:
        msgs = []
        for r in rows:
            lat = r["latitude"] if isinstance(r["latitude"], float) else 0.0
            msgs.append(
                message(
                    0,
                    flight_id=r["flight_id"],
                    latitude=lat,
                    longitude=r["longitude"],
                    altitude=int(r["altitude"]) % 2**31,
                    timestamp=str(r["timestamp"]),
                )
            )
        data = framed(msgs)
        day.mkdir(parents=True)
        (day / "p.pb").write_bytes(data[: len(data) - cut] + noise if cut else data + noise)
    else:
        lines = [json.dumps(r) for r in rows]
        write_jsonl(day / "j.jsonl", [*lines, noise.decode("latin-1")])
    # Any share of rejects publishes here: the drill is about the counts, not the threshold.
    report = ingest_partition(apache_url, date(2024, 3, 1), landing, max_reject_rate=1.0)
    assert report.reconciles, report
    with connect(apache_url) as conn:
        quarantined = conn.execute(
            "SELECT count(*), count(reason) FROM quarantine WHERE partition_day = '2024-03-01'"
        ).fetchone()
        ledger = conn.execute(
            "SELECT rows_read, rows_stored, rows_quarantined, duplicates "
            "FROM partition_loads WHERE partition_day = '2024-03-01'"
        ).fetchone()
    assert quarantined == (report.rows_quarantined, report.rows_quarantined)
    assert ledger == (
        report.rows_read,
        report.rows_stored,
        report.rows_quarantined,
        report.duplicates,
    )
    shutil.rmtree(landing)


DRILL_DAYS = [date(2024, 3, 1) + timedelta(days=i) for i in range(3)]
OLD_DAY = date(2022, 5, 1)  # older than everything else
# The cleaner's day: the raw horizon (90 days before it) falls just after OLD_DAY, so the
# cleaner drops OLD_DAY and nothing the backfills write, whichever runs first.
CLEAN_DAY = OLD_DAY + timedelta(days=91)


REAL_DAYS = [date(2022, 8, 2), date(2024, 1, 2)]


def _drill_landing(root: Path) -> None:
    """Three days sharing flights (metadata rows every day touches), one old day, and the
    bundled real drops."""
    for day in [OLD_DAY, *DRILL_DAYS]:
        write_pb(root / day.isoformat() / "d.pb", synthetic_day(4_000, day.isoformat(), 50))
    shutil.copytree(DATA / "drops", root, dirs_exist_ok=True)


@pytest.mark.apache
def test_runs_starting_together_on_a_fresh_instance_all_get_their_pool(
    apache_url: str, dagster_storage_url: str, production_instance: Path, tmp_path: Path
) -> None:
    """On a fresh instance every run inserts its pool's limit row before claiming a slot.
    The test holds that table until all the `flights ingest` calls wait on their insert, so
    they all race for it: each must go on with the winner's row and load its day."""
    landing = _kill_landing(tmp_path, 200)
    days = KILL_DAYS[:3]
    env = {**os.environ, "FLIGHTS_DATABASE_URL": apache_url}
    with holding(dagster_storage_url, "LOCK TABLE concurrency_limits IN EXCLUSIVE MODE"):
        runs = [
            subprocess.Popen(
                [FLIGHTS, "ingest", "--from", day.isoformat(), "--landing", str(landing)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for day in days
        ]
        with connect(dagster_storage_url, autocommit=True) as watcher:
            while watcher.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND query ILIKE '%INSERT INTO concurrency_limits%'"
            ).fetchone() != (len(runs),):
                ended = [r for r in runs if r.poll() is not None]
                assert not ended, [r.communicate()[0][-3000:] for r in ended]
                time.sleep(0.05)
    for run in runs:
        said, _ = run.communicate(timeout=300)
        assert run.returncode == 0, said[-3000:]
    with connect(apache_url) as conn:
        loaded = conn.execute("SELECT partition_day FROM partition_loads ORDER BY 1").fetchall()
    assert [row[0] for row in loaded] == days
    with dg.DagsterInstance.get() as instance:
        info = instance.event_log_storage.get_concurrency_info(WRITE_POOL)
    assert (info.slot_count, info.active_slot_count) == (2, 0)


@pytest.mark.apache
def test_overlapping_backfills_and_the_cleaner_at_once_match_sequential_runs(
    apache_url: str,
    apache_db_factory,
    production_instance: Path,
    tmp_path: Path,
) -> None:
    landing = tmp_path / "landing"
    _drill_landing(landing)
    sequential = apache_db_factory()
    for day in [OLD_DAY, *DRILL_DAYS, *REAL_DAYS]:
        ingest_partition(sequential, day, landing)
    clean_args = ["clean", "--date", CLEAN_DAY.isoformat()]
    env = {**os.environ, "FLIGHTS_LANDING_ROOT": str(landing)}
    done = subprocess.run(
        [FLIGHTS, *clean_args],
        env={**env, "FLIGHTS_DATABASE_URL": sequential},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr

    ingest_partition(apache_url, OLD_DAY, landing)
    env["FLIGHTS_DATABASE_URL"] = apache_url
    with _daemon(env):
        selections = (
            ["--from", DRILL_DAYS[0].isoformat(), "--to", DRILL_DAYS[1].isoformat()],
            ["--from", DRILL_DAYS[1].isoformat(), "--to", DRILL_DAYS[2].isoformat()],
            ["--partitions", ",".join(d.isoformat() for d in REAL_DAYS)],
        )
        backfills = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "dagster",
                    "job",
                    "backfill",
                    "-w",
                    str(ROOT / "workspace.yaml"),
                    "-j",
                    "ingest_job",
                    *selection,
                    "--noprompt",
                ],
                env=env,
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for selection in selections
        ]
        cleaner = subprocess.run(
            [FLIGHTS, *clean_args], env=env, capture_output=True, text=True, timeout=300
        )
        assert cleaner.returncode == 0, cleaner.stderr
        for proc in backfills:
            out, _ = proc.communicate(timeout=300)
            assert proc.returncode == 0, out[-2000:]
        deadline = time.monotonic() + 420
        with dg.DagsterInstance.get() as instance:
            while time.monotonic() < deadline:
                runs = instance.get_runs()
                backfilled = [r for r in runs if r.tags.get("dagster/backfill")]
                if len(backfilled) >= 6 and all(r.is_finished for r in runs):
                    break
                time.sleep(1)
            runs = instance.get_runs()
            failures = [
                f"{r.tags.get('dagster/partition', '')}: {event.message}"
                for r in runs
                if r.status.value != "SUCCESS"
                for event in instance.all_logs(r.run_id)
                if event.dagster_event is not None and event.dagster_event.is_failure
            ]
        summary = sorted(
            (
                r.job_name,
                r.tags.get("dagster/partition", ""),
                r.status.value,
                bool(r.tags.get("dagster/backfill")),
            )
            for r in runs
        )
        assert all(status == "SUCCESS" for _, _, status, _ in summary), (summary, failures)
        ingest_runs = [row for row in summary if row[0] == "ingest_job" and row[3]]
        assert len(ingest_runs) == 6, summary
    ours, theirs = snapshot(apache_url), snapshot(sequential)
    strip = lambda rows: [r[1:] for r in rows]  # noqa: E731 - row versions differ, values not
    assert strip(ours["data"]) == strip(theirs["data"])
    assert [r[1:-1] for r in ours["meta"]] == [r[1:-1] for r in theirs["meta"]]
    assert ours["quarantine"] == theirs["quarantine"]
    with connect(apache_url) as conn:
        real = conn.execute(
            "SELECT rows_read, rows_stored, duplicates FROM partition_loads "
            "WHERE partition_day = ANY(%s) ORDER BY 1",
            (REAL_DAYS,),
        ).fetchall()
    assert real == [(610, 305, 305), (1742, 871, 871)]  # every real point stored once


KILL_DAYS = [date(2024, 4, 1) + timedelta(days=i) for i in range(4)]
KILL_POINTS = 5_000
DAY_LOCK = sql.SQL("SELECT pg_advisory_lock({}, {})")


def _kill_landing(tmp_path: Path, points: int) -> Path:
    """A landing zone holding each of KILL_DAYS, `points` synthetic points a day."""
    landing = tmp_path / "landing"
    for day in KILL_DAYS:
        write_pb(landing / day.isoformat() / "d.pb", synthetic_day(points, day.isoformat()))
    return landing


def _runs_list(env: dict[str, str]) -> str:
    listed = subprocess.run(
        [FLIGHTS, "runs", "list"], env=env, capture_output=True, text=True, timeout=300
    )
    assert listed.returncode == 0, listed.stderr
    return listed.stdout


@pytest.mark.apache
def test_ingest_runs_killed_at_any_moment_never_wedge_later_runs(
    apache_url: str,
    apache_db_factory,
    production_instance: Path,
    tmp_path: Path,
) -> None:
    landing = _kill_landing(tmp_path, KILL_POINTS)
    env = {**os.environ, "FLIGHTS_DATABASE_URL": apache_url}
    before_write, during_copy, during_refresh, fresh = KILL_DAYS

    def start(day: date) -> subprocess.Popen:
        return subprocess.Popen(
            [FLIGHTS, "ingest", "--from", day.isoformat(), "--landing", str(landing)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def kill(proc: subprocess.Popen) -> None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)

    # Two runs caught at once, each holding one of the pool's two slots: one before its
    # write (waiting for its day's lock), one in its COPY.
    day_lock = DAY_LOCK.format(_DAY_LOCK_NAMESPACE, before_write.toordinal())
    with holding(apache_url, day_lock), holding(apache_url, "LOCK TABLE flight_data IN SHARE MODE"):
        first = start(before_write)
        wait_until(apache_url, waiting_on_lock("%advisory%"), first, "the run before its write")
        second = start(during_copy)
        wait_until(apache_url, waiting_on_lock("COPY%"), second, "the run in its COPY")
        kill(first)
        kill(second)
    listed = _runs_list(env)
    assert "2 of 2 slots taken" in listed and listed.count("STUCK") == 2, listed
    # A third, killed during the refresh after its ingest committed.
    with holding(apache_url, "LOCK TABLE flight_minutes IN ACCESS EXCLUSIVE MODE"):
        third = start(during_refresh)
        wait_until(apache_url, waiting_on_lock("%flight_minutes%"), third, "the refresh")
        kill(third)
    assert "STUCK" in _runs_list(env)

    later = subprocess.run(
        [FLIGHTS, "ingest", "--from", fresh.isoformat(), "--landing", str(landing)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert later.returncode == 0, later.stderr[-3000:]
    with dg.DagsterInstance.from_config(str(production_instance)) as instance:
        statuses = sorted(r.status.value for r in instance.get_runs())
        assert statuses == ["FAILURE", "FAILURE", "FAILURE", "SUCCESS"], statuses
        pool = instance.event_log_storage.get_concurrency_info("flight_store_writes")
        assert pool.claimed_slots == []
    assert "STUCK" not in _runs_list(env)

    rerun = subprocess.run(
        [
            FLIGHTS,
            "ingest",
            "--from",
            before_write.isoformat(),
            "--to",
            during_refresh.isoformat(),
            "--landing",
            str(landing),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    _assert_days_exact(apache_url, apache_db_factory(), landing, KILL_DAYS)


def _assert_days_exact(url: str, reference: str, landing: Path, days: list[date]) -> None:
    """Every day stored once and whole, as one run of each day without faults stores it."""
    for day in days:
        ingest_partition(reference, day, landing)
    strip = lambda rows: [r[1:] for r in rows]  # noqa: E731 - row versions differ, values not
    ours, theirs = snapshot(url), snapshot(reference)
    assert strip(ours["data"]) == strip(theirs["data"])
    with connect(url) as conn:
        ledger = conn.execute(
            "SELECT partition_day, rows_read, rows_stored FROM partition_loads ORDER BY 1"
        ).fetchall()
        minutes = conn.execute(
            "SELECT time_bucket('1 day', bucket)::date, sum(points)::int FROM flight_minutes "
            "GROUP BY 1 ORDER BY 1"
        ).fetchall()
    assert ledger == [(day, KILL_POINTS, KILL_POINTS) for day in days]
    assert minutes == [(day, KILL_POINTS) for day in days]


@contextlib.contextmanager
def _daemon(env: dict[str, str]) -> Iterator[None]:
    """`dagster-daemon run` on the workspace: queued runs, sensors, backfills, as in the UI.
    Starting a run process can outlast Dagster's default 60 s call timeout on a loaded test
    machine, which fails the run at launch: the drills allow it five minutes."""
    env = {**env, "DAGSTER_GRPC_TIMEOUT_SECONDS": "300"}
    daemon = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("dagster-daemon")),
            "run",
            "-w",
            str(ROOT / "workspace.yaml"),
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield
    finally:
        os.killpg(daemon.pid, signal.SIGTERM)
        daemon.wait(timeout=60)
        with contextlib.suppress(ProcessLookupError):  # a code server the daemon left behind
            os.killpg(daemon.pid, signal.SIGKILL)


def _backfill(env: dict[str, str], days: list[date]) -> None:
    """A backfill as the UI launches one: the daemon queues and runs one run per day."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "dagster",
            "job",
            "backfill",
            "-w",
            str(ROOT / "workspace.yaml"),
            "-j",
            "ingest_job",
            "--partitions",
            ",".join(d.isoformat() for d in days),
            "--noprompt",
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


def _ingest_runs(instance: dg.DagsterInstance) -> dict[str, list[str]]:
    """Status -> partitions of the backfilled ingest runs."""
    found: dict[str, list[str]] = {}
    for run in instance.get_runs():
        if run.job_name == "ingest_job" and run.tags.get("dagster/backfill"):
            found.setdefault(run.status.value, []).append(run.tags["dagster/partition"])
    return {status: sorted(days) for status, days in found.items()}


def _run_report(instance: dg.DagsterInstance) -> list[tuple[str, str, str]]:
    """Each run's job, status and last event, for a drill's failure message."""
    report = []
    for run in instance.get_runs():
        events = [e.message for e in instance.all_logs(run.run_id)]
        failures = [m for m in events if "fail" in m.lower() or "error" in m.lower()]
        report.append((run.job_name, run.status.value, " | ".join(failures + events[-3:])[-3000:]))
    return report


def _wait_for_runs(
    instance: dg.DagsterInstance, expected: dict[str, list[str]], within: float = 600
) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if _ingest_runs(instance) == expected:
            return
        time.sleep(0.5)
    pytest.fail(f"runs {_run_report(instance)}, expected {expected}")


@pytest.mark.apache
@pytest.mark.timeout(1200)  # a daemon, its code server and five run processes start here
def test_backfill_runs_killed_under_the_daemon_never_wedge_later_runs(
    apache_url: str,
    apache_db_factory,
    production_instance: Path,
    tmp_path: Path,
) -> None:
    landing = _kill_landing(tmp_path, KILL_POINTS)
    env = {**os.environ, "FLIGHTS_DATABASE_URL": apache_url, "FLIGHTS_LANDING_ROOT": str(landing)}
    before_write, during_copy, _, fresh = KILL_DAYS
    day_lock = DAY_LOCK.format(_DAY_LOCK_NAMESPACE, before_write.toordinal())
    both_caught = (
        "SELECT count(*) = 2 FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock' AND (wait_event = 'advisory' OR query ILIKE 'COPY%')"
    )
    with _daemon(env), dg.DagsterInstance.get() as instance:
        # Two run workers caught holding both slots of the pool, one before its write and
        # one in its COPY, are killed like an OOM kill would.
        with (
            holding(apache_url, day_lock),
            holding(apache_url, "LOCK TABLE flight_data IN SHARE MODE"),
        ):
            _backfill(env, [before_write, during_copy])
            try:
                wait_until(apache_url, both_caught, None, "both runs caught")
            except pytest.fail.Exception:
                pytest.fail(f"runs never caught: {_run_report(instance)}")
            started = instance.get_runs(
                filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])
            )
            workers = [
                int(r.tags[WORKER_TAG].split(":")[1]) for r in started if WORKER_TAG in r.tags
            ]
            assert len(workers) == 2, started
            for pid in workers:
                os.kill(pid, signal.SIGKILL)
        # A later backfill of another day and of the killed ones completes by itself.
        _backfill(env, [before_write, during_copy, fresh])
        _wait_for_runs(
            instance,
            {
                "FAILURE": [before_write.isoformat(), during_copy.isoformat()],
                "SUCCESS": [before_write.isoformat(), during_copy.isoformat(), fresh.isoformat()],
            },
        )
        pool = instance.event_log_storage.get_concurrency_info("flight_store_writes")
        assert pool.claimed_slots == []
    days = [before_write, during_copy, fresh]
    _assert_days_exact(apache_url, apache_db_factory(), landing, days)


def _read_until(proc: subprocess.Popen, text: str, within: float = 300) -> str:
    """The process's output up to the first line containing `text` (it must not end first)."""
    assert proc.stdout is not None
    seen = ""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.5)
        if ready:
            line = proc.stdout.readline()
            assert line, f"the process ended before saying {text!r}: {seen[-2000:]}"
            seen += line
            if text in line:
                return seen
    pytest.fail(f"never said {text!r}: {seen[-2000:]}")


@pytest.mark.apache
def test_a_run_waiting_for_a_slot_says_for_whom_and_stops_at_once_and_clear_frees_slots(
    apache_url: str, production_instance: Path, tmp_path: Path
) -> None:
    landing = _kill_landing(tmp_path, 500)
    env = {**os.environ, "FLIGHTS_DATABASE_URL": apache_url, "COLUMNS": "200"}

    def start(day: date) -> subprocess.Popen:
        return subprocess.Popen(
            [FLIGHTS, "ingest", "--from", day.isoformat(), "--landing", str(landing)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )

    first_day, second_day, waiting_day, _ = KILL_DAYS
    day_lock = DAY_LOCK.format(_DAY_LOCK_NAMESPACE, first_day.toordinal())
    with holding(apache_url, day_lock), holding(apache_url, "LOCK TABLE flight_data IN SHARE MODE"):
        first, second = start(first_day), start(second_day)
        wait_until(apache_url, waiting_on_lock("%advisory%"), first, "the first run writing")
        wait_until(apache_url, waiting_on_lock("COPY%"), second, "the second run writing")
        for stop, status in ((signal.SIGTERM, 143), (signal.SIGINT, 130)):
            waiting = start(waiting_day)
            said = _read_until(waiting, "waiting for a slot in pool flight_store_writes")
            assert said.count("held by") == 1 and said.count(" alive)") == 2, said
            waiting.send_signal(stop)
            code = waiting.wait(timeout=60)
            told = waiting.stdout.read()
            assert code == status and f"stopped by {stop.name}" in told, (code, said + told)
        for proc in (first, second):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=60)
    listed = _runs_list(env)
    assert listed.count("STUCK") == 2, listed
    cleared = subprocess.run(
        [FLIGHTS, "runs", "clear"], env=env, capture_output=True, text=True, timeout=300
    )
    assert cleared.returncode == 0 and cleared.stdout.count("released run") == 2, cleared
    listed = _runs_list(env)
    assert "0 of 2 slots taken" in listed and "STUCK" not in listed, listed
