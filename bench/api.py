"""API benchmark: GetFlightData against its own statements run bare and the seed's server.

One run, one database, side by side (the machine is shared, so the ratios are what counts):
  (a) bare SQL: the API's own statements for the call (its read-only transaction, the
      flight's metadata, the track as binary arrays) on a kept psycopg connection, without
      gRPC or encoding: the floor the API can approach;
  (b) the API (`flights serve`, default configuration) in its own process;
  (c) the seed's server (bench/seed_server.py, generated from the seed's .proto): the baseline.
Each is timed on flights of 1,000 and of 10,000 points, with 1 and with 32 concurrent clients
(each client its own connection or channel): p50 / p99 latency, requests per second, errors.
The three take turns in half-second slices, so a load that comes and goes hits each alike.
Then, on its own: N streams whose clients never read beside M normal clients, whose p50 is
compared with and without them. The benchmark's database is dropped at the end.
Usage: python bench/api.py [--flights 200] [--long-flights 20] [--seconds 4] [--stalled 8]
       [--stall-clients 8]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import numpy as np
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.databases import dropped_at_exit, fresh_database  # noqa: E402
from bench.measure import bare_reader  # noqa: E402
from pipelines.api.config import ApiConfig  # noqa: E402
from pipelines.proto import flight_pb2, flight_pb2_grpc  # noqa: E402
from pipelines.warehouse.connection import connect  # noqa: E402
from pipelines.warehouse.flight_reads import FlightReads, Source, Window  # noqa: E402
from tests.api import add_flight, generate_seed_code  # noqa: E402

FLIGHTS = str(Path(sys.executable).with_name("flights"))
START = datetime(2024, 3, 1, tzinfo=UTC)
SIZES = (1_000, 10_000)
CLIENTS = (1, 32)

# One call: the flight id in, the number of points received out.
Call = Callable[[str], int]


@dataclass
class Cell:
    name: str
    clients: int
    latencies: list[float]
    errors: int
    seconds: float

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds

    def p(self, q: float) -> float:
        return float(np.percentile(self.latencies, q)) * 1000 if self.latencies else float("nan")


def fresh_database_of_flights(name: str, flights: int, long_flights: int) -> str:
    url = fresh_database(name)
    for size, count in zip(SIZES, (flights, long_flights), strict=True):
        for i in range(count):
            add_flight(
                url,
                flight_id(size, i),
                START + timedelta(hours=i % 240),
                size,
                latitude=40 + i % 10,
                longitude=i % 20,
            )
    with connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return url


def flight_id(size: int, i: int) -> str:
    return f"p{size // 1000}k{i:05d}"


def run_slice(calls: list[Call], ids: list[str], seconds: float) -> tuple[list[float], int, float]:
    """One thread per call (each its own connection), calling back to back for `seconds`."""
    latencies: list[list[float]] = [[] for _ in calls]
    errors = [0] * len(calls)
    barrier = threading.Barrier(len(calls) + 1)
    stop_at = [0.0]

    def client(k: int) -> None:
        barrier.wait()
        i = k
        while time.perf_counter() < stop_at[0]:
            fid = ids[i % len(ids)]
            i += len(calls)
            began = time.perf_counter()
            try:
                calls[k](fid)
            except (grpc.RpcError, psycopg.Error):
                errors[k] += 1
                continue
            latencies[k].append(time.perf_counter() - began)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(len(calls))]
    for t in threads:
        t.start()
    began = time.perf_counter()
    stop_at[0] = began + seconds
    barrier.wait()
    for t in threads:
        t.join()
    return [x for lat in latencies for x in lat], sum(errors), time.perf_counter() - began


def measure(
    implementations: dict[str, Callable[[], Call]],
    ids: list[str],
    clients: int,
    seconds: float,
    slice_seconds: float = 0.5,
) -> list[Cell]:
    """Every implementation in turn, in short slices, so that the changing load of a shared
    machine falls on all of them alike."""
    calls = {name: [make() for _ in range(clients)] for name, make in implementations.items()}
    for group in calls.values():
        for call in group:
            call(ids[0])  # warm up: connections open, statements planned
    cells = {name: Cell(name, clients, [], 0, 0.0) for name in implementations}
    for _ in range(max(1, round(seconds / slice_seconds))):
        for name, group in calls.items():
            latencies, errors, elapsed = run_slice(group, ids, slice_seconds)
            cells[name].latencies += latencies
            cells[name].errors += errors
            cells[name].seconds += elapsed
    return list(cells.values())


def sql_call(url: str, max_points: int = ApiConfig.max_points) -> Callable[[], Call]:
    """The statements GetFlightData runs, bare: as the API's pool connects (prepared, read
    only), one read-only transaction per call."""

    def make() -> Call:
        run = bare_reader(url)

        def call(fid: str) -> int:
            def read(reads: FlightReads) -> int:
                reads.flight(fid)
                return len(reads.track_even(Source.RAW, fid, Window(), points=max_points).track)

            return run(read)

        return call

    return make


def grpc_call(port: int) -> Callable[[], Call]:
    def make() -> Call:
        channel = grpc.insecure_channel(
            f"127.0.0.1:{port}", options=[("grpc.max_receive_message_length", 64 << 20)]
        )
        stub = flight_pb2_grpc.FlightDataServiceStub(channel)

        def call(fid: str) -> int:
            request = flight_pb2.FlightDataRequest(flight_id=fid)
            return len(stub.GetFlightData(request, timeout=60).flight_data)

        return call

    return make


@contextmanager
def process(args: list[str], env: dict[str, str], ready: str) -> Iterator[str]:
    """A server process; yields the line that said it is ready."""
    proc = subprocess.Popen(
        args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    stream = proc.stdout if ready == "READY" else proc.stderr
    assert stream is not None
    line = stream.readline()
    try:
        if ready not in line:
            raise RuntimeError(f"{args[0]} did not start: {line}")
        yield line
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--flights", type=int, default=200, help="flights of 1,000 points")
    parser.add_argument("--long-flights", type=int, default=20, help="flights of 10,000 points")
    parser.add_argument("--seconds", type=float, default=4.0, help="per measurement")
    parser.add_argument("--stalled", type=int, default=8, help="never-read streams (0: skip)")
    parser.add_argument("--stall-clients", type=int, default=8, help="clients beside them")
    args = parser.parse_args()

    with dropped_at_exit("bench_api"):
        run(args)


def run(args: argparse.Namespace) -> None:
    began = time.perf_counter()
    url = fresh_database_of_flights("bench_api", args.flights, args.long_flights)
    points = args.flights * SIZES[0] + args.long_flights * SIZES[1]
    print(
        f"loaded {args.flights} + {args.long_flights} flights, {points:,} points "
        f"in {time.perf_counter() - began:.0f} s"
    )
    env = {**os.environ, "FLIGHTS_DATABASE_URL": url, "FLIGHTS_API_PORT": "0"}
    with (
        tempfile.TemporaryDirectory() as seed_dir,
        process([FLIGHTS, "serve"], env, "serving") as api_line,
        process(
            [
                sys.executable,
                str(ROOT / "bench" / "seed_server.py"),
                str(generate_seed_code(Path(seed_dir))),
                url,
            ],
            env,
            "READY",
        ) as seed_line,
    ):
        api_port = int(api_line.split("127.0.0.1:")[1].split()[0])
        seed_port = int(seed_line.split()[1])
        implementations = {
            "bare SQL (psycopg)": sql_call(url),
            "API": grpc_call(api_port),
            "seed server": grpc_call(seed_port),
        }
        for size, count in zip(SIZES, (args.flights, args.long_flights), strict=True):
            ids = [flight_id(size, i) for i in range(count)]
            received = {name: make()(ids[0]) for name, make in implementations.items()}
            assert set(received.values()) == {size}, received
            cells = [
                cell
                for clients in CLIENTS
                for cell in measure(implementations, ids, clients, args.seconds)
            ]
            report(size, count, cells)
    if args.stalled:
        ids = [flight_id(SIZES[0], i) for i in range(args.flights)]
        stalled_streams_section(url, ids, args.stalled, args.stall_clients, args.seconds)


def report(size: int, count: int, cells: list[Cell]) -> None:
    print(f"\nGetFlightData, {size:,} points per flight ({count} flights)")
    print(f"{'':<20}{'clients':>8}{'p50 ms':>9}{'p99 ms':>9}{'req/s':>9}{'errors':>8}")
    for c in cells:
        print(f"{c.name:<20}{c.clients:>8}{c.p(50):>9.1f}{c.p(99):>9.1f}{c.rps:>9.1f}{c.errors:>8}")
    by = {(c.name, c.clients): c for c in cells}
    latency = by["API", 1].p(50) / by["bare SQL (psycopg)", 1].p(50)
    throughput = by["API", 32].rps / by["seed server", 32].rps
    print(
        f"API p50 / bare SQL p50, 1 client: {latency:.2f}x (target <= 1.3x); "
        f"API / seed req/s, 32 clients: {throughput:.1f}x (target >= 3x)"
    )


STALL_FLIGHT = "stall-long"
STALL_POINTS = 400_000  # about 40 MB: far more than a stream's flow-control window


def stalled_streams_section(
    url: str, ids: list[str], stalled: int, clients: int, seconds: float
) -> None:
    """N clients open StreamFlightData on a long flight and never read it, beside M clients
    calling GetFlightData; their p50 with and without the stalls. The server gets one stream
    allowance per stalled client (as if each came from its own address), so the stalls
    reach the server-wide stream cap, the worst case for the other calls."""
    add_flight(url, STALL_FLIGHT, START, STALL_POINTS)
    env = {
        **os.environ,
        "FLIGHTS_DATABASE_URL": url,
        "FLIGHTS_API_PORT": "0",
        "FLIGHTS_API_STREAMS_PER_CLIENT": str(stalled),
    }
    with process([FLIGHTS, "serve"], env, "serving") as line:
        port = int(line.split("127.0.0.1:")[1].split()[0])
        normal = grpc_call(port)
        calls = [normal() for _ in range(clients)]
        quiet, quiet_errors, _ = run_slice(calls, ids, seconds)
        channels = [grpc.insecure_channel(f"127.0.0.1:{port}") for _ in range(stalled)]
        streams = [
            flight_pb2_grpc.FlightDataServiceStub(channel).StreamFlightData(
                flight_pb2.StreamFlightDataRequest(flight_id=STALL_FLIGHT, page_size=20_000),
                timeout=120,
            )
            for channel in channels
        ]
        try:
            busy, busy_errors, _ = run_slice(calls, ids, seconds)
        finally:
            refused = sum(
                1
                for stream in streams
                if stream.done() and stream.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            )
            for channel in channels:
                channel.close()
    p50 = (float(np.percentile(quiet, 50)) * 1000, float(np.percentile(busy, 50)) * 1000)
    print(f"\nStalled streams: {stalled} never-read streams beside {clients} GetFlightData clients")
    print(f"{'':<28}{'p50 ms':>9}{'calls':>8}{'errors':>8}")
    print(f"{'without stalled streams':<28}{p50[0]:>9.1f}{len(quiet):>8}{quiet_errors:>8}")
    print(f"{'with stalled streams':<28}{p50[1]:>9.1f}{len(busy):>8}{busy_errors:>8}")
    print(
        f"p50 with / without: {p50[1] / p50[0]:.2f}x; {stalled - refused} stalled streams "
        f"admitted (server cap), {refused} refused"
    )


if __name__ == "__main__":
    main()
