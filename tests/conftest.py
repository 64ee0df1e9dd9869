"""Fixtures: the real databases, started once per session, and an isolated database per test.

Two TimescaleDB editions are tested:
- `apache`: the embedded PostgreSQL 15 server with the Apache edition (`flights db up`);
- `licensed`: the Timescale-licensed edition on a PGlite server (scripts/pglite-server.mjs),
  where continuous aggregates exist. Each test gets its own database on either.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import dagster as dg
import psycopg
import pytest
from psycopg import sql

from pipelines import localdb, settings
from pipelines.warehouse.connection import connect
from pipelines.warehouse.migrations import migrate

ROOT = settings.PROJECT_ROOT
DATA = ROOT / "samples"  # the bundled real drops, shared with `flights demo`


@pytest.fixture(scope="session")
def apache_server() -> str:
    """The embedded server, started if needed; returns the URL of its maintenance database."""
    localdb.up()
    return settings.local_database_url("postgres")


@pytest.fixture(scope="session")
def licensed_server() -> Iterator[str]:
    """A PGlite server with Timescale-licensed TimescaleDB; yields a URL template."""
    proc = subprocess.Popen(
        ["node", str(ROOT / "scripts" / "pglite-server.mjs"), "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("READY "):
        proc.kill()
        pytest.fail(f"PGlite server did not start: {line!r}")
    port = int(line.split()[1])
    yield f"postgresql://postgres@127.0.0.1:{port}/{{dbname}}?sslmode=disable"
    proc.terminate()
    proc.wait(timeout=10)


def _new_apache_database(server_url: str) -> Iterator[str]:
    name = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield settings.local_database_url(name)
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture
def apache_db(apache_server: str) -> Iterator[str]:
    """An empty database on the Apache-edition server (not migrated)."""
    yield from _new_apache_database(apache_server)


@pytest.fixture
def licensed_db(licensed_server: str) -> str:
    """An empty database on the licensed-edition server (not migrated)."""
    return licensed_server.format(dbname=f"test_{uuid.uuid4().hex[:12]}")


@pytest.fixture(
    params=[
        pytest.param("apache", marks=pytest.mark.apache),
        pytest.param("licensed", marks=pytest.mark.licensed),
    ]
)
def empty_db(request: pytest.FixtureRequest) -> str:
    """An empty database on each edition in turn."""
    return request.getfixturevalue(f"{request.param}_db")


@pytest.fixture
def db_url(empty_db: str) -> str:
    """A migrated database on each edition in turn."""
    with connect(empty_db) as conn:
        migrate(conn)
    return empty_db


@pytest.fixture
def apache_url(apache_db: str) -> str:
    """A migrated database on the Apache edition only (speed and process-level tests)."""
    with connect(apache_db) as conn:
        migrate(conn)
    return apache_db


@pytest.fixture
def dagster_storage_url(apache_server: str) -> Iterator[str]:
    """An empty database for a Dagster instance's storage, PostgreSQL as in production."""
    yield from _new_apache_database(apache_server)


@pytest.fixture
def production_instance(
    dagster_storage_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """DAGSTER_HOME with the production instance (runs, events and schedules in PostgreSQL,
    queued runs); its storage is created here once: processes that start together must not
    race to create it. Returns the home folder."""
    monkeypatch.setenv("DAGSTER_POSTGRES_URL", dagster_storage_url)
    home = tmp_path / "production_home"
    home.mkdir()
    shutil.copy(ROOT / "dagster_home" / "dagster.yaml", home)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert instance.get_runs() == []
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


@pytest.fixture
def apache_db_factory(apache_server: str) -> Iterator[Callable[[], str]]:
    """Makes more migrated Apache-edition databases, dropped after the test."""
    made: list[Iterator[str]] = []

    def make() -> str:
        gen = _new_apache_database(apache_server)
        made.append(gen)
        url = next(gen)
        with connect(url) as conn:
            migrate(conn)
        return url

    yield make
    for gen in made:
        next(gen, None)


@pytest.fixture
def flights_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A clean environment for the CLI and Dagster: own DAGSTER_HOME and landing zone."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    landing = tmp_path / "landing"
    landing.mkdir()
    monkeypatch.setenv("FLIGHTS_LANDING_ROOT", str(landing))
    for var in ("FLIGHTS_DATABASE_URL", "DAGSTER_POSTGRES_URL"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path
