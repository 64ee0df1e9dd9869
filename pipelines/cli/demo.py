"""`flights demo`: the whole product on the bundled real drops, end to end, in one command.

Starts the embedded database (unless FLIGHTS_DATABASE_URL points elsewhere), migrates it,
ingests every bundled day through the Dagster ingest job on the project's instance (so the
runs show in the UI), refreshes aggregates in the same runs, runs the cleaner in dry-run,
starts the API, reads a real flight through it and prints a report. Days already ingested
from unchanged files are skipped, so a second run is quick and changes nothing.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

from pipelines import localdb, settings
from pipelines.drops.files import discover_drops, partition_fingerprint
from pipelines.retention import policy as retention_settings
from pipelines.warehouse.connection import connect
from pipelines.warehouse.migrations import migrate

SAMPLES = settings.PROJECT_ROOT / "samples"
SAMPLE_FLIGHT = "3376ab31"  # JL516, Sapporo to Tokyo, from samples/drops/2024-01-02


@dataclass
class DayOutcome:
    day: date
    files: int
    action: str  # "ingested", "unchanged", "FAILED"


def demo_landing() -> Path:
    """One landing zone holding every bundled day (copies keep their modification times,
    so fingerprints, and therefore the skip of unchanged days, are stable)."""
    landing = settings.local_db_dir() / "demo-landing"
    for source in sorted(SAMPLES.glob("*/*")):
        if not source.is_dir():
            continue
        target = landing / source.name
        target.mkdir(parents=True, exist_ok=True)
        for file in source.iterdir():
            copy = target / file.name
            if not copy.exists() or copy.stat().st_mtime_ns != file.stat().st_mtime_ns:
                shutil.copy2(file, copy)
    return landing


def _loaded_fingerprints(url: str) -> dict[date, str]:
    with connect(url) as conn:
        rows = conn.execute("SELECT partition_day, fingerprint FROM partition_loads").fetchall()
    return dict(rows)


def ingest_days(url: str, landing: Path, console: Console) -> list[DayOutcome]:
    from pipelines.cli.ingest import run_ingest

    days = sorted(date.fromisoformat(p.name) for p in landing.iterdir() if p.is_dir())
    files = {d: discover_drops(landing, d) for d in days}
    loaded = _loaded_fingerprints(url)
    todo = [d for d in days if loaded.get(d) != partition_fingerprint(files[d])]
    results = {o.day: o.ok for o in run_ingest(todo, console, landing)} if todo else {}
    return [
        DayOutcome(
            d,
            len(files[d]),
            "unchanged" if d not in results else "ingested" if results[d] else "FAILED",
        )
        for d in days
    ]


def _store_report(url: str) -> dict[str, int]:
    with connect(url) as conn:

        def one(query: str) -> int:
            row = conn.execute(query).fetchone()
            return int(row[0]) if row and row[0] is not None else 0

        return {
            "files": one("SELECT sum(files) FROM partition_loads"),
            "rows read": one("SELECT sum(rows_read) FROM partition_loads"),
            "rows stored": one("SELECT count(*) FROM flight_data"),
            "rows quarantined": one("SELECT count(*) FROM quarantine"),
            "exact duplicates": one("SELECT sum(duplicates) FROM partition_loads"),
            "flights": one("SELECT count(*) FROM flight_metadata"),
            "flight_minutes rows": one("SELECT count(*) FROM flight_minutes"),
            "flight_hours rows": one("SELECT count(*) FROM flight_hours"),
            "flight_days rows": one("SELECT count(*) FROM flight_days"),
            "traffic_hours rows": one("SELECT count(*) FROM traffic_hours"),
        }


def _cleaner_dry_run(url: str) -> str:
    from pipelines.warehouse.retention import clean

    today = datetime.now(UTC).date()
    with connect(url, autocommit=True) as conn:
        report = clean(conn, today, retention_settings.retention_policy(), dry_run=True)
    return (
        f"dry run as of {today}: would drop {len(report.raw_chunks)} raw chunks "
        f"({report.raw_bytes / 2**20:,.1f} MiB) older than {report.raw_horizon:%Y-%m-%d}, "
        f"{len(report.aggregate_chunks)} aggregate chunks, "
        f"{report.quarantine_rows} quarantined rows"
    )


def _sample_track(url: str) -> Table:
    from pipelines.api.client import Connection, get_track
    from pipelines.api.config import ApiConfig
    from pipelines.api.server import start

    running = start(ApiConfig(database_url=url, port=0))
    try:
        response = get_track(Connection(f"127.0.0.1:{running.port}"), SAMPLE_FLIGHT, max_points=8)
    finally:
        running.stop(grace=1)
    first = response.flight_data[0]
    table = Table(
        title=f"GetFlightData {SAMPLE_FLIGHT} over gRPC: {first.airline} "
        f"{first.flight_number} {first.departure_airport}→"
        f"{first.arrival_airport} (8 of its points)"
    )
    for column in ("timestamp", "latitude", "longitude", "altitude ft", "airspeed kt"):
        table.add_column(column, justify="right")
    for p in response.flight_data:
        table.add_row(
            p.timestamp, f"{p.latitude:.4f}", f"{p.longitude:.4f}", str(p.altitude), str(p.airspeed)
        )
    return table


def _configure_landing(landing: Path) -> str:
    """Leave the instance configured for the demo's landing zone, so that `flights ui`, its
    daemon and later commands read the drops the demo read."""
    file = settings.save("landing_root", str(landing))
    if settings.source("landing_root") == "env":
        return (
            f"landing zone {landing} recorded in {file}, but FLIGHTS_LANDING_ROOT="
            f"{settings.landing_root()} in the environment overrides it: unset it to use the UI "
            "on the demo's drops"
        )
    return f"landing zone {landing} recorded in {file} (the UI and the CLI read it)"


def run_demo(console: Console) -> bool:
    """Returns False when a day failed (the report says which)."""
    if not settings.load().database_url:
        with console.status("starting the embedded database (first time: builds TimescaleDB)"):
            localdb.up()
    landing = demo_landing()
    console.print(_configure_landing(landing))
    url = settings.database_url()
    with connect(url) as conn:
        applied = migrate(conn)
    console.print(
        f"database {settings.redact(url)}: {len(applied)} migrations applied"
        if applied
        else f"database {settings.redact(url)}: schema up to date"
    )
    outcomes = ingest_days(url, landing, console)
    days = Table(title="drop days")
    days.add_column("day")
    days.add_column("files", justify="right")
    days.add_column("this run")
    for outcome in outcomes:
        days.add_row(str(outcome.day), str(outcome.files), outcome.action)
    console.print(days)
    totals = Table(title="flight store")
    totals.add_column("what")
    totals.add_column("count", justify="right")
    for name, value in _store_report(url).items():
        totals.add_row(name, f"{value:,}")
    console.print(totals)
    console.print(f"cleaner: {_cleaner_dry_run(url)}")
    console.print(_sample_track(url))
    console.print(
        "Dagster UI on the same instance (runs, materializations, checks):\n"
        "  .venv/bin/flights ui      then open http://127.0.0.1:3000"
    )
    return all(o.action != "FAILED" for o in outcomes)
