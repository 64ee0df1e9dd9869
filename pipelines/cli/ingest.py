"""`flights ingest`: the same Dagster job the UI runs, in-process, for a range of days."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from pipelines import settings
from pipelines.cli.runs import execute_run
from pipelines.warehouse.connection import connect
from pipelines.warehouse.migrations import migrate

if TYPE_CHECKING:  # Dagster loads in a few seconds: only the commands that run jobs import it
    import dagster as dg

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


@dataclass(frozen=True)
class DayOutcome:
    """A day's run as an operator reads it: the counts, the one-line reason it failed (a
    blocking check with its values, or the step's error), the warnings of its checks."""

    day: date
    metadata: dict[str, Any]
    failure: str | None
    warnings: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return self.failure is None


def _check_values(evaluation: dg.AssetCheckEvaluation) -> str:
    """The check's short scalar values, `name=value` (long texts stay in the run log)."""
    values = [
        f"{name}={entry.value}"
        for name, entry in evaluation.metadata.items()
        if isinstance(entry.value, int | float | str) and len(str(entry.value)) <= 40
    ]
    return ", ".join(values) or "no values"


def _step_error(result: dg.ExecuteInProcessResult) -> str:
    """The first line of the failed step's error (the full trace is in the run's log)."""
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data is not None:
            data = event.step_failure_data
            if data.user_failure_data is not None and data.user_failure_data.description:
                return data.user_failure_data.description.splitlines()[0]
            if data.error is not None:
                cause = data.error.cause or data.error
                lines = cause.message.strip().splitlines()
                return f"step {event.step_key} failed: {lines[0] if lines else cause.cls_name}"
    for event in result.all_events:
        if event.is_run_failure and event.message:
            return f"the run failed: {event.message.strip().splitlines()[0]}"
    return "the run failed (see the run in the Dagster UI)"


def day_outcome(day: date, result: dg.ExecuteInProcessResult) -> DayOutcome:
    import dagster as dg

    metadata: dict[str, Any] = {}
    for event in result.get_asset_materialization_events():
        if event.asset_key == dg.AssetKey("flight_data"):
            metadata = {k: v.value for k, v in event.materialization.metadata.items()}
    failures, warnings = [], []
    for evaluation in result.get_asset_check_evaluations():
        if evaluation.passed:
            continue
        line = f"check {evaluation.check_name} failed: {_check_values(evaluation)}"
        if evaluation.severity == dg.AssetCheckSeverity.WARN:
            about = f" ({evaluation.description})" if evaluation.description else ""
            warnings.append(f"{line}{about}")
        else:
            failures.append(line)
    if failures:
        failure: str | None = "; ".join(failures)
    elif not result.success:
        failure = _step_error(result)
    else:
        failure = None
    return DayOutcome(day, metadata, failure, tuple(warnings))


def run_ingest(days: list[date], console: Console, landing: Path | None = None) -> list[DayOutcome]:
    """Materialize the ingest job for each day on the configured Dagster instance, reading
    drops from `landing` when given (this run's setting), else the settings' landing root."""

    from pipelines.assets.instance import open_instance
    from pipelines.definitions import defs

    job = defs.resolve_job_def("ingest_job")
    run_config: dict[str, Any] = dict(QUIET)
    if landing is not None:
        run_config["resources"] = {"landing": {"config": {"root": str(landing.resolve())}}}
    outcomes = []
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
            result = execute_run(
                job,
                instance,
                partition_key=day.isoformat(),
                run_config=run_config,
                say=lambda line: console.print(line, markup=False, highlight=False, soft_wrap=True),
            )
            outcomes.append(day_outcome(day, result))
            progress.advance(task)
    return outcomes


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
    # Piped output (logs, scripts) gets the whole table rather than an 80-column cut.
    console = Console(width=None if sys.stdout.isatty() else 160)
    results = run_ingest(days, console, landing)
    table = Table(title=f"ingest {days[0]} .. {days[-1]}")
    table.add_column("day")
    for name in SUMMARY_FIELDS:
        label = name.replace("rows_", "").replace("files_", "").replace("quarantined", "quar.")
        table.add_column(label, justify="right")
    table.add_column("status")
    for outcome in results:
        table.add_row(
            str(outcome.day),
            *(str(outcome.metadata.get(name, "-")) for name in SUMMARY_FIELDS),
            "FAILED" if not outcome.ok else "warning" if outcome.warnings else "ok",
        )
    console.print(table)
    for outcome in results:
        for warning in outcome.warnings:
            click.echo(f"warning: {outcome.day}: {warning}", err=True)
    failed = [outcome for outcome in results if not outcome.ok]
    for outcome in failed:
        click.echo(f"error: {outcome.day}: {outcome.failure}", err=True)
    if failed:
        raise IngestFailed(
            f"{len(failed)} of {len(results)} day(s) failed (the full log is in the Dagster UI)"
        )
