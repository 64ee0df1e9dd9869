"""`flights demo`, the README's main command, end to end on the bundled real drops."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.test_ingest import FLIGHTS, snapshot


@pytest.mark.apache
def test_demo_reports_and_a_second_run_changes_nothing(apache_url: str, flights_env: Path) -> None:
    env = {
        **os.environ,
        "FLIGHTS_DATABASE_URL": apache_url,
        "FLIGHTS_LOCAL_DB_DIR": str(flights_env / "local"),
    }
    first = subprocess.run([FLIGHTS, "demo"], capture_output=True, text=True, env=env, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    out = first.stdout
    for day in ("2018-08-01", "2021-10-07", "2022-08-02", "2024-01-02"):
        assert f"{day} " in out
    assert out.count("ingested") == 4
    assert "Japan Airlines JL516 CTS→HND" in out
    assert "2024-01-02T07:22:55Z" in out  # the first point of the real track
    assert "dry run as of" in out and "flights ui" in out
    before = snapshot(apache_url)
    assert len(before["data"]) > 400_000

    second = subprocess.run([FLIGHTS, "demo"], capture_output=True, text=True, env=env, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    assert second.stdout.count("unchanged") == 4
    assert snapshot(apache_url) == before

    # The demo leaves the instance configured for its landing zone: the UI, the daemon and the
    # CLI started afterwards (without a landing root of their own) read the same drops.
    assert "FLIGHTS_LANDING_ROOT" in out  # this test's own variable overrides, and it says so
    env.pop("FLIGHTS_LANDING_ROOT")
    config = subprocess.run([FLIGHTS, "config"], capture_output=True, text=True, env=env)
    assert config.returncode == 0, config.stderr
    [row] = [line for line in config.stdout.splitlines() if "FLIGHTS_LANDING_ROOT" in line]
    assert str(flights_env / "local" / "demo-landing") in row and " file " in row
