"""`flights accept`, `flights reject` and `flights quarantine`: an operator's review of held
days and of rejected rows."""

from __future__ import annotations

import csv
import sys
from datetime import date, datetime

import click
from rich.console import Console
from rich.table import Table

from pipelines import settings
from pipelines.cli.ingest import IN_UI
from pipelines.drops.files import shown_name
from pipelines.warehouse.connection import connect
from pipelines.warehouse.partition_load import storable_text
from pipelines.warehouse.quarantine_reads import (
    QuarantineFilter,
    quarantined_rows,
    reasons_by_day,
)
from pipelines.warehouse.review import (
    ReviewError,
    held_load,
    operator_name,
    reject,
    require_held,
)

EXCERPT = 36  # characters of a raw record shown in the table (--csv gives it whole)

DAY = click.DateTime(["%Y-%m-%d"])


def _held_or_fail(day: date) -> None:
    try:
        with connect(settings.database_url()) as conn, conn.transaction():
            require_held(conn, day)
    except ReviewError as exc:
        raise click.ClickException(str(exc)) from None


@click.command("accept")
@click.argument("day", type=DAY)
@click.option("--by", "by", help="Who accepts (default: FLIGHTS_OPERATOR or the login name).")
def accept_command(day: datetime, by: str | None) -> None:
    """Publish a held DAY as it was loaded (no re-read), then refresh its aggregates."""
    from pipelines.assets.instance import open_instance
    from pipelines.definitions import defs

    _held_or_fail(day.date())
    who = by or operator_name()
    with open_instance() as instance:
        result = defs.resolve_job_def("accept_held_day").execute_in_process(
            instance=instance,
            raise_on_error=False,
            tags=IN_UI,
            run_config={
                "ops": {
                    "accept_held_rows": {"config": {"day": f"{day:%Y-%m-%d}", "accepted_by": who}}
                },
                "loggers": {"console": {"config": {"log_level": "WARNING"}}},
            },
        )
    if not result.success:
        raise click.ClickException(
            f"accepting {day:%Y-%m-%d} failed; see run {result.run_id} in the Dagster UI "
            "(`flights ui`), and `flights quarantine --day` for the day's state"
        )
    with connect(settings.database_url()) as conn:
        held = held_load(conn, day.date())
    assert held is not None
    click.echo(
        f"{day:%Y-%m-%d} accepted by {held.decided_by}: {held.rows_stored:,} rows published, "
        f"{held.rows_quarantined:,} quarantined (was held: {held.failed_check})"
    )


@click.command("reject")
@click.argument("day", type=DAY)
@click.option("--by", "by", help="Who rejects (default: FLIGHTS_OPERATOR or the login name).")
def reject_command(day: datetime, by: str | None) -> None:
    """Discard a held DAY's rows; its published state stays as it is."""
    try:
        with connect(settings.database_url()) as conn:
            held = reject(conn, day.date(), by or operator_name())
    except ReviewError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"{day:%Y-%m-%d} rejected by {held.decided_by}: {held.rows_stored:,} held rows "
        f"discarded; fix the drops and run `flights ingest --from {day:%Y-%m-%d}`"
    )


def _as_stored(text: str | None) -> str | None:
    """A filter in the form stored text takes (a file name's undecodable bytes as `\\xNN`,
    NUL as `\\x00`), whether typed as the operator reads it or passed as a shell's raw bytes."""
    return None if text is None else storable_text(shown_name(text))


@click.command("quarantine")
@click.option("--day", type=DAY, help="Only this partition day.")
@click.option("--reason", help="Only reasons containing this text (case-insensitive).")
@click.option("--file", "file", help="Only this source file (its path or its name).")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(0, 10**9))
@click.option("--csv", "as_csv", is_flag=True, help="Every matching row as CSV, raw whole.")
def quarantine_command(
    day: datetime | None, reason: str | None, file: str | None, limit: int, as_csv: bool
) -> None:
    """List rejected rows with reason, file, line/offset and raw excerpt, and a per-day
    summary by reason (the numbers of the ingest's reject_reasons)."""
    which = QuarantineFilter(day.date() if day else None, _as_stored(reason), _as_stored(file))
    with connect(settings.database_url()) as conn:
        rows = quarantined_rows(conn, which, limit)
        summary = reasons_by_day(conn, which)
    if as_csv:
        out = csv.writer(sys.stdout)
        out.writerow(["day", "state", "file", "line", "byte_offset", "reason", "raw_record"])
        for r in rows:
            state = "held" if r.held else "published"
            out.writerow(
                [r.day, state, r.source_file, r.line, r.byte_offset, r.reason, r.raw_record]
            )
        return
    console = Console(width=max(Console().width, 160))  # rows stay one line when piped
    summary_table = Table(title="rejects by day and reason")
    for name in ("day", "state", "reason", "rows"):
        summary_table.add_column(name, justify="right" if name == "rows" else "left")
    for (d, held), counts in sorted(summary.items(), reverse=True):
        for kind, n in counts.most_common():
            summary_table.add_row(str(d), "held" if held else "published", kind, f"{n:,}")
    console.print(summary_table)
    total = sum(sum(c.values()) for c in summary.values())
    rows_table = Table(title=f"{len(rows):,} of {total:,} rejected rows")
    for name in ("day", "state", "file"):
        rows_table.add_column(name, no_wrap=True)
    rows_table.add_column("line", justify="right", no_wrap=True)
    rows_table.add_column("offset", justify="right", no_wrap=True)
    rows_table.add_column("reason", overflow="fold", min_width=40)
    rows_table.add_column("raw", no_wrap=True, overflow="ellipsis", max_width=EXCERPT)
    for r in rows:
        raw = (r.raw_record or "").replace("\n", " ")
        rows_table.add_row(
            str(r.day),
            "held" if r.held else "published",
            r.source_file,
            "" if r.line is None else f"{r.line:,}",
            "" if r.byte_offset is None else f"{r.byte_offset:,}",
            r.reason,
            raw,
        )
    console.print(rows_table)
    if not total:
        console.print("no rejected rows match")
