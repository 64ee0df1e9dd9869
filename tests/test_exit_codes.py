"""`flights ingest` exit codes an operator can script on: 0 when every check passes, 0 with the
warning printed when a check only warns, 1 with one line naming the failed check and its
values (no traceback) when a blocking check fails."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import date, timedelta
from pathlib import Path

import pytest

from pipelines.ingest import ingest_partition
from tests.drops_factory import message, synthetic_day, write_jsonl, write_pb
from tests.test_ingest import FLIGHTS

OLD_DAY = date(2022, 5, 1)


def _ingest(day: date, landing: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FLIGHTS, "ingest", "--from", day.isoformat(), "--landing", str(landing)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.apache
def test_a_blocking_check_that_fails_exits_1_with_one_line_naming_it(
    apache_url: str, flights_env: Path
) -> None:
    landing = flights_env / "landing"
    day = landing / "2024-03-01"
    write_pb(day / "good.pb", [message(i) for i in range(3)])
    write_jsonl(day / "bad.jsonl", [json.dumps({"flight_id": ""})] * 7)
    done = _ingest(date(2024, 3, 1), landing, {**os.environ, "FLIGHTS_DATABASE_URL": apache_url})
    assert done.returncode == 1, done.stderr
    # The day is held (write-audit-publish): one line names the check, its values, what next.
    # (A new DAGSTER_HOME also gets Dagster's one-time welcome text; ours starts "Error:".)
    lines = [line for line in done.stderr.splitlines() if line.startswith(("Error", "error"))]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(
        "Error: held, not published: 2024-03-01 (check reject_rate failed: reject_rate=0.7"
    )
    assert "threshold=0.05" in lines[0]
    assert "Traceback" not in done.stdout + done.stderr


@pytest.mark.apache
def test_a_check_that_only_warns_exits_0_and_prints_the_warning(
    apache_url: str, flights_env: Path
) -> None:
    landing = flights_env / "landing"
    write_pb(landing / OLD_DAY.isoformat() / "d.pb", synthetic_day(200, OLD_DAY.isoformat()))
    ingest_partition(apache_url, OLD_DAY, landing)
    env = {**os.environ, "FLIGHTS_DATABASE_URL": apache_url, "FLIGHTS_LANDING_ROOT": str(landing)}
    cleaned = subprocess.run(
        [FLIGHTS, "clean", "--date", (OLD_DAY + timedelta(days=91)).isoformat()],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert cleaned.returncode == 0, cleaned.stderr
    # A late drop for the dropped day: stored, but below the horizon its aggregates are frozen.
    done = _ingest(OLD_DAY, landing, env)
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1, done.stderr
    assert "check minute_points_match_raw failed" in warnings[0]
    assert "below the raw retention horizon" in warnings[0]
    assert "warning" in done.stdout  # the day's status in the table
