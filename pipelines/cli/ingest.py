"""`flights ingest`: the same Dagster job the UI runs, in-process, for a range of days."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from pipelines import settings
from pipelines.warehouse.connection import connect
from pipelines.warehouse.migrations import migrate

SUMMARY_FIELDS = (
    "files",
    "files_skipped",
    "rows_read",
    "rows_stored",
    "rows_quarantined",
    "duplicates",
    "seconds",
)


# Dagster's per-event debug lines would bury the summary; the UI keeps the full log.
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


class IngestFailed(click.ClickException):
    """At least one day failed; the summary says which."""


def _days(start: date, end: date) -> list[date]:
    if end < start:
        raise click.BadParameter("--to is before --from")
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def run_ingest(
    days: list[date], console: Console, landing: Path | None = None
) -> list[tuple[date, bool, dict[str, Any]]]:
    """Materialize the ingest job for each day on the configured Dagster instance, reading
    drops from `landing` when given (this run's setting), else the settings' landing root."""
    import dagster as dg

    from pipelines.assets.instance import open_instance
    from pipelines.definitions import defs

    job = defs.resolve_job_def("ingest_job")
    run_config: dict[str, Any] = dict(QUIET)
    if landing is not None:
        run_config["resources"] = {"landing": {"config": {"root": str(landing.resolve())}}}
    results = []
    with (
        open_instance() as instance,
        Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} days"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as progress,
    ):
        task = progress.add_task("ingesting", total=len(days))
        for day in days:
            progress.update(task, description=f"ingesting {day}")
            result = job.execute_in_process(
                partition_key=day.isoformat(),
                instance=instance,
                raise_on_error=False,
                run_config=run_config,
            )
            metadata: dict[str, Any] = {}
            for event in result.get_asset_materialization_events():
                if event.asset_key == dg.AssetKey("flight_data"):
                    metadata = {k: v.value for k, v in event.materialization.metadata.items()}
            checks_ok = all(c.passed for c in result.get_asset_check_evaluations())
            results.append((day, result.success and checks_ok, metadata))
            progress.advance(task)
    return results


@click.command("ingest")
@click.option(
    "--from",
    "start",
    required=True,
    type=click.DateTime(["%Y-%m-%d"]),
    help="First drop day (YYYY-MM-DD).",
)
@click.option(
    "--to",
    "end",
    type=click.DateTime(["%Y-%m-%d"]),
    help="Last drop day, inclusive (default: --from).",
)
@click.option(
    "--landing",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="Landing zone root (default: FLIGHTS_LANDING_ROOT).",
)
def ingest(start: datetime, end: datetime | None, landing: Path | None) -> None:
    """Ingest the drops of each day in a range through the Dagster ingest job."""
    days = _days(start.date(), (end or start).date())
    with connect(settings.database_url()) as conn:
        migrate(conn)
    console = Console()
    results = run_ingest(days, console, landing)
    table = Table(title=f"ingest {days[0]} .. {days[-1]}")
    table.add_column("day")
    for name in SUMMARY_FIELDS:
        label = name.replace("rows_", "").replace("files_", "").replace("quarantined", "quar.")
        table.add_column(label, justify="right")
    table.add_column("status")
    for day, ok, meta in results:
        table.add_row(
            str(day),
            *(str(meta.get(name, "-")) for name in SUMMARY_FIELDS),
            "ok" if ok else "FAILED",
        )
    console.print(table)
    failed = [str(day) for day, ok, _ in results if not ok]
    if failed:
        raise IngestFailed(
            f"{len(failed)} day(s) failed or failed a check: "
            f"{', '.join(failed)} (see the run in the Dagster UI)"
        )
