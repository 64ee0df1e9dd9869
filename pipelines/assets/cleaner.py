"""flight_retention: the daily cleaner, as a partitioned asset with its own job and schedule.

Partition D enforces retention as of D (pipelines/warehouse/retention.py): raw days before
D - FLIGHTS_COMPRESS_AFTER_DAYS are compressed (licensed edition) or get their indexes rebuilt
compact (Apache edition), raw points before
D - FLIGHTS_RAW_RETENTION_DAYS are dropped after their aggregates are brought up to date,
aggregates and quarantined rows past their own retention go, and landing folders are kept,
archived or deleted per FLIGHTS_LANDING_RETENTION. Each materialization says what was removed.
A dry run (run config `dry_run: true`) reports the same as an observation and changes nothing.
The schedule runs each day's partition early the next morning.
"""

from collections.abc import Iterator
from datetime import date

import dagster as dg
from pydantic import Field

from pipelines.assets.partitions import DAILY
from pipelines.assets.resources import FlightStore, LandingZone
from pipelines.assets.retries import DATABASE_RETRY, permanent_errors_fail_at_once
from pipelines.retention import policy as retention_settings
from pipelines.retention.landing import LandingAction, prune_landing
from pipelines.warehouse.aggregates import raw_dropped_before
from pipelines.warehouse.retention import CleanReport, clean, raw_points_before

JOB = "flight_cleaner"


class CleanerConfig(dg.Config):
    dry_run: bool = Field(default=False, description="Report what would go; change nothing.")


@dg.asset(
    key="flight_retention",
    group_name="retention",
    partitions_def=DAILY,
    pool="flight_store_writes",
    retry_policy=DATABASE_RETRY,
    output_required=False,
    kinds={"timescaledb"},
)
def flight_retention(
    context: dg.AssetExecutionContext,
    config: CleanerConfig,
    flight_store: FlightStore,
    landing: LandingZone,
) -> Iterator[dg.MaterializeResult[None]]:
    """Retention enforced as of this day: raw points past their horizon dropped, their
    aggregates kept (refreshed first), old aggregates, quarantine rows and landing folders
    pruned."""
    day = date.fromisoformat(context.partition_key)
    policy = retention_settings.retention_policy()
    # Each of the cleaner's statements is idempotent: a retry removes only what is left.
    with permanent_errors_fail_at_once(), flight_store.connection(autocommit=True) as conn:
        archive_dir = retention_settings.landing_archive_dir(landing.path)
        report = clean(conn, day, policy, dry_run=config.dry_run)
        folders = prune_landing(
            conn,
            landing.path,
            report.raw_horizon.date(),
            retention_settings.landing_retention(),
            archive_dir=archive_dir,
            dry_run=config.dry_run,
        )
    metadata = _metadata(report, folders)
    if config.dry_run:
        context.log_event(
            dg.AssetObservation(
                asset_key=context.asset_key, partition=context.partition_key, metadata=metadata
            )
        )
        return
    yield dg.MaterializeResult(metadata=metadata)


@dg.asset_check(
    asset=flight_retention,
    retry_policy=DATABASE_RETRY,
    description=(
        "No raw flight_data older than the raw horizon the cleaner enforced remains. Points "
        "loaded below it later (late drops for dropped days) fail this until the next run."
    ),
)
def no_raw_data_past_horizon(flight_store: FlightStore) -> dg.AssetCheckResult:
    with permanent_errors_fail_at_once(), flight_store.connection() as conn:
        horizon = raw_dropped_before(conn)
        remaining = horizon is not None and raw_points_before(conn, horizon)
    return dg.AssetCheckResult(
        passed=not remaining,
        metadata={"raw_horizon": horizon.isoformat() if horizon else "none: nothing dropped yet"},
    )


def _chunk_table(report: CleanReport) -> str:
    lines = ["| relation | chunk | from | to | bytes |", "|---|---|---|---|---|"]
    lines += [
        f"| {c.relation} | {c.name} | {c.range_start.isoformat()} | {c.range_end.isoformat()} "
        f"| {c.bytes} |"
        for c in (*report.raw_chunks, *report.aggregate_chunks)
    ]
    return "\n".join(lines)


def _metadata(report: CleanReport, landing: list[LandingAction]) -> dict[str, dg.MetadataValue]:
    metadata: dict[str, dg.MetadataValue] = {
        "dry_run": dg.MetadataValue.bool(report.dry_run),
        "edition": dg.MetadataValue.text(report.edition),
        "raw_horizon": dg.MetadataValue.timestamp(report.raw_horizon),
        "aggregate_horizon": dg.MetadataValue.timestamp(report.aggregate_horizon),
        "raw_chunks_dropped": dg.MetadataValue.int(len(report.raw_chunks)),
        "raw_range_dropped": dg.MetadataValue.text(str(report.raw_range or "none")),
        "raw_bytes_dropped": dg.MetadataValue.int(report.raw_bytes),
        "raw_chunks_compressed": dg.MetadataValue.int(len(report.compressed_chunks)),
        "raw_chunks_compacted": dg.MetadataValue.int(len(report.compacted_chunks)),
        "aggregate_chunks_dropped": dg.MetadataValue.int(len(report.aggregate_chunks)),
        "quarantine_rows_deleted": dg.MetadataValue.int(report.quarantine_rows),
        "held_loads_discarded": dg.MetadataValue.int(report.held_loads),
        "aggregate_windows_refreshed": dg.MetadataValue.text(
            ", ".join(str(r.refreshed) for r in report.refreshed if r.refreshed) or "none"
        ),
        "landing_folders": dg.MetadataValue.text(
            ", ".join(f"{a.day} {a.action}" for a in landing) or "none"
        ),
        "seconds": dg.MetadataValue.float(round(report.seconds, 3)),
        "chunks": dg.MetadataValue.md(_chunk_table(report)),
    }
    if report.raw_rows_estimate is not None:
        metadata["raw_rows_dropped_estimate"] = dg.MetadataValue.int(report.raw_rows_estimate)
    return metadata


flight_cleaner = dg.define_asset_job(
    JOB,
    selection=dg.AssetSelection.assets(flight_retention),
    description="Enforce retention for a day: drop raw points past it, keep their aggregates.",
)

defs = dg.Definitions(
    assets=[flight_retention],
    asset_checks=[no_raw_data_past_horizon],
    jobs=[flight_cleaner],
    schedules=[
        dg.build_schedule_from_partitioned_job(
            flight_cleaner,
            name="flight_cleaner_daily",
            hour_of_day=3,
            minute_of_hour=15,
            description="Every day at 03:15 UTC, enforce retention for yesterday. Off until "
            "an operator turns it on, like the ingest schedule and sensor.",
        )
    ],
)
