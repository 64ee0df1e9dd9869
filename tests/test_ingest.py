"""Ingest into a real TimescaleDB: counts reconcile, re-runs change nothing, failures roll back."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest
from grpc_tools import protoc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.ingest import ingest_partition
from pipelines.quality.duplicates import PartitionKeys
from pipelines.warehouse.connection import connect
from pipelines.warehouse.ingest_checks import key_constraint
from tests.conftest import DATA
from tests.drops_factory import message, synthetic_day, write_jsonl, write_pb

REAL = DATA / "drops"
FLIGHTS = str(Path(sys.executable).with_name("flights"))


def snapshot(url: str) -> dict[str, list]:
    """Every stored row with its row version (xmin): equal snapshots mean nothing was
    rewritten, not merely that the values match."""
    with connect(url) as conn:
        return {
            "data": conn.execute(
                "SELECT xmin::text, * FROM flight_data ORDER BY flight_id, timestamp"
            ).fetchall(),
            "meta": conn.execute(
                "SELECT xmin::text, * FROM flight_metadata ORDER BY flight_id"
            ).fetchall(),
            "quarantine": conn.execute(
                "SELECT partition_day, source_file, line, reason FROM quarantine ORDER BY 1, 2, 3"
            ).fetchall(),
        }


def wait_for_copy(url: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    """Return once the process is seen in the middle of a COPY on `url`."""
    deadline = time.monotonic() + timeout
    with connect(url, autocommit=True) as watcher:
        while time.monotonic() < deadline:
            row = watcher.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND query ILIKE 'COPY%%' AND state = 'active'"
            ).fetchone()
            if row and row[0]:
                return
            assert proc.poll() is None, "the run ended before it was caught writing"
            time.sleep(0.02)
    pytest.fail("never saw the run writing")


def ledger(url: str, day: date) -> tuple:
    with connect(url) as conn:
        row = conn.execute(
            "SELECT files, rows_read, rows_stored, rows_quarantined, duplicates "
            "FROM partition_loads WHERE partition_day = %s",
            (day,),
        ).fetchone()
    assert row is not None
    return row


def test_real_drops_store_every_point_once_and_rerun_changes_nothing(db_url: str) -> None:
    first = {d: ingest_partition(db_url, d, REAL) for d in (date(2024, 1, 2), date(2022, 8, 2))}
    assert first[date(2024, 1, 2)].rows_read == 610
    assert first[date(2024, 1, 2)].rows_stored == 305
    assert first[date(2024, 1, 2)].duplicates == 305  # the .jsonl repeats the .pb exactly
    assert first[date(2022, 8, 2)].rows_stored == 871
    assert all(r.reconciles and r.rows_quarantined == 0 for r in first.values())
    before = snapshot(db_url)
    assert len(before["data"]) == 305 + 871
    jl516 = next(m for m in before["meta"] if m[1] == "3376ab31")
    assert jl516[2:6] == ("Japan Airlines", "JL516", "CTS", "HND")

    again = ingest_partition(db_url, date(2024, 1, 2), REAL)
    assert again.reconciles and again.rows_stored == 305
    assert snapshot(db_url) == before
    assert ledger(db_url, date(2024, 1, 2)) == (2, 610, 305, 0, 305)


def test_duplicates_exact_and_conflicting_within_and_across_files(
    db_url: str, tmp_path: Path
) -> None:
    day = tmp_path / "2024-03-01"
    write_pb(day / "a.pb", [message(0), message(1), message(1), message(2, altitude=1)])
    write_pb(day / "b.pb", [message(2), message(3), message(0, altitude=5)])
    report = ingest_partition(db_url, date(2024, 3, 1), tmp_path, batch_rows=2, max_reject_rate=1.0)
    # 7 read: 4 keys stored; message(1) repeated exactly; message(2) in a.pb conflicts with
    # message(2) in b.pb (b wins); message(0) likewise.
    assert (report.rows_read, report.rows_stored, report.duplicates, report.rows_quarantined) == (
        7,
        4,
        1,
        2,
    )
    with connect(db_url) as conn:
        alts = dict(
            conn.execute(
                "SELECT extract(second FROM timestamp)::int, altitude FROM flight_data"
            ).fetchall()
        )
        reasons = [r[0] for r in conn.execute("SELECT reason FROM quarantine").fetchall()]
    assert alts == {0: 5, 1: 30001, 2: 30002, 3: 30003}
    assert len(reasons) == 2
    assert all("conflicting duplicate" in r and "b.pb" in r for r in reasons)


def test_metadata_updates_but_empty_fields_never_erase(db_url: str, tmp_path: Path) -> None:
    write_pb(tmp_path / "2024-03-01" / "a.pb", [message(0)])
    ingest_partition(db_url, date(2024, 3, 1), tmp_path)
    write_pb(
        tmp_path / "2024-03-02" / "b.pb",
        [
            message(
                0,
                airline="",
                flight_number="TA2",
                departure_airport="",
                timestamp="2024-03-02T01:00:00Z",
            )
        ],
    )
    ingest_partition(db_url, date(2024, 3, 2), tmp_path)
    with connect(db_url) as conn:
        row = conn.execute(
            "SELECT airline, flight_number, departure_airport, arrival_airport FROM flight_metadata"
        ).fetchall()
    assert row == [("Test Air", "TA2", "GVA", "LHR")]


def test_bad_input_is_quarantined_with_reasons_and_counts_reconcile(
    db_url: str, tmp_path: Path
) -> None:
    day = tmp_path / "2024-03-01"
    write_pb(day / "ok.pb", [message(i) for i in range(5)])
    (day / "empty.jsonl").write_bytes(b"")
    (day / "cut.pb").write_bytes((day / "ok.pb").read_bytes().replace(b"abc123", b"zzz999")[:-3])
    write_jsonl(
        day / "bad.jsonl",
        ["{oops", {"flight_id": "q", "latitude": 300, "longitude": 1, "timestamp": "1709287200"}],
    )
    (day / "readme.md").write_text("not a drop")
    report = ingest_partition(db_url, date(2024, 3, 1), tmp_path)
    assert report.reconciles
    assert (report.rows_read, report.rows_stored, report.rows_quarantined) == (14, 9, 5)
    with connect(db_url) as conn:
        rows = conn.execute(
            "SELECT source_file, line, reason, raw_record FROM quarantine "
            "ORDER BY source_file, line"
        ).fetchall()
    assert [(r[0], r[1]) for r in rows] == [
        ("2024-03-01/bad.jsonl", 1),
        ("2024-03-01/bad.jsonl", 2),
        ("2024-03-01/cut.pb", 5),
        ("2024-03-01/empty.jsonl", None),
        ("2024-03-01/readme.md", None),
    ]
    assert all(r[2] for r in rows)
    assert rows[1][3] is not None and '"latitude": 300' in rows[1][3]


def test_drops_written_with_the_seed_proto_decode(db_url: str, tmp_path: Path) -> None:
    out = tmp_path / "seedgen"
    out.mkdir()
    seed = Path(__file__).resolve().parent / "seed"
    assert (
        protoc.main(["protoc", f"-I{seed}", f"--python_out={out}", str(seed / "flight_data.proto")])
        == 0
    )
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "from google.protobuf.internal.encoder import _VarintBytes;"
        "import flight_data_pb2 as f;"
        "msgs=[f.FlightData(flight_id='seed01', latitude=1.0+i, longitude=2.0, altitude=100*i,"
        " airspeed=300, timestamp=f'2024-03-01T00:00:0{i}Z', airline='Seed Air')"
        " for i in range(5)];"
        "open(sys.argv[2],'wb').write(b''.join(_VarintBytes(len(m.SerializeToString()))"
        "+m.SerializeToString() for m in msgs))"
    )
    target = tmp_path / "landing" / "2024-03-01" / "seed.pb"
    target.parent.mkdir(parents=True)
    subprocess.run([sys.executable, "-c", code, str(out), str(target)], check=True)
    report = ingest_partition(db_url, date(2024, 3, 1), tmp_path / "landing")
    assert (report.rows_read, report.rows_stored) == (5, 5)
    with connect(db_url) as conn:
        assert conn.execute("SELECT airline FROM flight_metadata").fetchall() == [("Seed Air",)]


@pytest.mark.apache
def test_flights_ingest_cli_reports_each_day_and_is_idempotent(
    apache_url: str, flights_env: Path
) -> None:
    env = {**os.environ, "FLIGHTS_DATABASE_URL": apache_url}
    # A day without drops is refused (tests/test_publish.py); this range has drops every day.
    args = [FLIGHTS, "ingest", "--from", "2022-08-02", "--to", "2022-08-02", "--landing", str(REAL)]
    first = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)
    assert first.returncode == 0, first.stderr
    assert "2022-08-02" in first.stdout and "871" in first.stdout and "1,742" in first.stdout
    before = snapshot(apache_url)
    second = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)
    assert second.returncode == 0, second.stderr
    assert snapshot(apache_url) == before


@pytest.mark.apache
def test_a_run_killed_during_its_write_leaves_nothing_and_the_rerun_completes(
    apache_url: str, flights_env: Path, tmp_path: Path
) -> None:
    landing = tmp_path / "big"
    write_pb(landing / "2024-03-01" / "day.pb", synthetic_day(240_000))
    env = {**os.environ, "FLIGHTS_DATABASE_URL": apache_url}
    proc = subprocess.Popen(
        [FLIGHTS, "ingest", "--from", "2024-03-01", "--landing", str(landing)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    wait_for_copy(apache_url, proc)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    time.sleep(0.5)
    with connect(apache_url) as conn:
        assert conn.execute("SELECT count(*) FROM flight_data").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM partition_loads").fetchone() == (0,)
    report = ingest_partition(apache_url, date(2024, 3, 1), landing)
    assert report.rows_stored == 240_000 and report.reconciles
    shutil.rmtree(landing)


def test_progress_reaches_the_cli_with_bytes_rows_and_totals(
    apache_url: str, tmp_path: Path
) -> None:
    from pipelines.ingest import progress_watcher

    day = tmp_path / "2024-03-01"
    write_pb(day / "a.pb", synthetic_day(2_500, flights=50))
    write_jsonl(day / "b.jsonl", [{"flight_id": "x", "latitude": 1}] * 3)
    seen: list[tuple[int, int, int]] = []
    token = progress_watcher.set(lambda done, total, rows: seen.append((done, total, rows)))
    try:
        report = ingest_partition(
            apache_url, date(2024, 3, 1), tmp_path, batch_rows=500, max_reject_rate=1.0
        )
    finally:
        progress_watcher.reset(token)
    total = report.bytes
    assert {t for _, t, _ in seen} == {total}
    assert seen[-1] == (total, total, report.rows_read)
    assert [s[0] for s in seen] == sorted(s[0] for s in seen)  # bytes only grow
    assert [s[2] for s in seen] == sorted(s[2] for s in seen)
    inside = [done for done, _, rows in seen if 0 < done < (day / "a.pb").stat().st_size]
    assert len(inside) >= 3  # within a file, not only at its end


def test_the_key_check_finds_the_enforced_primary_key_and_misses_it_when_gone(
    db_url: str,
) -> None:
    with connect(db_url) as conn:
        assert key_constraint(conn) == "flight_data_pkey"
        conn.execute("ALTER TABLE flight_data DROP CONSTRAINT flight_data_pkey")
        assert key_constraint(conn) is None
        conn.execute('ALTER TABLE flight_data ADD UNIQUE ("timestamp", flight_id)')
        assert key_constraint(conn) is not None


class _SmallRuns(PartitionKeys):
    RUN_KEYS = 5  # many runs from a few keys


# A batch is keys within a few seconds of a start: the spans of batches and runs then meet
# or miss each other, as in drops read in time order, out of order, or overlapping.
batch_keys = st.builds(
    lambda start, keys: {(flight, start + second) for flight, second in keys},
    st.integers(0, 40),
    st.sets(st.tuples(st.sampled_from(["a1", "b2", "c3"]), st.integers(0, 6)), max_size=12),
)


@settings(max_examples=300, deadline=None)
@given(batches=st.lists(batch_keys, max_size=12))
def test_keys_of_earlier_batches_are_found_in_every_sorted_run(
    batches: list[set[tuple[str, int]]],
) -> None:
    seen: set[tuple[str, int]] = set()
    largest_batch = 0
    with _SmallRuns() as keys:
        for batch in batches:
            rows = sorted(batch)
            frame = pd.DataFrame(
                {
                    "flight_id": [f for f, _ in rows],
                    "timestamp": pd.to_datetime([t for _, t in rows], unit="s", utc=True),
                }
            )
            split = keys.split(frame, "drop.pb")
            found = zip(
                split.seen["flight_id"],
                split.seen["timestamp"].astype("int64") // 10**9,
                strict=True,
            )
            assert list(found) == [row for row in rows if row in seen]
            assert len(split.new) == sum(row not in seen for row in rows)
            # Only the run being filled is in memory, however many keys came before.
            largest_batch = max(largest_batch, len(split.new))
            assert keys.keys_in_memory <= max(_SmallRuns.RUN_KEYS, largest_batch)
            seen |= batch


# Times a few microseconds apart, to the nanosecond, as ISO text or epoch seconds: many pairs
# share a microsecond and differ below it.
_FINE_TIMES = st.tuples(
    st.integers(0, 4_000), st.sampled_from(["iso", "epoch"]), st.sampled_from([1.0, 1.5])
)
_fine_days = iter(range(1, 10_000))


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(reports=st.lists(st.tuples(st.sampled_from("ab"), _FINE_TIMES), min_size=1, max_size=12))
def test_times_finer_than_a_microsecond_are_one_key_as_the_database_keeps_them(
    apache_url: str, tmp_path_factory: pytest.TempPathFactory, reports: list
) -> None:
    """Two reports of a flight a nanosecond apart were two keys to the ingest and one to the
    table's primary key: the upsert failed the whole day (`ON CONFLICT DO UPDATE command
    cannot affect row a second time`). Times are kept to the microsecond from the start, so
    such reports are duplicates (the same values) or conflicting duplicates, and the day
    completes and reconciles."""
    day = date(2023, 1, 1) + timedelta(days=next(_fine_days))
    start = pd.Timestamp(day, tz="UTC") + pd.Timedelta(hours=6)
    records, keys = [], set()
    for flight, (nanos, spelling, latitude) in reports:
        moment = start + pd.Timedelta(nanoseconds=nanos)
        if spelling == "iso":
            text = f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond:06d}{moment.nanosecond:03d}Z"
        else:
            text = f"{moment.value // 10**9}.{moment.value % 10**9:09d}"
        records.append(
            {"flight_id": flight, "latitude": latitude, "longitude": 2, "timestamp": text}
        )
        keys.add((flight, moment.floor("us")))
    root = tmp_path_factory.mktemp("fine")
    write_jsonl(root / day.isoformat() / "t.jsonl", records)
    report = ingest_partition(apache_url, day, root, max_reject_rate=1.0)
    assert report.reconciles
    assert report.rows_stored == len(keys)
    with connect(apache_url) as conn:
        stored = conn.execute(
            "SELECT flight_id, timestamp FROM flight_data "
            "WHERE timestamp >= %s AND timestamp < %s + interval '1 day'",
            (start, start),
        ).fetchall()
    assert {(f, pd.Timestamp(t)) for f, t in stored} == keys
