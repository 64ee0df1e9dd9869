"""Scale benchmark: a store of realistic days, how ingest grows with a day's size, and how
fast every API call stays on it, each side by side with the database's own floor.

1. The store: `--days` consecutive days of `--rows` time-ordered points each (9,500 flights
   reporting every 10 s, as real drops arrive), loaded by one `flights ingest --from --to`
   (Dagster, checks, aggregates) and, for the limit, COPYed into a hypertable with exactly
   flight_data's indexes. Prints e2e / COPY, peak RSS and bytes per point, as loaded and once
   the cleaner settled the days as it does past FLIGHTS_COMPRESS_AFTER_DAYS (compressed on
   the licensed edition, indexes rebuilt on the Apache edition).
2. The growth curve (`--curve`, one fresh store per size): the same for one day of 1M, 5M and
   20M points.
3. The API latency table on the store: p50 / p95 of every RPC shape (GetFlightData whole and
   sampled, ListFlights of a day with and without a box and of an hour, GetFlightSummary)
   against the same statements run bare on a kept connection, as loaded and settled.
Every database it creates is dropped at the end. A full OpenSky day at 10 s is about 70M
points: `--rows 70000000 --days 1`.
Usage: python bench/scale.py [--days 4] [--rows 5000000] [--curve 1000000,5000000,20000000]
       [--calls 40] [--skip-api]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import grpc

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.databases import blank_database, dropped_at_exit, fresh_database  # noqa: E402
from bench.measure import (  # noqa: E402
    bare_reader,
    copy_seconds,
    flights_ingest,
    footprint,
    settled_footprint,
    twin_of_flight_data,
)
from bench.synthetic import DayShape, write_day  # noqa: E402
from pipelines import localdb  # noqa: E402
from pipelines.api import validation  # noqa: E402
from pipelines.api.config import ApiConfig  # noqa: E402
from pipelines.api.validation import to_timestamp  # noqa: E402
from pipelines.proto import flight_pb2 as pb  # noqa: E402
from pipelines.proto import flight_pb2_grpc  # noqa: E402
from pipelines.warehouse.connection import connect  # noqa: E402
from pipelines.warehouse.editions import edition  # noqa: E402
from pipelines.warehouse.flight_reads import FlightReads, Source, Window  # noqa: E402

FIRST_DAY = date(2024, 3, 1)
STORE, CURVE, DAGSTER = "flights_bench_scale", "flights_bench_curve", "flights_bench_scale_dagster"
FLIGHTS = str(Path(sys.executable).with_name("flights"))


@dataclass(frozen=True)
class Loaded:
    points: int
    copy_seconds: float
    e2e_seconds: float
    peak_mib: float
    bytes_per_point: float
    settled_bytes_per_point: float

    def line(self, label: str) -> str:
        copy_rate, e2e_rate = self.points / self.copy_seconds, self.points / self.e2e_seconds
        return (
            f"{label:>14} {self.points:>12,} {copy_rate:>12,.0f} {e2e_rate:>12,.0f} "
            f"{e2e_rate / copy_rate:>8.2f} {self.peak_mib:>9,.0f} {self.bytes_per_point:>8.0f} "
            f"{self.settled_bytes_per_point:>8.0f}"
        )


HEADER = (
    f"{'':>14} {'points':>12} {'COPY/s':>12} {'e2e/s':>12} {'e2e/COPY':>8} "
    f"{'peak MiB':>9} {'B/point':>8} {'settled':>8}"
)


def build(
    name: str, work: Path, days: int, rows: int, flights: int, *, settle: bool = True
) -> tuple[str, Loaded]:
    """A store of `days` days loaded by one `flights ingest`, and the COPY of the same rows;
    settled by the cleaner unless `settle` is false."""
    landing = work / "landing"
    csvs = []
    for i in range(days):
        day = FIRST_DAY + timedelta(days=i)
        rows_csv = work / f"{day}.csv"
        shape = DayShape(rows, flights, first_id=i * flights)
        write_day(shape, day, landing / day.isoformat() / "day.pb", rows_csv)
        rows_csv.chmod(0o644)
        csvs.append(rows_csv)
    url = fresh_database(name)
    with connect(url) as conn:
        twin_of_flight_data(conn, "copy_target")
        conn.commit()
        copy = sum(copy_seconds(conn, "copy_target", rows_csv) for rows_csv in csvs)
        conn.execute("DROP TABLE copy_target")
        conn.commit()
    last = FIRST_DAY + timedelta(days=days - 1)
    run = flights_ingest(url, blank_database(DAGSTER), landing, FIRST_DAY, last)
    shutil.rmtree(landing)
    for rows_csv in csvs:
        rows_csv.unlink()
    with connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE flight_data")
        per_point, points = footprint(conn)
    assert points == days * rows, (points, days * rows)
    settled = settle_store(url, days) if settle else float("nan")
    return url, Loaded(points, copy, run.seconds, run.peak_mib, per_point, settled)


# -- API latency ---------------------------------------------------------------------------


Call = Callable[[], object]


@dataclass(frozen=True)
class Shape:
    """One kind of API call: the gRPC call and the same statements run bare."""

    name: str
    api: Callable[[flight_pb2_grpc.FlightDataServiceStub], object]
    bare: Callable[[FlightReads], object]


def shapes(flight_id: str, day: date, config: ApiConfig) -> list[Shape]:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)

    def listing(hours: int, box: pb.BoundingBox | None) -> Shape:
        request = pb.ListFlightsRequest(
            start_time=to_timestamp(start),
            end_time=to_timestamp(start + timedelta(hours=hours)),
            bounding_box=box,
        )
        query = validation.flights(request, config)
        name = f"ListFlights {'day' if hours == 24 else f'{hours} h'}{' + box' if box else ''}"
        return Shape(
            name,
            lambda stub: stub.ListFlights(request, timeout=60),
            lambda reads: reads.flights(query.query, after=None, limit=query.page_size + 1),
        )

    def track(max_points: int) -> Shape:
        request = pb.FlightDataRequest(flight_id=flight_id, max_points=max_points)
        query = validation.track(request, config)

        def bare(reads: FlightReads) -> object:
            reads.flight(flight_id)
            return reads.track_even(Source.RAW, flight_id, Window(), points=query.limit)

        label = "whole flight" if not max_points else f"max_points {max_points}"
        return Shape(
            f"GetFlightData {label}", lambda stub: stub.GetFlightData(request, timeout=60), bare
        )

    def summary(reads: FlightReads) -> object:
        reads.flight(flight_id)
        return reads.days(flight_id)

    box = pb.BoundingBox(min_latitude=42, max_latitude=46, min_longitude=-2, max_longitude=4)
    return [
        track(0),
        track(100),
        listing(24, None),
        listing(24, box),
        listing(1, None),
        Shape(
            "GetFlightSummary",
            lambda stub: stub.GetFlightSummary(
                pb.GetFlightSummaryRequest(flight_id=flight_id), timeout=60
            ),
            summary,
        ),
    ]


def _ms(samples: list[float], q: int) -> float:
    return statistics.quantiles(samples, n=100)[q - 1] * 1000 if len(samples) > 1 else float("nan")


def latency_table(url: str, calls: int, title: str) -> None:
    """Every shape, API and bare alternating in rounds of five, on one warm connection each."""
    with connect(url) as conn:
        row = conn.execute(
            "SELECT flight_id FROM flight_days WHERE day = %s ORDER BY points DESC LIMIT 1",
            (FIRST_DAY,),
        ).fetchone()
    assert row is not None, "no aggregates: was the store ingested?"
    flight_id = row[0]
    config = ApiConfig(database_url=url, port=0)
    env = {**os.environ, "FLIGHTS_DATABASE_URL": url, "FLIGHTS_API_PORT": "0"}
    proc = subprocess.Popen([FLIGHTS, "serve"], env=env, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        port = int(line.split("127.0.0.1:")[1].split()[0])
        channel = grpc.insecure_channel(
            f"127.0.0.1:{port}", options=[("grpc.max_receive_message_length", 64 << 20)]
        )
        stub = flight_pb2_grpc.FlightDataServiceStub(channel)
        bare = bare_reader(url)

        print(f"\n{title} (flight {flight_id}, {calls} calls each)")
        print(f"{'call':<34}{'API p50':>9}{'p95':>8}{'bare p50':>10}{'p95':>8}{'API/bare':>10}")
        for shape in shapes(flight_id, FIRST_DAY, config):
            timed: dict[str, list[float]] = {"api": [], "bare": []}
            runs: dict[str, Call] = {
                "api": lambda s=shape: s.api(stub),
                "bare": lambda s=shape: bare(s.bare),
            }
            for run in runs.values():
                run()  # warm: connections open, statements prepared
            while len(timed["api"]) < calls:
                for kind, run in runs.items():
                    for _ in range(5):
                        began = time.perf_counter()
                        run()
                        timed[kind].append(time.perf_counter() - began)
            api50, bare50 = _ms(timed["api"], 50), _ms(timed["bare"], 50)
            print(
                f"{shape.name:<34}{api50:>9.1f}{_ms(timed['api'], 95):>8.1f}"
                f"{bare50:>10.1f}{_ms(timed['bare'], 95):>8.1f}{api50 / bare50:>9.2f}x"
            )
        channel.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def settle_store(url: str, days: int) -> float:
    """Every loaded day settled by the cleaner, as past its compression age: compressed
    (licensed edition) or its indexes rebuilt (Apache edition); bytes per point then."""
    with connect(url, autocommit=True) as conn:
        report, per_point = settled_footprint(conn, FIRST_DAY + timedelta(days=days - 1))
    chunks = len(report.compressed_chunks) + len(report.compacted_chunks)
    print(
        f"  (cleaner settled {chunks} chunks in {report.seconds:.1f} s: "
        f"{per_point:.1f} bytes per point)"
    )
    return per_point


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--days", type=int, default=4)
    parser.add_argument("--rows", type=int, default=5_000_000, help="points per day")
    parser.add_argument("--flights", type=int, default=9_500, help="flights per day")
    parser.add_argument(
        "--curve", default="1000000,5000000,20000000", help="day sizes ('' to skip)"
    )
    parser.add_argument("--calls", type=int, default=40, help="calls per API shape and side")
    parser.add_argument("--skip-api", action="store_true")
    args = parser.parse_args()

    if not os.environ.get("FLIGHTS_DATABASE_URL"):
        localdb.up()
    work = Path(tempfile.mkdtemp(prefix="flights-scale-"))
    work.chmod(0o755)  # the server reads the CSVs itself
    with dropped_at_exit(STORE, CURVE, DAGSTER):
        try:
            run(args, work)
        finally:
            shutil.rmtree(work)


def run(args: argparse.Namespace, work: Path) -> None:
    load = os.getloadavg()
    print(f"load average before: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    url, store = build(STORE, work, args.days, args.rows, args.flights, settle=False)
    with connect(url) as conn:
        settled = "compressed" if edition(conn) == "timescale" else "indexes rebuilt"
    if not args.skip_api:
        latency_table(url, args.calls, "API latency, days as loaded")
    store = replace(store, settled_bytes_per_point=settle_store(url, args.days))
    if not args.skip_api:
        latency_table(url, args.calls, f"API latency, days settled ({settled})")
    print(f"\nstore: {args.days} days x {args.rows:,} points, {args.flights:,} flights a day")
    print(HEADER)
    print(store.line(f"{args.days} days"))
    for size in (int(s) for s in args.curve.split(",") if s):
        _, point = build(CURVE, work, 1, size, args.flights)
        print(point.line(f"1 day {size / 1e6:g}M"))
    load = os.getloadavg()
    print(f"\nload average after: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")


if __name__ == "__main__":
    main()
