"""The ground: the local server's lifecycle, the schema on both editions, the CLI."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from pipelines.warehouse import migrations
from pipelines.warehouse.connection import connect
from pipelines.warehouse.migrations import MigrationError, migrate

FLIGHTS = str(Path(sys.executable).with_name("flights"))


def flights(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([FLIGHTS, *args], capture_output=True, text=True, env=env, timeout=300)


def test_flight_data_is_a_one_day_hypertable_keyed_by_flight_and_time(db_url: str) -> None:
    with connect(db_url) as conn:
        interval = conn.execute(
            "SELECT time_interval FROM timescaledb_information.dimensions "
            "WHERE hypertable_name = 'flight_data' AND column_name = 'timestamp'"
        ).fetchone()
        assert interval is not None
        assert interval[0].total_seconds() == 86400
        key = conn.execute(
            """
            SELECT array_agg(a.attname ORDER BY k.ord)
            FROM pg_index i
            CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
            JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
            WHERE i.indrelid = %s::regclass AND i.indisprimary
            """,
            ("flight_data",),
        ).fetchone()
        assert key is not None and key[0] == ["flight_id", "timestamp"]
        meta_key = conn.execute(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a "
            "ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
            "WHERE i.indrelid = 'flight_metadata'::regclass AND i.indisprimary"
        ).fetchall()
        assert meta_key == [("flight_id",)]


def test_migrations_applied_twice_change_nothing(db_url: str) -> None:
    with connect(db_url) as conn:
        before = conn.execute("SELECT version, checksum FROM schema_migrations").fetchall()
        assert before, "the fixture migrated the database"
        assert migrate(conn) == []
        after = conn.execute("SELECT version, checksum FROM schema_migrations").fetchall()
    assert sorted(after) == sorted(before)


@pytest.mark.apache
def test_two_processes_migrating_at_once_make_one_schema(apache_db: str) -> None:
    env = {**os.environ, "FLIGHTS_DATABASE_URL": apache_db}
    procs = [
        subprocess.Popen(
            [FLIGHTS, "migrate"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    results = [(p.wait(timeout=120), *p.communicate()) for p in procs]
    assert [code for code, _, _ in results] == [0, 0], results
    outputs = sorted(out for _, out, _ in results)
    assert outputs[0].startswith("applied 001")
    assert outputs[1].strip() == "schema is up to date"
    with connect(apache_db) as conn:
        count = conn.execute(
            "SELECT count(*) FROM timescaledb_information.hypertables "
            "WHERE hypertable_name = 'flight_data'"
        ).fetchone()
        versions = conn.execute(
            "SELECT count(*), count(DISTINCT version) FROM schema_migrations"
        ).fetchone()
    assert count == (1,)
    assert versions is not None and versions[0] == versions[1] >= 2


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def scratch_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A second embedded server in its own folder and port, for lifecycle tests."""
    base = tmp_path_factory.mktemp("scratch-db")
    port = _free_port()
    env = {**os.environ, "FLIGHTS_LOCAL_DB_DIR": str(base / "db"), "FLIGHTS_DB_PORT": str(port)}
    env.pop("FLIGHTS_DATABASE_URL", None)
    yield env
    flights("db", "down", env=env)


@pytest.mark.apache
def test_db_up_twice_down_up_keeps_data(scratch_env: dict[str, str]) -> None:
    first = flights("db", "up", env=scratch_env)
    assert first.returncode == 0, first.stderr
    again = flights("db", "up", env=scratch_env)
    assert again.returncode == 0, again.stderr
    assert "database: running" in again.stdout
    url = flights("db", "url", env=scratch_env).stdout.strip()
    assert url.endswith(f":{scratch_env['FLIGHTS_DB_PORT']}/flights")

    assert flights("migrate", env=scratch_env).returncode == 0
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO flight_metadata (flight_id, airline) VALUES ('keepme', 'Test Air')"
        )

    down = flights("db", "down", env=scratch_env)
    assert down.returncode == 0 and "stopped" in down.stdout
    status = flights("db", "status", env=scratch_env)
    assert status.returncode == 3 and "stopped" in status.stdout
    assert flights("db", "down", env=scratch_env).returncode == 0
    assert flights("db", "up", env=scratch_env).returncode == 0
    assert flights("db", "status", env=scratch_env).returncode == 0
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT airline FROM flight_metadata WHERE flight_id = 'keepme'"
        ).fetchone()
    assert row == ("Test Air",)


@pytest.mark.apache
def test_a_database_without_timescaledb_is_refused_clearly(scratch_env: dict[str, str]) -> None:
    """A server that does not preload TimescaleDB cannot take the schema: one clear error."""
    assert flights("db", "up", env=scratch_env).returncode == 0
    conf = Path(scratch_env["FLIGHTS_LOCAL_DB_DIR"]) / "pgdata" / "postgresql.conf"
    original = conf.read_text()
    conf.write_text(original.replace("shared_preload_libraries = 'timescaledb'", ""))
    try:
        assert flights("db", "down", env=scratch_env).returncode == 0
        assert flights("db", "up", env=scratch_env).returncode == 0
        url = flights("db", "url", env=scratch_env).stdout.strip()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE DATABASE plain")
        plain = url.rsplit("/", 1)[0] + "/plain"
        with connect(plain) as conn, pytest.raises(MigrationError, match="TimescaleDB"):
            migrate(conn)
        result = flights("migrate", env={**scratch_env, "FLIGHTS_DATABASE_URL": plain})
        assert result.returncode == 1
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: TimescaleDB cannot be enabled")
    finally:
        conf.write_text(original)
        flights("db", "down", env=scratch_env)


def test_cli_help_and_one_line_failures() -> None:
    result = flights("--help")
    assert result.returncode == 0
    for command in ("db", "migrate"):
        assert command in result.stdout
    bad = flights(
        "migrate", env={**os.environ, "FLIGHTS_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/x"}
    )
    assert bad.returncode == 1
    assert bad.stderr.count("\n") == 1 and bad.stderr.startswith("error: ")
    assert "Traceback" not in bad.stderr


@pytest.mark.parametrize("edition_name", ["apache", "timescale"])
def test_every_migration_number_is_taken_once_per_edition(edition_name: str) -> None:
    versions = [m.version for m in migrations.pending_for(edition_name, set())]
    assert versions == sorted(set(versions))


def test_two_migrations_with_one_number_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("006_first.sql", "006_second.sql"):
        (tmp_path / name).write_text("SELECT 1;\n")
    monkeypatch.setattr(migrations, "MIGRATIONS_DIR", tmp_path)
    with pytest.raises(MigrationError, match="share number 006"):
        migrations.pending_for("apache", set())
