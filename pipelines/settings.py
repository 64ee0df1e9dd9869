"""Configuration from the environment, with defaults that work against the local database.

Every setting is read when asked for, never at import time, so tests and the CLI can change
the environment before anything connects.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SQL_DIR = PROJECT_ROOT / "sql"

DEFAULT_DB_PORT = 55432


def local_db_dir() -> Path:
    """Where the embedded PostgreSQL keeps its data, socket and log (an ignored folder)."""
    return Path(os.environ.get("FLIGHTS_LOCAL_DB_DIR", PROJECT_ROOT / ".flights")).resolve()


def local_db_port() -> int:
    return int(os.environ.get("FLIGHTS_DB_PORT", DEFAULT_DB_PORT))


def local_database_url(dbname: str = "flights") -> str:
    return f"postgresql://postgres@127.0.0.1:{local_db_port()}/{dbname}"


def database_url() -> str:
    """The flight store: FLIGHTS_DATABASE_URL, else the embedded local server."""
    return os.environ.get("FLIGHTS_DATABASE_URL") or local_database_url()


def dagster_database_url() -> str:
    """Dagster's run/event/schedule storage: its own database on the same server by default."""
    return os.environ.get("DAGSTER_POSTGRES_URL") or with_database(database_url(), "dagster")


def with_database(url: str, dbname: str) -> str:
    """The same server and credentials, another database (URLs only)."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql"):
        raise ValueError("FLIGHTS_DATABASE_URL must be a postgresql:// URL")
    return urlunsplit(parts._replace(path=f"/{dbname}"))


def landing_root() -> Path:
    return Path(os.environ.get("FLIGHTS_LANDING_ROOT", PROJECT_ROOT / "landing")).resolve()


def dagster_home() -> Path:
    return Path(os.environ.get("DAGSTER_HOME", PROJECT_ROOT / "dagster_home")).resolve()


def redact(url: str) -> str:
    """A URL safe to print: the password, if any, replaced."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def max_reject_rate() -> float:
    """Above this share of quarantined rows a partition's check fails and blocks downstream."""
    return float(os.environ.get("FLIGHTS_MAX_REJECT_RATE", "0.05"))


def export_defaults() -> None:
    """Put the effective configuration into the environment, for Dagster's EnvVar lookups."""
    os.environ.setdefault("FLIGHTS_DATABASE_URL", database_url())
    os.environ.setdefault("FLIGHTS_LANDING_ROOT", str(landing_root()))
    os.environ.setdefault("DAGSTER_HOME", str(dagster_home()))
    os.environ.setdefault("DAGSTER_POSTGRES_URL", dagster_database_url())


def _minutes(name: str, default: str) -> timedelta:
    raw = os.environ.get(name, default)
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ValueError(f"{name} must be a positive number of minutes, not {raw!r}")
    return timedelta(minutes=value)


def flight_gap() -> timedelta:
    """Positions of one aircraft further apart than this belong to two flights (OpenSky)."""
    return _minutes("FLIGHTS_FLIGHT_GAP_MINUTES", "30")


def landed_ground_time() -> timedelta:
    """An aircraft on the ground this long has landed: a new flight starts (OpenSky)."""
    return _minutes("FLIGHTS_LANDED_GROUND_MINUTES", "20")
