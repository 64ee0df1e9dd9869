"""Ingest benchmark: the pipeline against the database's own COPY and the seed's baseline.

One run, side by side (the machine is shared, so only ratios are meaningful), on the same
realistic day (time-ordered rows of 9,500 flights, as real drops arrive):
  (a) COPY of the rows into an empty hypertable with exactly flight_data's indexes: the limit;
  (b) the ingest step alone (decode, validate, store in one transaction), first load;
  (c) the same day again (every row conflicts);
  (e) `flights ingest` end to end in its own process on a fresh store: Dagster start-up, the
      ingest step, its checks and the aggregate refresh;
  (d) the seed's row-by-row INSERT-and-commit, on a sample: the baseline;
  (f) the fixed cost: `flights ingest` of one small day (300 rows), and of four in one call.
Usage: python bench/ingest.py [--rows 2000000] [--flights 9500] [--sample 20000]
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import sys
import tempfile
import time
from datetime import date, timedelta
from itertools import islice
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.databases import blank_database, dropped_at_exit, fresh_database
from bench.measure import (
    copy_seconds,
    flights_ingest,
    ingest_step,
    stored_points,
    twin_of_flight_data,
)
from bench.synthetic import DayShape, write_day
from pipelines import localdb
from pipelines.warehouse.connection import connect

DAY = date(2024, 3, 1)
DATABASES = ("flights_bench", "flights_bench_e2e", "flights_bench_dagster", "flights_bench_small")
SMALL_ROWS, SMALL_DAYS = 300, 4


def seed_rate(url: str, rows_csv: Path, sample: int) -> float:
    """Rows per second of the seed's INSERT-and-commit per row."""
    with rows_csv.open(newline="") as fh:
        rows = list(islice(csv.reader(fh), sample))
    insert = (
        "INSERT INTO seed_target (flight_id, timestamp, latitude, longitude, altitude,"
        " airspeed) VALUES (%s, %s, %s, %s, %s, %s)"
    )
    with connect(url) as conn:
        started = time.perf_counter()
        for row in rows:
            conn.execute(insert, row)
            conn.commit()
        return len(rows) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--flights", type=int, default=9_500)
    parser.add_argument("--sample", type=int, default=20_000)
    args = parser.parse_args()

    if not os.environ.get("FLIGHTS_DATABASE_URL"):
        localdb.up()
    work = Path(tempfile.mkdtemp(prefix="flights-bench-"))
    work.chmod(0o755)  # the server reads the CSV itself
    with dropped_at_exit(*DATABASES):
        try:
            run(args, work)
        finally:
            shutil.rmtree(work)


def run(args: argparse.Namespace, work: Path) -> None:
    landing, rows_csv = work / "landing", work / "rows.csv"
    print(f"generating {args.rows:,} time-ordered points of {args.flights:,} flights ...")
    write_day(
        DayShape(args.rows, args.flights), DAY, landing / DAY.isoformat() / "day.pb", rows_csv
    )
    rows_csv.chmod(0o644)
    load = os.getloadavg()

    url = fresh_database("flights_bench")
    with connect(url) as conn:
        twin_of_flight_data(conn, "copy_target")
        twin_of_flight_data(conn, "seed_target")
        conn.commit()
        copy = copy_seconds(conn, "copy_target", rows_csv)
    step = ingest_step(url, landing, DAY)
    rerun = ingest_step(url, landing, DAY)
    assert stored_points(url) == args.rows

    e2e_url = fresh_database("flights_bench_e2e")
    e2e = flights_ingest(e2e_url, blank_database("flights_bench_dagster"), landing, DAY, DAY)
    assert stored_points(e2e_url) == args.rows
    seed = seed_rate(url, rows_csv, args.sample)

    small = work / "small"
    for offset in range(SMALL_DAYS):
        day = DAY + timedelta(days=offset)
        write_day(DayShape(SMALL_ROWS, 10), day, small / day.isoformat() / "day.pb")
    dagster = blank_database("flights_bench_dagster")
    one = flights_ingest(fresh_database("flights_bench_small"), dagster, small, DAY, DAY)
    last = DAY + timedelta(days=SMALL_DAYS - 1)
    several = flights_ingest(fresh_database("flights_bench_small"), dagster, small, DAY, last)
    per_further_day = (several.seconds - one.seconds) / (SMALL_DAYS - 1)

    rate = {
        "a": args.rows / copy,
        "b": args.rows / step.seconds,
        "c": args.rows / rerun.seconds,
        "e": args.rows / e2e.seconds,
        "d": seed,
    }
    names = {
        "a": "COPY, identical indexes (limit)",
        "b": "ingest step, first load",
        "c": "ingest step, re-run (all conflict)",
        "e": "flights ingest, end to end",
        "d": "seed row-by-row insert",
    }
    print(f"\nrows: {args.rows:,}, flights: {args.flights:,} (seed baseline on {args.sample:,})")
    print(f"load average before: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    for key, name in names.items():
        print(f"  ({key}) {name:36s} {rate[key]:>12,.0f} rows/s")
    print(f"  b/a = {rate['b'] / rate['a']:.2f}   (target >= 1.0)")
    print(f"  e/a = {rate['e'] / rate['a']:.2f}   (target >= 0.8)")
    print(f"  c/a = {rate['c'] / rate['a']:.2f}")
    print(f"  b/d = {rate['b'] / rate['d']:.0f}")
    print(f"  peak memory: ingest step {step.peak_mib:,.0f} MiB, re-run {rerun.peak_mib:,.0f} MiB,")
    print(f"               flights ingest {e2e.peak_mib:,.0f} MiB (target < 1,536 MiB)")
    print(
        f"  (f) flights ingest of a {SMALL_ROWS}-row day: {one.seconds:.2f} s wall (target < 3 s);"
        f" {SMALL_DAYS} such days in one call: {several.seconds:.2f} s,"
        f" {per_further_day:.2f} s per further day (target < 0.3 s)"
    )


if __name__ == "__main__":
    main()
