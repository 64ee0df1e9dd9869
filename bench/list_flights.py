"""ListFlights benchmark: the exact listing's query on a large day.

Writes `--points` reports (default 20 million) as `--flights` flights of one UTC day, each a
straight track reporting every 3 seconds, starts spread evenly over the day and positions
over the whole globe, stored in time order as real drops arrive; refreshes the aggregates;
then times the query the API runs for a page of 100 (`FlightReads.flights` as the API runs
it: one client, a kept connection, its transaction set-up) on a whole day, a whole hour,
and windows of one and three hours with sub-minute edges, each without and with a 1-degree
box: p50 and p99 latency.
Usage: python bench/list_flights.py [--points 20000000] [--flights 40000] [--runs 60]
(on the configured server, the embedded one by default: `flights db up` first).
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.databases import drop_database, fresh_database
from bench.measure import bare_reader
from pipelines.warehouse.aggregates import refresh_aggregates
from pipelines.warehouse.connection import connect
from pipelines.warehouse.flight_reads import BoundingBox, FlightQuery, Window

DAY = datetime(2024, 3, 1, tzinfo=UTC)
NAME = "bench_list_flights"
STEP_SECONDS = 3
# Flight k: starts k * spacing seconds into the day, at (k % 120) / 2 - 30 N and
# (k % 359) - 179 E, moving 1e-4 degrees north-east per report.
FILL = """
INSERT INTO flight_data (flight_id, "timestamp", latitude, longitude, altitude, airspeed)
SELECT 'b' || k, %(day)s::timestamptz + make_interval(secs => k * %(spacing)s + i * %(step)s),
       (k %% 120) / 2.0 - 30 + i * 1e-4, (k %% 359) - 179 + i * 1e-4, 30000, 450
FROM generate_series(0, %(flights)s - 1) AS k, generate_series(0, %(per_flight)s - 1) AS i
ORDER BY 2  -- in time order, as real drops arrive
"""

CASES = {
    "whole day": Window(DAY, DAY + timedelta(days=1)),
    "one whole hour": Window(DAY + timedelta(hours=12), DAY + timedelta(hours=13)),
    "one hour, sub-minute edges": Window(
        DAY + timedelta(hours=12, seconds=30.5), DAY + timedelta(hours=13, seconds=15.25)
    ),
    "three hours, sub-minute edges": Window(
        DAY + timedelta(hours=11, seconds=30.5), DAY + timedelta(hours=14, seconds=15.25)
    ),
}
BOX = BoundingBox(min_latitude=0.0, min_longitude=7.0, max_latitude=1.0, max_longitude=8.0)


def fill(url: str, points: int, flights: int) -> None:
    per_flight = points // flights
    spacing = (86_400 - per_flight * STEP_SECONDS) / flights
    with connect(url) as conn:
        conn.execute(
            FILL,
            {
                "day": DAY,
                "spacing": spacing,
                "step": STEP_SECONDS,
                "flights": flights,
                "per_flight": per_flight,
            },
        )
        conn.commit()
    with connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE flight_data")
        refresh_aggregates(conn, DAY, DAY + timedelta(days=1))
        conn.execute("VACUUM ANALYZE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=20_000_000)
    parser.add_argument("--flights", type=int, default=40_000)
    parser.add_argument("--runs", type=int, default=60)
    args = parser.parse_args()
    began = time.perf_counter()
    url = fresh_database(NAME)
    try:
        fill(url, args.points, args.flights)
        loaded = time.perf_counter() - began
        print(f"{args.points:,} points, {args.flights:,} flights, loaded in {loaded:.0f} s")
        read = bare_reader(url)
        for name, window in CASES.items():
            for box in (None, BOX):
                query = FlightQuery(window=window, box=box)
                latencies = []
                for _ in range(args.runs):
                    started = time.perf_counter()
                    rows = read(lambda reads, q=query: reads.flights(q, after=None, limit=100))
                    latencies.append(time.perf_counter() - started)
                p50, p99 = np.percentile(latencies, [50, 99]) * 1000
                label = f"{name}{', 1-degree box' if box else ''}"
                print(f"{label:44} {len(rows):4} flights  p50 {p50:7.1f} ms  p99 {p99:7.1f} ms")
    finally:
        drop_database(NAME)


if __name__ == "__main__":
    main()
