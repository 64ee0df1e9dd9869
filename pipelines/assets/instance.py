"""The Dagster instance the CLI runs on, opened from the settings rather than the environment.

dagster.yaml reads its storage URL from DAGSTER_POSTGRES_URL; in our own processes that value
comes from the settings (which default it from FLIGHTS_DATABASE_URL), handed to Dagster as an
override instead of being written into the environment.
"""

from __future__ import annotations

from typing import Any

import dagster as dg
import psycopg
import yaml
from dagster._core.instance.ref import InstanceRef

from pipelines import settings
from pipelines.warehouse.connection import connect

# The storage section of dagster.yaml whose URL the settings supply.
STORAGE_FROM_ENV = {"postgres": {"postgres_url": {"env": "DAGSTER_POSTGRES_URL"}}}


class StorageUnreachable(ValueError):
    """Dagster's storage database cannot be reached: said in one line with the next step."""


def check_storage(url: str) -> None:
    """Fails in one line when Dagster's storage cannot be reached: Dagster itself retries
    for seconds, then prints pages of tracebacks."""
    try:
        with connect(url, connect_timeout=10):
            pass
    except psycopg.OperationalError as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        if "does not exist" in reason:
            step = "create that database on its server, or set DAGSTER_POSTGRES_URL to one"
        else:
            step = (
                "is the server up (`flights db up` starts the local one) and "
                "DAGSTER_POSTGRES_URL right (`flights config` shows it)?"
            )
        raise StorageUnreachable(
            f"Dagster's storage cannot be reached ({reason}); {step}"
        ) from None


def open_instance() -> dg.DagsterInstance:
    """The instance in the settings' DAGSTER_HOME, its PostgreSQL storage URL from the settings."""
    home = settings.dagster_home()
    config_file = home / "dagster.yaml"
    config: dict[str, Any] = (
        yaml.safe_load(config_file.read_text()) or {} if config_file.exists() else {}
    )
    overrides: dict[str, Any] = {}
    if config.get("storage") == STORAGE_FROM_ENV:
        url = settings.dagster_database_url()
        check_storage(url)
        overrides["storage"] = {"postgres": {"postgres_url": url}}
    home.mkdir(parents=True, exist_ok=True)
    instance = dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home), overrides=overrides))
    # Dagster's storage opens a new connection for every event it records (tens per run)
    # unless told, as its webserver tells it, to keep them: a kept pool, no statement timeout.
    instance.optimize_for_webserver(statement_timeout=0, pool_recycle=3600, max_overflow=8)
    return instance
