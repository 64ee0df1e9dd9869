"""Ingest benchmark: the pipeline against the database's own limit and the seed's baseline.

One run, one database, side by side (the machine is shared, so only ratios are meaningful):
  (a) server-side COPY of the same rows into an identical empty hypertable: the limit;
  (b) the pipeline's materialization of the day, end to end (decode, validate, upsert);
  (c) the same partition again (every row conflicts);
  (d) the seed's row-by-row INSERT-and-commit, on a sample: the baseline.
Usage: python bench/ingest.py [--rows 2000000] [--sample 20000]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.databases import drop_database, fresh_database
from bench.memory import peak_rss_kib
from pipelines import localdb
from pipelines.warehouse.connection import connect
from tests.drops_factory import synthetic_day, write_pb

DAY = "2024-03-01"
COLUMNS = ("flight_id", "timestamp", "latitude", "longitude", "altitude", "airspeed")


def child_ingest(url: str, landing: str) -> None:
    """(b)/(c) in a fresh process, so its peak memory is the pipeline's alone."""
    import dagster as dg

    from pipelines.assets.ingest import ingest_drops
    from pipelines.assets.resources import FlightStore, LandingZone

    started = time.perf_counter()
    result = dg.materialize(
        [ingest_drops],
        partition_key=DAY,
        instance=dg.DagsterInstance.ephemeral(),
        resources={
            "flight_store": FlightStore(database_url=url),
            "landing": LandingZone(root=landing),
        },
    )
    seconds = time.perf_counter() - started
    meta = next(
        e.materialization.metadata
        for e in result.get_asset_materialization_events()
        if e.asset_key.to_user_string() == "flight_data"
    )
    print(
        json.dumps(
            {
                "seconds": seconds,
                "rows_stored": meta["rows_stored"].value,
                "maxrss_kb": peak_rss_kib(),
            }
        )
    )


def bench_database(name: str) -> str:
    """A fresh database with two empty twins of flight_data: the COPY and seed targets."""
    url = fresh_database(name)
    with connect(url) as conn:
        for table in ("copy_target", "seed_target"):
            conn.execute(
                sql.SQL("CREATE TABLE {} (LIKE flight_data INCLUDING ALL)").format(
                    sql.Identifier(table)
                )
            )
            conn.execute(
                "SELECT create_hypertable(%s, 'timestamp', "
                "chunk_time_interval => INTERVAL '1 day')",
                (table,),
            )
    return url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--sample", type=int, default=20_000)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_ingest(*args.child)
        return

    if not os.environ.get("FLIGHTS_DATABASE_URL"):
        localdb.up()
    url = bench_database("flights_bench")
    work = Path(tempfile.mkdtemp(prefix="flights-bench-"))
    work.chmod(0o755)
    landing = work / "landing"
    print(f"generating {args.rows:,} position reports ...", flush=True)
    write_pb(landing / DAY / "day.pb", synthetic_day(args.rows, DAY))
    rows_csv = work / "rows.csv"
    sample = []
    with rows_csv.open("w", newline="") as fh:
        writer = csv.writer(fh)
        for i, m in enumerate(synthetic_day(args.rows, DAY)):
            row = (m.flight_id, m.timestamp, m.latitude, m.longitude, m.altitude, m.airspeed)
            writer.writerow(row)
            if i < args.sample:
                sample.append(row)
    rows_csv.chmod(0o644)
    results: dict[str, float] = {}

    with connect(url, autocommit=True) as conn:
        started = time.perf_counter()
        columns = sql.SQL(", ").join(map(sql.Identifier, COLUMNS))
        try:  # server-side: the server reads the file itself
            conn.execute(
                sql.SQL("COPY copy_target ({}) FROM {} (FORMAT csv)").format(
                    columns, sql.Literal(str(rows_csv))
                )
            )
        except psycopg.Error:  # a remote server cannot see our file: stream it instead
            with (
                conn.cursor().copy(
                    sql.SQL("COPY copy_target ({}) FROM STDIN (FORMAT csv)").format(columns)
                ) as copy,
                rows_csv.open("rb") as fh,
            ):
                while block := fh.read(1 << 20):
                    copy.write(block)
        results["a"] = args.rows / (time.perf_counter() - started)

    memory = []
    for label in ("b", "c"):
        out = subprocess.run(
            [sys.executable, __file__, "--child", url, str(landing)],
            capture_output=True,
            text=True,
            check=True,
        )
        child = json.loads(out.stdout.strip().splitlines()[-1])
        assert child["rows_stored"] == args.rows, child
        results[label] = args.rows / child["seconds"]
        memory.append(child["maxrss_kb"] / 1024)

    with connect(url) as conn:
        insert = (
            "INSERT INTO seed_target (flight_id, timestamp, latitude, longitude, altitude,"
            " airspeed) VALUES (%s, %s, %s, %s, %s, %s)"
        )
        started = time.perf_counter()
        for row in sample:
            conn.execute(insert, row)
            conn.commit()
        results["d"] = len(sample) / (time.perf_counter() - started)

    print(f"\nrows: {args.rows:,} (seed baseline on a sample of {len(sample):,})")
    names = {
        "a": "server-side COPY (limit)",
        "b": "pipeline, first load",
        "c": "pipeline, re-run (all conflict)",
        "d": "seed row-by-row insert",
    }
    for key, name in names.items():
        print(f"  ({key}) {name:34s} {results[key]:>12,.0f} rows/s")
    print(f"  b/a = {results['b'] / results['a']:.2f}   (target >= 0.6)")
    print(f"  c/a = {results['c'] / results['a']:.2f}   (target >= 0.4)")
    print(f"  b/d = {results['b'] / results['d']:.1f}   (target >= 40)")
    print(f"  pipeline peak memory: {max(memory):,.0f} MiB (target < 1536 MiB at 10M rows)")
    drop_database("flights_bench")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
