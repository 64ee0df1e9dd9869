"""`flights clean`: the cleaner from the command line, for one day, outside Dagster."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from pipelines import settings
from pipelines.retention import policy as retention_settings
from pipelines.retention.landing import LandingAction, prune_landing
from pipelines.warehouse.connection import connect, first_line, retrying
from pipelines.warehouse.retention import Chunk, CleanReport, clean


def _size(chunks: tuple[Chunk, ...]) -> str:
    mib = sum(c.bytes for c in chunks) / 2**20
    return f"{len(chunks)} chunk{'s' if len(chunks) != 1 else ''}, {mib:,.1f} MiB"


@click.command("clean")
@click.option(
    "--date",
    "day",
    required=True,
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="The cleaner's day D: raw points before D minus the raw retention go.",
)
@click.option("--dry-run", is_flag=True, help="Say what would go; change nothing.")
@click.option(
    "--raw-retention-days",
    type=click.IntRange(min=1),
    help="Days of raw points kept [FLIGHTS_RAW_RETENTION_DAYS, 90].",
)
@click.option(
    "--aggregate-retention-days",
    type=click.IntRange(min=1),
    help="Days of aggregates kept [FLIGHTS_AGGREGATE_RETENTION_DAYS, 730].",
)
@click.option(
    "--quarantine-retention-days",
    type=click.IntRange(min=1),
    help="Days of quarantined rows kept [FLIGHTS_QUARANTINE_RETENTION_DAYS, 30].",
)
def clean_command(
    day: datetime,
    dry_run: bool,
    raw_retention_days: int | None,
    aggregate_retention_days: int | None,
    quarantine_retention_days: int | None,
) -> None:
    """Enforce retention as of a day: drop raw points past it (their aggregates stay), old
    aggregates, quarantined rows and, per FLIGHTS_LANDING_RETENTION, landing folders.

    Refuses a raw retention below FLIGHTS_RAW_RETENTION_FLOOR_DAYS and a day in the future.
    Waits for writers of the flight store to finish; running it twice removes nothing more.
    """
    as_of = day.date()
    if as_of > datetime.now(UTC).date():
        raise click.BadParameter(f"{as_of} is in the future", param_hint="--date")
    policy = retention_settings.retention_policy(
        raw_days=raw_retention_days,
        aggregate_days=aggregate_retention_days,
        quarantine_days=quarantine_retention_days,
    )
    landing_root = settings.landing_root()
    archive_dir = retention_settings.landing_archive_dir(landing_root)

    def enforce() -> tuple[CleanReport, list[LandingAction]]:
        with connect(settings.database_url(), autocommit=True) as conn:
            report = clean(conn, as_of, policy, dry_run=dry_run)
            return report, prune_landing(
                conn,
                landing_root,
                report.raw_horizon.date(),
                retention_settings.landing_retention(),
                archive_dir=archive_dir,
                dry_run=dry_run,
            )

    def say_retry(exc: BaseException, wait: float) -> None:
        reason = first_line(exc)
        click.echo(f"database unavailable ({reason}); retrying in {wait:.1f} s", err=True)

    # Every step of the cleaner is idempotent: after a lost connection it starts again and
    # removes only what is left.
    report, landing = retrying(enforce, on_retry=say_retry)
    verb = "would drop" if dry_run else "dropped"
    click.echo(f"cleaner for {as_of}{' (dry run)' if dry_run else ''}, {report.edition} edition")
    for refreshed in report.refreshed:
        if refreshed.refreshed:
            click.echo(f"refreshed aggregates over {refreshed.refreshed}")
    raw = f"raw points before {report.raw_horizon.date()}: {verb} {_size(report.raw_chunks)}"
    if report.raw_range:
        raw += f" ({report.raw_range.start:%Y-%m-%d} .. {report.raw_range.end:%Y-%m-%d})"
    if report.raw_rows_estimate is not None:
        raw += f", about {report.raw_rows_estimate:,} rows"
    click.echo(raw)
    if report.compressed_chunks:
        click.echo(
            f"raw days past the compression age: {'would compress' if dry_run else 'compressed'} "
            f"{_size(report.compressed_chunks)} (size before)"
        )
    if report.compacted_chunks:
        click.echo(
            f"raw days past the compression age: "
            f"{'would rebuild' if dry_run else 'rebuilt'} the indexes of "
            f"{_size(report.compacted_chunks)} (size before)"
        )
    click.echo(
        f"aggregates before {report.aggregate_horizon.date()}: "
        f"{verb} {_size(report.aggregate_chunks)}"
    )
    click.echo(
        f"quarantine before {report.quarantine_before}: "
        f"{'would delete' if dry_run else 'deleted'} {report.quarantine_rows:,} rows"
    )
    if report.held_loads:
        click.echo(
            f"held loads before {report.raw_horizon.date()}: "
            f"{'would discard' if dry_run else 'discarded'} {report.held_loads:,}"
        )
    for action in landing:
        prefix = "would be " if dry_run and not action.action.startswith("kept") else ""
        click.echo(f"landing {action.path}: {prefix}{action.action}")
