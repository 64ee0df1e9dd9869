"""The Dagster instance the CLI runs on, opened from the settings rather than the environment.

dagster.yaml reads its storage URL from DAGSTER_POSTGRES_URL; in our own processes that value
comes from the settings (which default it from FLIGHTS_DATABASE_URL), handed to Dagster as an
override instead of being written into the environment.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg
import yaml
from dagster._core.instance.ref import InstanceRef

from pipelines import settings
from pipelines.warehouse.connection import connect, first_line

# What an operator does about a dagster.yaml that cannot be read or loaded.
FIX_CONFIG = "fix it (the project's dagster_home/dagster.yaml is the reference)"

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
        reason = first_line(exc)
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


class InstanceConfigError(ValueError):
    """DAGSTER_HOME's dagster.yaml cannot be read or loaded: said in one line."""


def _config_reason(exc: Exception) -> str:
    """The first thing Dagster says is wrong, without the schema it appends."""
    errors = getattr(exc, "errors", None)
    if errors:
        text = str(errors[0].message)
    elif exc.__cause__ is not None:
        text = str(exc.__cause__)
    else:
        text = str(exc)
    text = text.removeprefix("Failure condition: ").split(" Expected: ")[0]
    lines = [line.strip() for line in text.split("Stack Trace:")[0].splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].endswith(":"):  # "... failed:", the cause on the next line
        lines = lines[1:]
    return re.sub(r"^[\w.]+(Error|Exception): ", "", lines[0]) if lines else type(exc).__name__


def _yaml_reason(exc: Exception) -> str:
    """YAML's problem and where it is, or the error's first line."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None)
    if problem and mark is not None:
        return f"{problem} at line {mark.line + 1}, column {mark.column + 1}"
    return first_line(exc)


def _instance_config(config_file: Path) -> dict[str, Any]:
    """dagster.yaml as a mapping ({} when absent), or one line saying why it is not one."""
    if not config_file.exists():
        return {}
    try:
        config = yaml.safe_load(config_file.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InstanceConfigError(
            f"{config_file} cannot be read ({_yaml_reason(exc)}); {FIX_CONFIG}"
        ) from None
    if not isinstance(config, dict):
        raise InstanceConfigError(
            f"{config_file} cannot be read (not a mapping of settings); {FIX_CONFIG}"
        )
    return config


def open_instance() -> dg.DagsterInstance:
    """The instance in the settings' DAGSTER_HOME, its PostgreSQL storage URL from the settings."""
    home = settings.dagster_home()
    config_file = home / "dagster.yaml"
    config = _instance_config(config_file)
    overrides: dict[str, Any] = {}
    if config.get("storage") == STORAGE_FROM_ENV:
        url = settings.dagster_database_url()
        check_storage(url)
        overrides["storage"] = {"postgres": {"postgres_url": url}}
    home.mkdir(parents=True, exist_ok=True)
    try:
        instance = dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home), overrides=overrides))
    except Exception as exc:  # Dagster meets some bad sections with any error at all
        raise InstanceConfigError(
            f"{config_file} cannot be loaded ({_config_reason(exc)}); {FIX_CONFIG}"
        ) from None
    # Dagster's storage opens a new connection for every event it records (tens per run)
    # unless told, as its webserver tells it, to keep them: a kept pool, no statement timeout.
    instance.optimize_for_webserver(statement_timeout=0, pool_recycle=3600, max_overflow=8)
    return instance
