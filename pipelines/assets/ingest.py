"""Drops of a day into `flight_data` and `flight_metadata`, with the checks an operator reads.

One multi-asset writes both tables in one transaction (a partition is all or nothing); its
checks run in the same step from the counts it just produced, so they always describe the
partition that was written. Every check result belongs to its day (partitioned checks), so a
day's checks view shows that day.

Write-audit-publish: when a check fails, the day is held, not published. The step then
records the failed checks and materializes nothing (the partition's last materialization is
still the published state); the aggregates and `unique_keys` are skipped, and the check's
metadata says what to run next (`flights quarantine`, `flights accept`, a re-run). A day
without drop files fails the run and changes nothing.
"""

import json
import time
import warnings
from collections.abc import Iterator
from datetime import date, timedelta

import dagster as dg
from dagster_pandera import pandera_schema_to_dagster_type

from pipelines.assets.partitions import DAILY
from pipelines.assets.resources import FlightStore, LandingZone
from pipelines.assets.retries import DATABASE_RETRY, permanent_errors_fail_at_once
from pipelines.assets.runs import in_process_with_liveness
from pipelines.ingest import NoDrops, PartitionReport, Progress, ingest_partition
from pipelines.quality.schema import POSITION_SCHEMA
from pipelines.warehouse.ingest_checks import aircraft_instants_twice, key_constraint

WRITE_POOL = "flight_store_writes"
PROGRESS_LOG_SECONDS = 10.0


def _column_schema() -> dg.TableSchema:
    """The Pandera schema as the UI's column schema, by dagster-pandera's conversion."""
    with warnings.catch_warnings():
        # dagster-pandera marks its converter beta; the schema it returns is plain metadata.
        warnings.simplefilter("ignore", dg.BetaWarning)
        metadata = pandera_schema_to_dagster_type(POSITION_SCHEMA).metadata["schema"]
    assert isinstance(metadata, dg.TableSchemaMetadataValue)
    return metadata.schema


COLUMN_SCHEMA = _column_schema()

# Not `blocking` in Dagster's sense: the load itself holds a failing day before anything is
# published, and then materializes nothing, so nothing downstream runs.
CHECKS = [
    dg.AssetCheckSpec(
        "rows_reconcile",
        asset="flight_data",
        partitions_def=DAILY,
        description="Rows read = rows stored + rows quarantined + exact "
        "duplicates, for the partition just written. A failing day is held, not published.",
    ),
    dg.AssetCheckSpec(
        "reject_rate",
        asset="flight_data",
        partitions_def=DAILY,
        description="Share of quarantined rows stays under the configured "
        "threshold (FLIGHTS_MAX_REJECT_RATE); above it the day is held, unpublished, until "
        "an operator accepts it (`flights accept DAY`) or re-runs it.",
    ),
]


def next_commands(day: date, *, held: bool) -> dict[str, dg.MetadataValue]:
    """What the operator runs next for this day, as metadata beside its results."""
    commands = {"review_rejects": f"flights quarantine --day {day}"}
    if held:
        commands |= {
            "publish_as_is": f"flights accept {day}",
            "discard_held_rows": f"flights reject {day}",
            "rerun_with_threshold": f"FLIGHTS_MAX_REJECT_RATE=0.5 flights ingest --from {day}",
        }
    return {name: dg.MetadataValue.text(command) for name, command in commands.items()}


def _reasons_table(report: PartitionReport) -> dg.TableMetadataValue:
    return dg.MetadataValue.table(
        [
            dg.TableRecord({"reason": reason, "rows": n})
            for reason, n in report.reject_reasons.most_common(20)
        ],
        schema=dg.TableSchema(
            columns=[dg.TableColumn("reason", "string"), dg.TableColumn("rows", "int")]
        ),
    )


def _points_per_hour(report: PartitionReport) -> dg.TableMetadataValue:
    return dg.MetadataValue.table(
        [
            dg.TableRecord({"hour (UTC)": f"{hour:%Y-%m-%d %H:00}", "points": n})
            for hour, n in sorted(report.points_per_hour.items())
        ],
        schema=dg.TableSchema(
            columns=[dg.TableColumn("hour (UTC)", "string"), dg.TableColumn("points", "int")]
        ),
    )


def _progress_log(context: dg.AssetExecutionContext) -> Progress:
    """The reader's progress in the run's log, a line every PROGRESS_LOG_SECONDS at most:
    Dagster stores each line as an event (milliseconds each), and a day of many small files
    reports after every file."""
    last = time.monotonic()

    def log(done: int, total: int, rows: int) -> None:
        nonlocal last
        if time.monotonic() - last >= PROGRESS_LOG_SECONDS:
            last = time.monotonic()
            context.log.debug(f"{rows:,} rows read, {done:,} of {total:,} bytes")

    return log


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            "flight_data",
            group_name="flights",
            skippable=True,  # a held day publishes nothing
            kinds={"timescaledb"},
            description="Position reports (hypertable, one-day chunks): one row per flight "
            "and instant, altitude in feet and speed in knots.",
            metadata={"dagster/column_schema": COLUMN_SCHEMA},
            freshness_policy=dg.FreshnessPolicy.time_window(
                fail_window=timedelta(hours=48), warn_window=timedelta(hours=30)
            ),
        ),
        dg.AssetSpec(
            "flight_metadata",
            group_name="flights",
            kinds={"timescaledb"},
            description="One row per flight: airline, flight number, airports, "
            "aircraft address and callsign; later drops fill gaps.",
            skippable=True,
        ),
    ],
    check_specs=CHECKS,
    partitions_def=DAILY,
    pool=WRITE_POOL,
    retry_policy=DATABASE_RETRY,
    can_subset=False,
)
def ingest_drops(
    context: dg.AssetExecutionContext, flight_store: FlightStore, landing: LandingZone
) -> Iterator[dg.MaterializeResult[None] | dg.AssetCheckResult]:
    """Decode, validate and store every drop of the partition's day, atomically; hold it
    instead when a check fails."""
    day = date.fromisoformat(context.partition_key)
    # One transaction: a failed attempt rolled back, so the retry policy may run it again.
    with permanent_errors_fail_at_once():
        try:
            report = ingest_partition(
                flight_store.url,
                day,
                landing.path,
                progress=_progress_log(context),
                max_reject_rate=landing.reject_threshold,
            )
        except NoDrops as exc:
            raise dg.Failure(description=str(exc), allow_retries=False) from None
    outcome = f"HELD ({report.held.describe()})" if report.held else "published"
    context.log.info(
        f"{day} {outcome}: {report.files:,} files, {report.rows_read:,} read, "
        f"{report.rows_stored:,} stored, {report.rows_quarantined:,} quarantined, "
        f"{report.duplicates:,} duplicates"
    )
    counts = {
        "files": report.files,
        "files_skipped": report.files_skipped,
        "rows_read": report.rows_read,
        "rows_stored": report.rows_stored,
        "rows_quarantined": report.rows_quarantined,
        "duplicates": report.duplicates,
    }
    held = report.held is not None
    follow_up = next_commands(day, held=held)
    if not held:
        yield dg.MaterializeResult(
            asset_key="flight_data",
            metadata={
                **counts,
                "flights": report.flights,
                "seconds": round(report.seconds, 3),
                "rows_per_second": round(report.rows_per_second),
                "first_point": str(report.min_timestamp),
                "last_point": str(report.max_timestamp),
                "reject_reasons": _reasons_table(report),
                "points_per_hour": _points_per_hour(report),
                "reidentified_days": ", ".join(map(str, report.reidentified)) or "none",
                "dagster/row_count": report.rows_stored,
                "dagster/column_schema": COLUMN_SCHEMA,
                **follow_up,
            },
        )
        yield dg.MaterializeResult(
            asset_key="flight_metadata", metadata={"flights": report.flights}
        )
    else:
        context.log.info(  # the CLI says it once, in its own words
            f"{day} is held: nothing was published. Review `flights quarantine --day {day}`, "
            f"then `flights accept {day}` or `flights reject {day}`."
        )
    state = {"state": dg.MetadataValue.text("held" if held else "published"), **follow_up}
    yield dg.AssetCheckResult(
        check_name="rows_reconcile",
        asset_key="flight_data",
        passed=report.reconciles,
        metadata={**counts, "equation": "read = stored + quarantined + duplicates", **state},
    )
    yield dg.AssetCheckResult(
        check_name="reject_rate",
        asset_key="flight_data",
        passed=report.reject_rate <= landing.reject_threshold,
        severity=dg.AssetCheckSeverity.ERROR,
        description=f"{day} held: {report.held.describe()}" if report.held else None,
        metadata={
            "reject_rate": round(report.reject_rate, 6),
            "threshold": landing.reject_threshold,
            "reasons": json.dumps(dict(report.reject_reasons.most_common(10))),
            **state,
        },
    )


# Checks of what the store holds once a day is published, run together in one step (one
# connection, one step's start-up per run); each can still run alone from the UI.
STORED_CHECKS = [
    dg.AssetCheckSpec(
        "unique_keys",
        asset="flight_data",
        partitions_def=DAILY,
        description="No (flight_id, timestamp) is stored twice: the primary key that the "
        "database enforces on every write is in place (a catalog lookup, not a scan).",
    ),
    dg.AssetCheckSpec(
        "positions_under_one_flight",
        asset="flight_data",
        partitions_def=DAILY,
        description="No aircraft position in the window the day's load touched is stored "
        "under two flights: the primary key cannot see it (the flight ids differ); a day "
        "identified from a neighbour's state that changed afterwards, and not re-keyed, "
        "would show here.",
    ),
]


def _unique_keys(enforced_by: str | None) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name="unique_keys",
        asset_key="flight_data",
        passed=enforced_by is not None,
        description=None
        if enforced_by
        else "flight_data has no primary key on (flight_id, timestamp): restore it "
        "(sql/migrations/001_flight_tables.sql) before loading more days",
        metadata={"enforced_by": enforced_by or "nothing"},
    )


def _positions_under_one_flight(day: date, twice: int) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name="positions_under_one_flight",
        asset_key="flight_data",
        passed=twice == 0,
        description=None
        if twice == 0
        else f"{twice:,} aircraft positions are stored under two flights: run "
        f"`flights ingest --from {day}` again to re-identify the day and its neighbours",
        metadata={"positions_under_two_flights": twice},
    )


@dg.multi_asset_check(specs=STORED_CHECKS, can_subset=True, retry_policy=DATABASE_RETRY)
def stored_day_checks(
    context: dg.AssetCheckExecutionContext, flight_store: FlightStore
) -> Iterator[dg.AssetCheckResult]:
    """The selected checks of the stored day, on one connection."""
    day = date.fromisoformat(context.partition_key)
    selected = {key.name for key in context.selected_asset_check_keys}
    results = []
    with permanent_errors_fail_at_once(), flight_store.connection() as conn:
        if "unique_keys" in selected:
            results.append(_unique_keys(key_constraint(conn)))
        if "positions_under_one_flight" in selected:
            results.append(_positions_under_one_flight(day, aircraft_instants_twice(conn, day)))
    yield from results


ingest_job = dg.define_asset_job(
    "ingest_job",
    # The day's aggregates refresh in the same run, after the blocking checks pass.
    selection=dg.AssetSelection.assets(ingest_drops, "flight_aggregates"),
    description="Ingest one drop day (a partition) or a range of them (a backfill), then "
    "refresh the aggregates over the window it touched.",
    # Three short steps in a row: one process per run, not one per step, halves a run's
    # start-up cost; days still run in parallel as separate runs.
    executor_def=in_process_with_liveness,
)

daily_ingest_schedule = dg.build_schedule_from_partitioned_job(
    ingest_job,
    hour_of_day=1,
    minute_of_hour=15,
    description="Every day at 01:15 UTC, ingest yesterday's drops.",
)

defs = dg.Definitions(
    assets=[ingest_drops],
    asset_checks=[stored_day_checks],
    jobs=[ingest_job],
    schedules=[daily_ingest_schedule],
)
