"""The embedded database: a PostgreSQL 15 cluster with TimescaleDB inside the project folder.

`up`, `down` and `status` are idempotent. The server listens on 127.0.0.1 only, with trust
authentication, because it is a single-user development and demo database; production points
FLIGHTS_DATABASE_URL at its own TimescaleDB instead.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from pipelines import settings

INSTALL_SCRIPT = settings.PROJECT_ROOT / "scripts" / "install-timescaledb.sh"
DATABASES = ("flights", "dagster")

# Settings appended to postgresql.conf at initdb; why each is here:
SERVER_SETTINGS = {
    "shared_preload_libraries": "'timescaledb'",  # TimescaleDB must be preloaded
    "listen_addresses": "'127.0.0.1'",  # never reachable from other hosts
    "timescaledb.telemetry_level": "off",
    "max_connections": "200",  # Dagster runs, the API pool and tests share one server
    "shared_buffers": "'512MB'",
    "max_wal_size": "'4GB'",  # day loads are bulk writes; avoid checkpoint storms
    "timezone": "'UTC'",
}


class LocalDatabaseError(RuntimeError):
    """The embedded database cannot be started or managed; the message says what to do."""


@dataclass(frozen=True)
class LocalStatus:
    running: bool
    initialised: bool
    data_dir: Path
    url: str


def _paths() -> tuple[Path, Path, Path]:
    base = settings.local_db_dir()
    return base / "pgdata", base / "run", base / "postgres.log"


def _server_user() -> str | None:
    """PostgreSQL refuses to run as root: use the `postgres` account when we are root."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError as exc:
        raise LocalDatabaseError(
            "running as root but there is no 'postgres' system user to own the database; "
            "install postgresql-15 or set FLIGHTS_DATABASE_URL to an existing TimescaleDB"
        ) from exc
    return "postgres"


def _run(args: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    user = _server_user()
    cmd = ["runuser", "-u", user, "--", *args] if user else args
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise LocalDatabaseError(f"{Path(args[0]).name} failed: {detail[-1] if detail else '?'}")
    return result


def _ensure_timescaledb() -> None:
    control = _pg_sharedir() / "extension" / "timescaledb.control"
    if control.exists():
        return
    result = subprocess.run(["bash", str(INSTALL_SCRIPT)], capture_output=True, text=True)
    if result.returncode != 0:
        raise LocalDatabaseError(result.stderr.strip() or "building TimescaleDB failed")


def _tool(name: str) -> str:
    """A PostgreSQL 15 server binary (FLIGHTS_PG_BIN)."""
    return str(settings.pg_bin() / name)


def _pg_sharedir() -> Path:
    pg_config = Path(_tool("pg_config"))
    if not pg_config.exists():
        raise LocalDatabaseError(
            f"PostgreSQL 15 server binaries not found in {pg_config.parent}; install postgresql-15 "
            "(or set FLIGHTS_PG_BIN), or set FLIGHTS_DATABASE_URL to an existing TimescaleDB"
        )
    out = subprocess.run([str(pg_config), "--sharedir"], capture_output=True, text=True)
    return Path(out.stdout.strip())


def _grant_traverse(path: Path) -> None:
    """Let the server account reach a data directory below root-only folders (e.g. mktemp)."""
    for parent in path.parents:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o001)


def _initdb(data_dir: Path, run_dir: Path) -> None:
    user = _server_user()
    for d in (data_dir, run_dir):
        d.mkdir(parents=True, exist_ok=True)
        if user:
            shutil.chown(d, user, user)
    if user:
        _grant_traverse(data_dir)
    data_dir.chmod(0o700)
    _run(
        [
            _tool("initdb"),
            "-D",
            str(data_dir),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
        ]
    )
    conf = data_dir / "postgresql.conf"
    lines = [f"{key} = {value}" for key, value in SERVER_SETTINGS.items()]
    lines.append(f"unix_socket_directories = '{run_dir}'")
    with conf.open("a") as fh:
        fh.write("\n# flights: embedded server settings\n" + "\n".join(lines) + "\n")


def status() -> LocalStatus:
    data_dir, _, _ = _paths()
    initialised = (data_dir / "PG_VERSION").exists()
    running = False
    if initialised:
        running = (
            _run([_tool("pg_ctl"), "-D", str(data_dir), "status"], check=False).returncode == 0
        )
    return LocalStatus(running, initialised, data_dir, settings.local_database_url())


def up() -> LocalStatus:
    """Start the server (initialising and building what is missing) and create its databases."""
    data_dir, run_dir, log = _paths()
    _ensure_timescaledb()
    if not (data_dir / "PG_VERSION").exists():
        _initdb(data_dir, run_dir)
    if not status().running:
        run_dir.mkdir(parents=True, exist_ok=True)
        user = _server_user()
        if user:
            shutil.chown(run_dir, user, user)
            log.touch()
            shutil.chown(log, user, user)
        _run(
            [
                _tool("pg_ctl"),
                "-D",
                str(data_dir),
                "-l",
                str(log),
                "-w",
                "-t",
                "60",
                "-o",
                f"-p {settings.local_db_port()}",
                "start",
            ]
        )
    _create_databases()
    return status()


def _create_databases() -> None:
    with psycopg.connect(settings.local_database_url("postgres"), autocommit=True) as conn:
        existing = {r[0] for r in conn.execute("SELECT datname FROM pg_database")}
        for name in DATABASES:
            if name not in existing:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def down() -> LocalStatus:
    data_dir, _, _ = _paths()
    if status().running:
        _run([_tool("pg_ctl"), "-D", str(data_dir), "-m", "fast", "-w", "stop"])
    return status()
