"""Reader benchmark: per-row decode time of the OpenSky reader against the protobuf reader.

The same real rows (the bundled OpenSky day 2021-10-07, 284,505 state vectors) are decoded by
both readers, side by side in one run: as the OpenSky CSV, and converted to the seed's
protobuf drop (flight id, position, altitude in feet, speed in knots, ISO timestamp, callsign
as flight number). Each reader decodes from memory, plain and gzipped, best of `--repeat`;
the figure that matters is the ratio (the machine is shared, absolute rates vary).
Usage: python bench/readers.py [--repeat 5] [--batch-rows 100000]
"""

from __future__ import annotations

import argparse
import gzip
import io
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipelines.drops.batches import DropBatch
from pipelines.drops.opensky import read_opensky
from pipelines.drops.protobuf import read_protobuf
from pipelines.drops.stream import GZIP_MAGIC
from pipelines.proto.flight_pb2 import FlightData
from tests.drops_factory import framed

DATA = Path(__file__).resolve().parent.parent / "samples" / "opensky" / "2021-10-07"
Reader = Callable[[BinaryIO, str, int], Iterator[DropBatch]]


def opensky_csv() -> bytes:
    """The day's hourly files as one CSV (one header)."""
    parts = [gzip.decompress(p.read_bytes()) for p in sorted(DATA.glob("states_*.csv.gz"))]
    return parts[0] + b"".join(p.split(b"\n", 1)[1] for p in parts[1:])


def as_protobuf(csv: bytes) -> bytes:
    """The same rows as the seed's length-delimited messages."""
    rows = pd.read_csv(io.BytesIO(csv), dtype={"icao24": str, "callsign": str})
    stamps = pd.to_datetime(rows["time"], unit="s", utc=True).dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    altitude = (rows["baroaltitude"] / 0.3048).round().fillna(0).astype(int)
    speed = (rows["velocity"] / 0.514444).round().fillna(0).astype(int)
    messages = [
        FlightData(
            flight_id=icao,
            latitude=lat,
            longitude=lon,
            altitude=alt,
            airspeed=spd,
            timestamp=ts,
            flight_number=(cs or "").strip(),
        )
        for icao, lat, lon, alt, spd, ts, cs in zip(
            rows["icao24"],
            rows["lat"],
            rows["lon"],
            altitude,
            speed,
            stamps,
            rows["callsign"].fillna(""),
            strict=True,
        )
    ]
    return framed(messages)


def decode(reader: Reader, data: bytes, source: str, batch_rows: int) -> tuple[float, int]:
    """Seconds to decode `data` (gunzipping it first when it is gzipped), and rows decoded."""
    started = time.perf_counter()
    stream: BinaryIO = io.BytesIO(data)
    if data[:2] == GZIP_MAGIC:
        stream = gzip.GzipFile(fileobj=stream, mode="rb")  # type: ignore[assignment]
    rows = rejected = 0
    for batch in reader(stream, source, batch_rows):
        rows += len(batch.frame)
        rejected += len(batch.rejected)
    seconds = time.perf_counter() - started
    assert rejected == 0, f"{source}: {rejected} rows rejected"
    return seconds, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--batch-rows", type=int, default=100_000)
    args = parser.parse_args()

    csv = opensky_csv()
    pb = as_protobuf(csv)
    inputs = {
        "plain": {"opensky": csv, "protobuf": pb},
        "gzipped": {"opensky": gzip.compress(csv, 6), "protobuf": gzip.compress(pb, 6)},
    }
    readers: dict[str, tuple[Reader, str]] = {
        "opensky": (read_opensky, "states_2021-10-07.csv"),
        "protobuf": (read_protobuf, "day.pb"),
    }
    lines = csv.count(b"\n") - 1
    print(
        f"rows: {lines:,} real OpenSky state vectors (2021-10-07); "
        f"CSV {len(csv) / 1e6:.1f} MB, protobuf {len(pb) / 1e6:.1f} MB"
    )
    for label, data in inputs.items():
        best: dict[str, float] = {}
        counts: dict[str, int] = {}
        for _ in range(args.repeat):  # interleaved, so both see the same machine
            for name, (reader, source) in readers.items():
                seconds, rows = decode(reader, data[name], source, args.batch_rows)
                best[name] = min(best.get(name, np.inf), seconds)
                counts[name] = rows
        assert counts["opensky"] == counts["protobuf"], counts
        rates = {name: counts[name] / best[name] for name in readers}
        print(
            f"  {label:8s} opensky {rates['opensky']:>11,.0f} rows/s   "
            f"protobuf {rates['protobuf']:>11,.0f} rows/s   "
            f"time per row opensky/protobuf = {best['opensky'] / best['protobuf']:.2f} "
            "(target <= 1.5)"
        )


if __name__ == "__main__":
    main()
