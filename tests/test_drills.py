"""Failure drills against the real database and processes: a database restarted mid-run, a
hostile landing zone, random and corrupted drops, overlapping backfills with the cleaner."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.ingest import ingest_partition
from pipelines.warehouse.connection import connect
from tests.conftest import DATA
from tests.drops_factory import framed, message, synthetic_day, write_jsonl, write_pb
from tests.test_foundation import flights
from tests.test_ingest import FLIGHTS, snapshot, wait_for_copy

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.apache
def test_database_restarted_mid_run_the_retry_completes(
    scratch_env: dict[str, str], tmp_path: Path
) -> None:
    assert flights("db", "up", env=scratch_env).returncode == 0
    assert flights("migrate", env=scratch_env).returncode == 0
    url = flights("db", "url", env=scratch_env).stdout.strip()
    landing = tmp_path / "landing"
    write_pb(landing / "2024-03-01" / "day.pb", synthetic_day(300_000))
    home = tmp_path / "home"
    home.mkdir()
    env = {**scratch_env, "FLIGHTS_DATABASE_URL": url, "DAGSTER_HOME": str(home)}
    proc = subprocess.Popen(
        [FLIGHTS, "ingest", "--from", "2024-03-01", "--landing", str(landing)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for_copy(url, proc)
    restart = subprocess.run([FLIGHTS, "db", "down"], env=scratch_env, capture_output=True)
    assert restart.returncode == 0
    assert flights("db", "up", env=scratch_env).returncode == 0
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-2000:]
    with connect(url) as conn:
        stored = conn.execute(
            "SELECT count(*), count(DISTINCT (flight_id, timestamp)) FROM flight_data"
        ).fetchone()
        ledger = conn.execute("SELECT rows_read, rows_stored FROM partition_loads").fetchall()
    assert stored == (300_000, 300_000)
    assert ledger == [(300_000, 300_000)]


@pytest.fixture(scope="module")
def scratch_env(tmp_path_factory: pytest.TempPathFactory):
    from tests.test_foundation import _free_port

    base = tmp_path_factory.mktemp("drill-db")
    env = {
        **os.environ,
        "FLIGHTS_LOCAL_DB_DIR": str(base / "db"),
        "FLIGHTS_DB_PORT": str(_free_port()),
    }
    env.pop("FLIGHTS_DATABASE_URL", None)
    yield env
    flights("db", "down", env=env)


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


def _dagster_home(path: Path) -> Path:
    """The production instance (runs, events and schedules in PostgreSQL, queued runs), its
    storage created here once: processes that start together must not race to create it."""
    path.mkdir()
    shutil.copy(ROOT / "dagster_home" / "dagster.yaml", path)
    with dg.DagsterInstance.from_config(str(path)) as instance:
        assert instance.get_runs() == []
    return path


@pytest.mark.apache
def test_overlapping_backfills_and_the_cleaner_at_once_match_sequential_runs(
    apache_url: str,
    apache_db_factory,
    dagster_storage_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DAGSTER_POSTGRES_URL", dagster_storage_url)
    monkeypatch.setenv("DAGSTER_HOME", str(_dagster_home(tmp_path / "home")))
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
    finally:
        os.killpg(daemon.pid, signal.SIGTERM)
        daemon.wait(timeout=60)
        with contextlib.suppress(ProcessLookupError):  # a code server the daemon left behind
            os.killpg(daemon.pid, signal.SIGKILL)
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
