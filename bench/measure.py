"""Side-by-side measurements shared by the ingest and scale benchmarks.

The limit is the database's own COPY of the same rows into an empty hypertable with exactly
`flight_data`'s indexes (copied from the catalog, and checked to be equal, so the limit is
never an easier target); the pipeline is timed as its ingest step alone and as the whole
`flights ingest` command in its own process (Dagster start-up, checks, aggregate refresh).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import TypeVar

import psycopg
from psycopg import sql

from pipelines import settings
from pipelines.retention.policy import retention_policy
from pipelines.warehouse.connection import connect
from pipelines.warehouse.flight_reads import FlightReads
from pipelines.warehouse.retention import CleanReport, clean

ROOT = Path(__file__).resolve().parent.parent
COPY_COLUMNS = ("flight_id", "timestamp", "latitude", "longitude", "altitude", "airspeed")

# Index definitions of a table with its own name taken out, for comparing two tables.
_INDEXES = """
SELECT replace(replace(indexdef, indexname, ''), %(table)s, 'T')
FROM pg_indexes
WHERE schemaname = current_schema() AND tablename = %(table)s
ORDER BY 1
"""


def twin_of_flight_data(conn: psycopg.Connection, table: str) -> None:
    """An empty hypertable like flight_data, with exactly its indexes (no default ones)."""
    conn.execute(
        sql.SQL("CREATE TABLE {} (LIKE flight_data INCLUDING ALL)").format(sql.Identifier(table))
    )
    conn.execute(
        "SELECT create_hypertable(%s, 'timestamp', chunk_time_interval => INTERVAL '1 day', "
        "create_default_indexes => false)",
        (table,),
    )
    ours = conn.execute(_INDEXES, {"table": table}).fetchall()
    theirs = conn.execute(_INDEXES, {"table": "flight_data"}).fetchall()
    if ours != theirs:
        raise RuntimeError(f"{table} does not have flight_data's indexes: {ours} != {theirs}")


def copy_seconds(conn: psycopg.Connection, table: str, rows_csv: Path) -> float:
    """Seconds to COPY the CSV into `table`: read by the server itself where it can see the
    file, streamed otherwise."""
    columns = sql.SQL(", ").join(map(sql.Identifier, COPY_COLUMNS))
    started = time.perf_counter()
    try:
        with conn.transaction():
            conn.execute(
                sql.SQL("COPY {} ({}) FROM {} (FORMAT csv)").format(
                    sql.Identifier(table), columns, sql.Literal(str(rows_csv))
                )
            )
    except (psycopg.errors.InsufficientPrivilege, psycopg.errors.UndefinedFile):
        started = time.perf_counter()
        with (
            conn.transaction(),
            conn.cursor().copy(
                sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(
                    sql.Identifier(table), columns
                )
            ) as copy,
            rows_csv.open("rb") as fh,
        ):
            while block := fh.read(1 << 20):
                copy.write(block)
    return time.perf_counter() - started


@dataclass(frozen=True)
class Run:
    """One measured pipeline run: wall seconds and the process's peak memory."""

    seconds: float
    peak_mib: float


def ingest_step(url: str, landing: Path, day: date) -> Run:
    """The ingest step alone (decode, validate, store: what the Dagster asset calls), in a
    fresh process so its peak memory is its own."""
    out = subprocess.run(
        [sys.executable, str(Path(__file__)), url, str(landing), day.isoformat()],
        capture_output=True,
        text=True,
        check=True,
    )
    child = json.loads(out.stdout.strip().splitlines()[-1])
    return Run(child["seconds"], child["peak_kib"] / 1024)


def flights_ingest(url: str, dagster_url: str, landing: Path, first: date, last: date) -> Run:
    """`flights ingest --from first --to last` end to end, as an operator runs it: on an
    instance that exists (Dagster creates its tables once, on first use, untimed)."""
    env = {
        **os.environ,
        "FLIGHTS_DATABASE_URL": url,
        "DAGSTER_POSTGRES_URL": dagster_url,
        "DAGSTER_HOME": str(settings.dagster_home()),
    }
    flights = str(Path(sys.executable).parent / "flights")
    subprocess.run([flights, "runs", "list"], env=env, check=True, stdout=subprocess.DEVNULL)
    with tempfile.NamedTemporaryFile("r", suffix=".peak") as peak:
        started = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                str(ROOT / "bench" / "memory.py"),
                peak.name,
                "flights",
                "ingest",
                "--from",
                first.isoformat(),
                "--to",
                last.isoformat(),
                "--landing",
                str(landing),
            ],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        seconds = time.perf_counter() - started
        return Run(seconds, int(Path(peak.name).read_text()) / 1024)


# Bytes of flight_data (heap, indexes, compressed chunks) per stored point, and the points.
_FOOTPRINT = """
SELECT hypertable_size('flight_data')::float8 / greatest(count(*), 1), count(*)
FROM flight_data
"""


def footprint(conn: psycopg.Connection) -> tuple[float, int]:
    """Bytes per stored point of flight_data, and how many points it holds."""
    row = conn.execute(_FOOTPRINT).fetchone()
    assert row is not None
    return float(row[0]), int(row[1])


def settled_footprint(conn: psycopg.Connection, last_day: date) -> tuple[CleanReport, float]:
    """The cleaner's run once `last_day` is past the compression age (keeping ten years, so
    nothing is dropped): the stored days settled as in production, compressed or their
    indexes rebuilt; and bytes per point then. Needs an autocommit connection."""
    policy = retention_policy(raw_days=3650, aggregate_days=3650)
    report = clean(conn, last_day + timedelta(days=policy.compress_after_days + 1), policy)
    conn.execute("VACUUM ANALYZE flight_data")
    per_point, _ = footprint(conn)
    return report, per_point


def stored_points(url: str) -> int:
    with connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM flight_data").fetchone()
    return int(row[0]) if row else 0


Result = TypeVar("Result")


def bare_reader(url: str) -> Callable[[Callable[[FlightReads], Result]], Result]:
    """Runs API reads bare: on a kept connection set up as the API's pool sets up its own
    (statements prepared, read only), each in one read-only transaction that starts with
    the API's first statement; no gRPC, no encoding."""
    conn = psycopg.connect(url, prepare_threshold=0)
    conn.read_only = True
    reads = FlightReads(conn)

    def run(work: Callable[[FlightReads], Result]) -> Result:
        with conn.transaction():
            reads.begin(timeout=60, role=None)
            return work(reads)

    return run


def _child_ingest_step(url: str, landing: str, day: str) -> None:
    from bench.memory import peak_rss_kib
    from pipelines.ingest import ingest_partition

    started = time.perf_counter()
    ingest_partition(url, date.fromisoformat(day), Path(landing))
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "peak_kib": peak_rss_kib()}))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    _child_ingest_step(*sys.argv[1:])
