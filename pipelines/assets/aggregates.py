"""flight_aggregates: per-minute, per-hour and per-day aggregates, refreshed per partition.

When a day's points are stored (a flight_data partition materialized), an automation sensor
materializes the same partition here: the aggregates are refreshed over the time range those
points span (from the ingest's `partition_loads` record), in whole UTC days, never below the
raw retention horizon: each loaded day once, and a neighbouring day only when the drop held
points of it (a late drop for an old day therefore refreshes that day). The check in the
same step compares the per-minute aggregate's point total with the raw count over the
refreshed window.
"""

from datetime import date

import dagster as dg

from pipelines.assets.partitions import DAILY
from pipelines.assets.resources import FlightStore
from pipelines.assets.retries import DATABASE_RETRY, permanent_errors_fail_at_once
from pipelines.retention import policy as retention_settings
from pipelines.warehouse.aggregates import (
    RefreshReport,
    partition_window,
    refresh_aggregates,
    window_totals,
)

CHECK = "minute_points_match_raw"


def _window_metadata(report: RefreshReport) -> dict[str, dg.MetadataValue]:
    metadata: dict[str, dg.MetadataValue] = {
        "edition": dg.MetadataValue.text(report.edition),
        "requested_window": dg.MetadataValue.text(str(report.requested)),
        "refreshed_window": dg.MetadataValue.text(str(report.refreshed or "none")),
        "refresh_seconds": dg.MetadataValue.float(round(report.seconds, 3)),
    }
    if report.raw_horizon is not None:
        metadata["raw_horizon"] = dg.MetadataValue.timestamp(report.raw_horizon)
    if report.below_horizon is not None:
        metadata["skipped_below_raw_horizon"] = dg.MetadataValue.text(str(report.below_horizon))
    return metadata


@dg.asset(
    key="flight_aggregates",
    group_name="aggregates",
    partitions_def=DAILY,
    deps=[dg.AssetKey("flight_data")],
    pool="flight_store_writes",
    retry_policy=DATABASE_RETRY,
    # Every partition, not only the latest (late drops), and not past a failed blocking check
    # of the ingest (too many rejects: an operator looks first).
    automation_condition=(
        dg.AutomationCondition.eager().without(dg.AutomationCondition.in_latest_time_window())
        & dg.AutomationCondition.all_deps_blocking_checks_passed()
    ),
    check_specs=[
        dg.AssetCheckSpec(
            CHECK,
            asset="flight_aggregates",
            description=(
                "Over the refreshed window, the points counted by flight_minutes equal the raw "
                "flight_data rows. Warns when the partition's points lie below the raw "
                "retention horizon, where aggregates are frozen and late points are not counted."
            ),
        )
    ],
    kinds={"timescaledb"},
)
def flight_aggregates(
    context: dg.AssetExecutionContext, flight_store: FlightStore
) -> dg.MaterializeResult:  # type: ignore[type-arg]  # Dagster reads outputs off the bare class
    """flight_minutes, flight_hours, flight_days and traffic_hours over the window this
    partition wrote."""
    day = date.fromisoformat(context.partition_key)
    # A refresh is idempotent: after a lost connection the retry refreshes the window again.
    with permanent_errors_fail_at_once(), flight_store.connection(autocommit=True) as conn:
        window = partition_window(conn, day)
        if window is None:
            return dg.MaterializeResult(
                metadata={"refreshed_window": dg.MetadataValue.text("none: no points stored")},
                check_results=[
                    dg.AssetCheckResult(check_name=CHECK, passed=True, metadata={"raw_points": 0})
                ],
            )
        report = refresh_aggregates(
            conn, window.start, window.end, realtime=retention_settings.realtime_aggregates()
        )
        metadata = _window_metadata(report)
        if report.refreshed is None:
            check = dg.AssetCheckResult(
                check_name=CHECK,
                passed=False,
                severity=dg.AssetCheckSeverity.WARN,
                description="All of the partition's points lie below the raw retention horizon.",
                metadata={"skipped_below_raw_horizon": str(report.below_horizon)},
            )
        else:
            totals = window_totals(conn, report.refreshed)
            metadata |= {
                "points": dg.MetadataValue.int(totals.minute_points),
                "flight_minutes_rows": dg.MetadataValue.int(totals.minute_rows),
            }
            check = dg.AssetCheckResult(
                check_name=CHECK,
                passed=totals.raw_points == totals.minute_points,
                metadata={
                    "window": str(report.refreshed),
                    "raw_points": totals.raw_points,
                    "minute_points": totals.minute_points,
                },
            )
    return dg.MaterializeResult(metadata=metadata, check_results=[check])


# Any partition of flight_data written (a late drop for an old day too) is followed by its
# aggregates; this sensor runs by default, where Dagster's default one starts stopped.
aggregates_automation = dg.AutomationConditionSensorDefinition(
    "flight_aggregates_automation",
    target=dg.AssetSelection.assets(flight_aggregates),
    default_status=dg.DefaultSensorStatus.RUNNING,
)

defs = dg.Definitions(assets=[flight_aggregates], sensors=[aggregates_automation])
