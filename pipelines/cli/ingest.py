"""`flights ingest`: the same Dagster job the UI runs, in-process, for a range of days."""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

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
from pipelines.drops.files import day_folder, discover_drops
from pipelines.warehouse.connection import connect
from pipelines.warehouse.migrations import migrate

SUMMARY_FIELDS = ("files", "rows_read", "rows_stored", "rows_quarantined", "duplicates")


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


def _outcome(result: Any) -> tuple[str, dict[str, Any]]:
    """`ok`, `HELD: <check>` or `FAILED`, and the day's counts (from its checks' metadata)."""
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    reconcile = checks.get("rows_reconcile")
    counts: dict[str, Any] = (
        {k: v.value for k, v in reconcile.metadata.items()} if reconcile is not None else {}
    )
    if not result.success or reconcile is None:
        return "FAILED", counts
    failed = [name for name, c in checks.items() if not c.passed]
    return ("HELD: " + ", ".join(failed) if failed else "ok"), counts


def run_ingest(
    days: list[date], console: Console, landing: Path | None = None
) -> list[tuple[date, str, dict[str, Any]]]:
    """Materialize the ingest job for each day on the configured Dagster instance, reading
    drops from `landing` when given (this run's setting), else the settings' landing root,
    with a live progress bar fed by the reader; returns each day's outcome and counts."""
    from pipelines.assets.instance import open_instance
    from pipelines.definitions import defs
    from pipelines.ingest import progress_watcher

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
                result = job.execute_in_process(
                    partition_key=day.isoformat(),
                    instance=instance,
                    raise_on_error=False,
                    run_config=run_config,
                    tags=IN_UI,
                )
            finally:
                progress_watcher.reset(token)
            progress.remove_task(task)
            status, counts = _outcome(result)
            results.append((day, status, counts))
    return results


def _no_drops(days: list[date], landing: Path) -> dict[date, str]:
    """Days without a single drop file, with the folder looked in: never run (a run would
    have nothing to load and must not look like one)."""
    missing = {}
    for day in days:
        if not discover_drops(landing, day):
            folder = day_folder(landing, day)
            state = "is empty" if folder.is_dir() else "does not exist"
            missing[day] = f"{folder} {state}"
    return missing


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
    console = Console()
    missing = _no_drops(days, landing.resolve() if landing else settings.landing_root())
    results = run_ingest([d for d in days if d not in missing], console, landing)
    table = Table(title=f"ingest {days[0]} .. {days[-1]}")
    table.add_column("day")
    for name in SUMMARY_FIELDS:
        table.add_column(name.replace("rows_", "").replace("quarantined", "quar."), justify="right")
    table.add_column("status")
    for day, status, counts in results:
        table.add_row(
            str(day),
            *(f"{counts[name]:,}" if name in counts else "-" for name in SUMMARY_FIELDS),
            status,
        )
    for day in missing:
        table.add_row(str(day), *("-" for _ in SUMMARY_FIELDS), "NO DROPS")
    console.print(table)
    wall = time.perf_counter() - started
    console.print(f"{len(days)} day(s) in {wall:,.1f} s wall time, aggregates included")
    held = [str(day) for day, status, _ in results if status.startswith("HELD")]
    failed = [str(day) for day, status, _ in results if status == "FAILED"]
    problems = [
        f"no drops for {day}: {where}; nothing was changed" for day, where in missing.items()
    ]
    if held:
        problems.append(
            f"held, not published: {', '.join(held)}; review with `flights quarantine --day "
            f"{held[0]}`, then `flights accept {held[0]}` or `flights reject {held[0]}`"
        )
    if failed:
        problems.append(f"failed: {', '.join(failed)} (see the run in the Dagster UI)")
    if problems:
        raise IngestFailed("; ".join(problems))
