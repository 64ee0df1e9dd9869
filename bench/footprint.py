"""Footprint benchmark: bytes per stored point of the bundled real OpenSky days.

The same real day is ingested on both editions, then the cleaner settles it as it does once a
day is past FLIGHTS_COMPRESS_AFTER_DAYS: the Apache edition (the configured server, the
embedded one by default) keeps rows, with the primary key and a BRIN time index, and the
cleaner rebuilds their indexes compact; the licensed edition (a PGlite server started here)
compresses the day. Each is measured as loaded and as settled. Sizes come from the catalog
(`hypertable_size`: heap, indexes, compressed chunks). Every database is dropped at the end.
Usage: python bench/footprint.py [--day 2021-10-07]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import uuid
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.databases import dropped_at_exit, fresh_database  # noqa: E402
from bench.measure import footprint, settled_footprint  # noqa: E402
from pipelines import localdb  # noqa: E402
from pipelines.ingest import ingest_partition  # noqa: E402
from pipelines.warehouse.connection import connect  # noqa: E402
from pipelines.warehouse.migrations import migrate  # noqa: E402

OPENSKY = ROOT / "samples" / "opensky"


def loaded_and_settled(url: str, day: date) -> tuple[float, float, int]:
    """Bytes per point of the day as loaded, then after the cleaner's run past the
    compression age (compressed, or indexes rebuilt); and how many points."""
    ingest_partition(url, day, OPENSKY)
    with connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE flight_data")
        before, points = footprint(conn)
        _, after = settled_footprint(conn, day)
    return before, after, points


def licensed(day: date) -> tuple[float, float, int]:
    """`loaded_and_settled` on a PGlite server."""
    proc = subprocess.Popen(
        ["node", str(ROOT / "scripts" / "pglite-server.mjs"), "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline().split()[1])
        url = f"postgresql://postgres@127.0.0.1:{port}/f{uuid.uuid4().hex[:8]}?sslmode=disable"
        with connect(url) as conn:
            migrate(conn)
        return loaded_and_settled(url, day)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--day", type=date.fromisoformat, default=date(2021, 10, 7))
    args = parser.parse_args()
    if not os.environ.get("FLIGHTS_DATABASE_URL"):
        localdb.up()
    with dropped_at_exit("flights_bench_footprint"):
        apache, compacted, points = loaded_and_settled(
            fresh_database("flights_bench_footprint"), args.day
        )
    before, after, _ = licensed(args.day)
    print(f"real OpenSky day {args.day}: {points:,} points")
    print(f"  Apache edition, rows as loaded:   {apache:6.1f} bytes per point")
    print(f"  Apache edition, indexes rebuilt:  {compacted:6.1f} bytes per point (target <= 150)")
    print(f"  licensed edition, rows:           {before:6.1f} bytes per point")
    print(f"  licensed edition, compressed:     {after:6.1f} bytes per point (target <= 20)")


if __name__ == "__main__":
    main()
