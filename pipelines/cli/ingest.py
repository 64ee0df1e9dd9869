"""`flights ingest`: the same Dagster job the UI runs, in-process, for a range of days."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from pipelines import settings
from pipelines.cli.runs import execute_run
from pipelines.drops.files import day_folder, discover_drops, why_no_drops
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
# Runs started in-process carry no code location; the UI lists a job's runs (its page, the
# overview timeline) by this label, `<repository>@<location>` as workspace.yaml names it.
IN_UI = {".dagster/repository": "__repository__@pipelines"}


class IngestFailed(click.ClickException):
    """At least one day failed, was held or had no drops; the summary says which."""


class RowsColumn(ProgressColumn):
    """Rows read so far and the rate, from the reader's progress."""

    def render(self, task: Task) -> Text:
        rows = int(task.fields.get("rows", 0))
        elapsed = task.elapsed or 0.0
        rate = f"{rows / elapsed:,.0f} rows/s" if elapsed > 0 and rows else "- rows/s"
        return Text(f"{rows:,} rows  {rate}")


def _days(start: date, end: date) -> list[date]:
    if end < start:
        raise click.BadParameter("--to is before --from")
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def check_partition_days(days: list[date]) -> None:
    """Days the partitioning cannot run (before FLIGHTS_START_DATE, or not over yet)."""
    from pipelines.assets.partitions import DAILY, START_DATE

    for day in days:
        if DAILY.has_partition_key(day.isoformat()):
            continue
        if day.isoformat() < START_DATE:
            raise click.ClickException(
                f"{day} is before FLIGHTS_START_DATE ({START_DATE}); set "
                f"FLIGHTS_START_DATE={day} to ingest older days"
            )
        raise click.ClickException(
            f"{day} is not over yet (days are ingested once they end, in UTC); "
            f"ingest it tomorrow or pass an earlier --to"
        )


@dataclass(frozen=True)
class DayOutcome:
    """A day's run as an operator reads it: the counts, the one-line reason it failed (a
    blocking check with its values, or the step's error), the warnings of its checks."""

    day: date
    metadata: dict[str, Any]
    failure: str | None
    warnings: tuple[str, ...]
    held: bool = False  # a blocking check failed: the day's rows wait for review

    @property
    def ok(self) -> bool:
        return self.failure is None

    @property
    def status(self) -> str:
        if self.held:
            return "HELD: " + (self.failure or "").split(" failed")[0].removeprefix("check ")
        return "FAILED" if not self.ok else "warning" if self.warnings else "ok"


def _check_values(evaluation: dg.AssetCheckEvaluation) -> str:
    """The check's numbers, `name=value` (texts and next commands stay in the run log)."""
    values = [
        f"{name}={entry.value}"
        for name, entry in evaluation.metadata.items()
        if isinstance(entry.value, int | float) and not isinstance(entry.value, bool)
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
    held = False
    for evaluation in result.get_asset_check_evaluations():
        values = {k: v.value for k, v in evaluation.metadata.items()}
        held = held or values.get("state") == "held"
        if evaluation.check_name == "rows_reconcile":
            metadata = values  # a held day materializes nothing: its counts are here
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
    return DayOutcome(day, metadata, failure, tuple(warnings), held and failure is not None)


def run_ingest(days: list[date], console: Console, landing: Path | None = None) -> list[DayOutcome]:
    """Materialize the ingest job for each day on the configured Dagster instance, reading
    drops from `landing` when given (this run's setting), else the settings' landing root,
    with a live progress bar fed by the reader."""
    from pipelines.assets.instance import open_instance
    from pipelines.definitions import defs
    from pipelines.ingest import progress_watcher

    job = defs.resolve_job_def("ingest_job")
    run_config: dict[str, Any] = dict(QUIET)
    if landing is not None:
        run_config["resources"] = {"landing": {"config": {"root": str(landing)}}}
    outcomes = []
    with (
        open_instance() as instance,
        Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            RowsColumn(),
            TimeRemainingColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as progress,
    ):
        for day in days:
            task = progress.add_task(f"{day}", total=None, rows=0)

            def show(done: int, total: int, rows: int, task: Any = task) -> None:
                progress.update(task, completed=done, total=total, rows=rows)

            token = progress_watcher.set(show)
            try:
                result = execute_run(
                    job,
                    instance,
                    partition_key=day.isoformat(),
                    run_config=run_config,
                    say=lambda line: console.print(
                        line, markup=False, highlight=False, soft_wrap=True
                    ),
                    tags=IN_UI,
                )
            finally:
                progress_watcher.reset(token)
            progress.remove_task(task)
            outcomes.append(day_outcome(day, result))
    return outcomes


def _no_drops(days: list[date], landing: Path) -> dict[date, str]:
    """Days without a single drop file, with the folder looked in: never run (a run would
    have nothing to load and must not look like one)."""
    missing = {}
    for day in days:
        if not discover_drops(landing, day):
            folder = day_folder(landing, day)
            missing[day] = f"{folder} {why_no_drops(folder)}"
    return missing


def _cell(value: object) -> str:
    """A table cell: thousands separators for counts, as given otherwise, `-` if absent."""
    if value is None:
        return "-"
    return f"{value:,}" if isinstance(value, int) else str(value)


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
    started = time.perf_counter()
    days = _days(start.date(), (end or start).date())
    check_partition_days(days)
    with connect(settings.database_url()) as conn:
        migrate(conn)
    # Piped output (logs, scripts) gets the whole table rather than an 80-column cut.
    console = Console(width=None if sys.stdout.isatty() else 160)
    given = settings.configured_path(landing, "--landing") if landing else None
    missing = _no_drops(days, given or settings.landing_root())
    results = run_ingest([d for d in days if d not in missing], console, given)
    table = Table(title=f"ingest {days[0]} .. {days[-1]}")
    table.add_column("day")
    for name in SUMMARY_FIELDS:
        label = name.replace("rows_", "").replace("files_", "").replace("quarantined", "quar.")
        table.add_column(label, justify="right")
    table.add_column("status")
    for outcome in results:
        table.add_row(
            str(outcome.day),
            *(_cell(outcome.metadata.get(name)) for name in SUMMARY_FIELDS),
            outcome.status,
        )
    for day in missing:
        table.add_row(str(day), *("-" for _ in SUMMARY_FIELDS), "NO DROPS")
    console.print(table)
    wall = time.perf_counter() - started
    console.print(f"{len(days)} day(s) in {wall:,.1f} s wall time, aggregates included")
    for outcome in results:
        for warning in outcome.warnings:
            click.echo(f"warning: {outcome.day}: {warning}", err=True)
    for outcome in results:
        if not outcome.ok and not outcome.held:
            click.echo(f"error: {outcome.day}: {outcome.failure}", err=True)
    problems = [
        f"no drops for {day}: {where}; nothing was changed" for day, where in missing.items()
    ]
    held = [outcome for outcome in results if outcome.held]
    if held:
        first = held[0].day
        problems.append(
            f"held, not published: {', '.join(str(o.day) for o in held)} "
            f"({held[0].failure}); review with `flights quarantine --day {first}`, "
            f"then `flights accept {first}` or `flights reject {first}`"
        )
    failed = [str(o.day) for o in results if not o.ok and not o.held]
    if failed:
        problems.append(f"failed: {', '.join(failed)} (the full log is in the Dagster UI)")
    if problems:
        raise IngestFailed("; ".join(problems))
