"""`accept_held_day`: an operator publishes a held day from the UI (Launchpad, run config
`day` and `accepted_by`), as `flights accept DAY` does from the command line.

The held rows are published without reading the drops again, the day's aggregates are
refreshed over the window they touched, and the day's assets record the new materializations
(so the partition is no longer shown as held).
"""

from collections.abc import Iterator
from datetime import date

import dagster as dg

from pipelines.assets.partitions import DAILY
from pipelines.assets.resources import FlightStore
from pipelines.retention import policy as retention_settings
from pipelines.warehouse.aggregates import partition_window, refresh_aggregates
from pipelines.warehouse.columnstore import recompress_window
from pipelines.warehouse.review import ReviewError, accept


class AcceptConfig(dg.Config):
    """The held day to publish (YYYY-MM-DD) and who decided it."""

    day: str
    accepted_by: str


@dg.op(
    description="Publish a held day's rows (see `flights quarantine --day DAY` first) and "
    "refresh its aggregates.",
    pool="flight_store_writes",
    out={},  # it records asset materializations, and passes nothing on
)
def accept_held_rows(
    context: dg.OpExecutionContext, config: AcceptConfig, flight_store: FlightStore
) -> Iterator[dg.AssetMaterialization]:
    # Exactly a partition key: `date.fromisoformat` also takes 20240301, which would publish
    # the day and record it under a partition that does not exist (the day still shown held).
    if not DAILY.has_partition_key(config.day):
        raise dg.Failure(
            description=f"day {config.day!r} is not a partition day: YYYY-MM-DD, from "
            "FLIGHTS_START_DATE up to yesterday (UTC)",
            allow_retries=False,
        )
    day = date.fromisoformat(config.day)
    with flight_store.connection() as conn:
        try:
            held = accept(conn, day, config.accepted_by)
        except ReviewError as exc:  # not held, or decided already: the message says which
            raise dg.Failure(description=str(exc), allow_retries=False) from None
    context.log.info(f"{day} accepted by {held.decided_by}: {held.rows_stored:,} rows published")
    decision = {
        "state": dg.MetadataValue.text("accepted"),
        "accepted_by": dg.MetadataValue.text(held.decided_by or ""),
        "accepted_at": dg.MetadataValue.text(str(held.decided_at)),
        "failed_check": dg.MetadataValue.text(held.failed_check),
    }
    yield dg.AssetMaterialization(
        "flight_data",
        partition=config.day,
        metadata={
            **decision,
            "rows_read": held.rows_read,
            "rows_stored": held.rows_stored,
            "rows_quarantined": held.rows_quarantined,
            "duplicates": held.duplicates,
            "dagster/row_count": held.rows_stored,
        },
    )
    yield dg.AssetMaterialization("flight_metadata", partition=config.day, metadata=decision)
    with flight_store.connection(autocommit=True) as conn:
        window = partition_window(conn, day)
        if window is not None:
            # A compressed day the accepted rows went into is left compressed again.
            with conn.transaction():
                recompress_window(conn, window)
            report = refresh_aggregates(
                conn, window.start, window.end, realtime=retention_settings.realtime_aggregates()
            )
            yield dg.AssetMaterialization(
                "flight_aggregates",
                partition=config.day,
                metadata={"refreshed_window": dg.MetadataValue.text(str(report.refreshed))},
            )


@dg.job(
    description="Publish a held day: run config `ops: accept_held_rows: config: {day, "
    "accepted_by}`. Rejecting is `flights reject DAY`.",
)
def accept_held_day() -> None:
    accept_held_rows()


defs = dg.Definitions(jobs=[accept_held_day])
